"""The bytes of an Arrow string column, read where they lie.

The source checks (forbidden bytes, markup), the near-match steps and the whitespace
count all ask which bytes a column's ids hold, or where each id starts and ends. These
two functions answer from the column's own buffers: the offsets without a copy, and the
character data a cache-sized block at a time (one memchr per byte asked for; a numpy
comparison would make a bool per byte of a column of hundreds of megabytes). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

SCAN_BLOCK = 1 << 18  # bytes copied out of the column at a time: they stay in cache


def offsets(ids: pa.Array) -> np.ndarray:
    """The ids' ``len(ids) + 1`` offsets into their character data, without a copy."""
    width = np.int64 if pa.types.is_large_string(ids.type) else np.int32
    return np.frombuffer(ids.buffers()[1], dtype=width)[ids.offset:ids.offset + len(ids) + 1]


def scan_bytes(ids: pa.Array, wanted: Iterable[int]) -> tuple[set[int], bool]:
    """(which of ``wanted`` occur in the ids' character data, whether any byte is not
    ASCII), in one pass over the data the ids span."""
    if not len(ids) or ids.buffers()[2] is None:
        return set(), False
    bounds = offsets(ids)
    start, end = int(bounds[0]), int(bounds[-1])
    data = ids.buffers()[2]
    left = {byte: bytes([byte]) for byte in wanted}
    found: set[int] = set()
    wide = False
    for at in range(start, end, SCAN_BLOCK):
        raw = data.slice(at, min(SCAN_BLOCK, end - at)).to_pybytes()
        wide = wide or not raw.isascii()
        for byte, needle in list(left.items()):
            if needle in raw:
                found.add(byte)
                del left[byte]
    return found, wide
