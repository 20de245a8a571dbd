"""Split ids into bulk requests that respect both the count limit and the body-size limit.

The byte cost of a batch is computed from the exact encoding the backend sends
(``encode_json_array``), so "fits" here means "fits on the wire".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Compact separators: the cost arithmetic below assumes one byte between entries.
_SEPARATORS = (",", ":")


def encode_json(value: Any) -> bytes:
    """The one JSON encoding used for request bodies (UTF-8, no padding)."""
    return json.dumps(value, ensure_ascii=False, separators=_SEPARATORS).encode("utf-8")


def encode_json_array(entries: Iterable[Any]) -> bytes:
    return encode_json(list(entries))


@dataclass(frozen=True)
class BatchShape:
    """How one backend's bulk body is built and bounded.

    ``entry`` maps an id to what goes in the JSON array; a batch's body is
    ``encode_json_array(entry(id) for id in batch)``.
    """

    max_ids: int
    max_bytes: int
    entry: Callable[[str], Any] = str

    def entry_bytes(self, item_id: str) -> int:
        return len(encode_json(self.entry(item_id)))

    def fits_alone(self, item_id: str) -> bool:
        """Whether a batch of just this id is within the byte limit (``[`` + entry + ``]``)."""
        return self.entry_bytes(item_id) + 2 <= self.max_bytes

    def body(self, ids: Iterable[str]) -> bytes:
        return encode_json_array(self.entry(i) for i in ids)


def split_batches(ids: Iterable[str], shape: BatchShape) -> Iterator[list[str]]:
    """Yield consecutive batches, each within ``shape.max_ids`` and ``shape.max_bytes``.

    Order is kept, so a sorted plan gives sorted batches. Every id must fit alone
    (the planner skips those that do not, as ``too_long``).
    """
    batch: list[str] = []
    size = 2  # the brackets
    for item_id in ids:
        cost = shape.entry_bytes(item_id)
        if cost + 2 > shape.max_bytes:
            raise ValueError(f"id of {cost} bytes cannot fit a {shape.max_bytes}-byte body")
        extra = cost + (1 if batch else 0)  # a comma before every entry but the first
        if batch and (len(batch) >= shape.max_ids or size + extra > shape.max_bytes):
            yield batch
            batch, size, extra = [], 2, cost
        batch.append(item_id)
        size += extra
    if batch:
        yield batch
