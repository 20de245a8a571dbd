"""The bytes of an Arrow string column, read from its own buffers (core/strbuf.py)."""

from __future__ import annotations

import pyarrow as pa

from reconciler.core.strbuf import SCAN_BLOCK, offsets, scan_bytes


def test_a_slice_is_scanned_only_where_its_ids_lie():
    ids = pa.array(["x\ty", "caf\u00e9", "plain", "a<b"])
    assert scan_bytes(ids, b"\t<") == ({9, 0x3C}, True)
    tail = ids.slice(2)
    assert offsets(tail).tolist() == [8, 13, 16]
    assert scan_bytes(tail, b"\t<") == ({0x3C}, False)
    assert scan_bytes(ids.slice(1, 1), b"\t<") == (set(), True)


def test_large_strings_empty_columns_and_bytes_across_blocks():
    big = pa.array(["a" * (SCAN_BLOCK - 1), "b\x00"], pa.large_string())
    assert offsets(big).dtype.itemsize == 8
    assert scan_bytes(big, [0]) == ({0}, False)
    assert scan_bytes(pa.array([], pa.string()), [0]) == (set(), False)
    assert scan_bytes(pa.array(["", ""]), [0]) == (set(), False)
