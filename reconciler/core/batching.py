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
    """How one backend's bulk request is built and bounded.

    By default a batch is a JSON array: ``entry`` maps an id to what goes in it, and a
    batch's size is ``overhead`` (the brackets) plus each entry's encoded bytes plus one
    separator between entries. A backend that sends ids in a URL gives its own ``cost``
    (the id's encoded length) and ``overhead`` (the rest of the URL).
    """

    max_ids: int
    max_bytes: int
    entry: Callable[[str], Any] = str
    cost: Callable[[str], int] | None = None
    overhead: int = 2
    separator: int = 1

    def entry_bytes(self, item_id: str) -> int:
        if self.cost is not None:
            return self.cost(item_id)
        return len(encode_json(self.entry(item_id)))

    def fits_alone(self, item_id: str) -> bool:
        """Whether a batch of just this id is within the byte limit."""
        return self.entry_bytes(item_id) + self.overhead <= self.max_bytes

    def body(self, ids: Iterable[str]) -> bytes:
        return encode_json_array(self.entry(i) for i in ids)


def split_batches(ids: Iterable[str], shape: BatchShape) -> Iterator[list[str]]:
    """Yield consecutive batches, each within ``shape.max_ids`` and ``shape.max_bytes``.

    Order is kept, so a sorted plan gives sorted batches. Every id must fit alone
    (the planner skips those that do not, as ``too_long``).
    """
    batch: list[str] = []
    size = shape.overhead
    for item_id in ids:
        cost = shape.entry_bytes(item_id)
        if cost + shape.overhead > shape.max_bytes:
            raise ValueError(f"id of {cost} bytes cannot fit a {shape.max_bytes}-byte body")
        extra = cost + (shape.separator if batch else 0)  # a separator before all but the first
        if batch and (len(batch) >= shape.max_ids or size + extra > shape.max_bytes):
            yield batch
            batch, size, extra = [], shape.overhead, cost
        batch.append(item_id)
        size += extra
    if batch:
        yield batch
