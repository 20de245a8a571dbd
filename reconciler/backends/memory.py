"""The in-memory reference backend: the behaviour every real backend must match.

It enforces the same per-item rules as the documented API (non-string or empty ids
fail per item, unknown ids succeed), and it can be scripted with failures to drive the
executor through throttling and faults without a network. Tests use it as a fake, never
a mock: assertions are about the catalog's state afterwards.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.backends.base import (
    Inventory,
    ItemResult,
    Record,
    RecordSink,
    address_rules_for,
)
from reconciler.backends.spec import BackendSpec, Capabilities
from reconciler.core.assumptions import Assumption
from reconciler.core.batching import BatchShape
from reconciler.core.clock import Clock
from reconciler.core.errors import ApiError, SkippableItem
from reconciler.core.plan import AddressRules
from reconciler.core.settings import Limits, Secret, Target
from reconciler.core.table import Table


class MemoryBackend:
    name = "memory"
    reads_back = True
    lists_properties = True

    def __init__(
        self,
        items: Mapping[str, Mapping[str, Any]] | Iterable[str] = (),
        *,
        shape: BatchShape | None = None,
        forbidden: tuple[str, ...] = ("/",),
    ) -> None:
        if isinstance(items, Mapping):
            self.items: dict[str, dict[str, Any]] = {k: dict(v) for k, v in items.items()}
        else:
            self.items = {i: {} for i in items}
        self._shape = shape or BatchShape(max_ids=10_000, max_bytes=10_000_000)
        self._rules = address_rules_for(self._shape, forbidden)
        self.faults: deque[ApiError] = deque()
        self.delete_requests: list[list[str]] = []
        self.deleted: list[str] = []

    @property
    def budget_key(self) -> str:
        return f"memory:{id(self)}"

    @property
    def batch_shape(self) -> BatchShape:
        return self._shape

    @property
    def address_rules(self) -> AddressRules:
        return self._rules

    def probe(self) -> tuple[Assumption, ...]:
        return ()

    def check(self) -> str:
        return f"in-memory catalog with {len(self.items)} items"

    def inventory(self, records: RecordSink | None = None) -> Inventory:
        self._maybe_fail()
        if records is not None:
            records([{"item_id": i, "properties": dict(p)} for i, p in self.items.items()],
                    len(self.items))
        return Inventory(ids=sorted(self.items), expected=len(self.items), requests=1)

    def delete_all(self) -> None:
        self._maybe_fail()
        self.deleted.extend(self.items)
        self.items.clear()

    def delete_batch(self, ids: Sequence[str]) -> list[ItemResult]:
        self._maybe_fail()
        if len(ids) > self._shape.max_ids or len(self._shape.body(ids)) > self._shape.max_bytes:
            raise ApiError("bulk delete: HTTP 400: Too many items", status=400)
        for item_id in ids:
            if any(s in item_id for s in self._rules.forbidden_substrings):
                raise SkippableItem(item_id, "unaddressable")
        self.delete_requests.append(list(ids))
        return [self._delete_one(item_id) for item_id in ids]

    def _delete_one(self, item_id: object) -> ItemResult:
        if not isinstance(item_id, str):
            return ItemResult(False, "Malformed item id. Item id should be a string")
        if not item_id:
            return ItemResult(False, "Validation error: item id must not be empty")
        if self.items.pop(item_id, None) is not None:
            self.deleted.append(item_id)
        return ItemResult(True)

    def read_back(self, ids: Sequence[str]) -> list[Record]:
        self._maybe_fail()
        return [Record(i, dict(self.items[i])) for i in ids if i in self.items]

    def restore(self, records: Sequence[Record]) -> list[ItemResult]:
        self._maybe_fail()
        for record in records:
            self.items[record.item_id] = dict(record.properties)
        return [ItemResult(True) for _ in records]

    def close(self) -> None:
        pass

    def _maybe_fail(self) -> None:
        if self.faults:
            raise self.faults.popleft()


# -- what this backend declares (the example of the README's "Writing a backend") -------


@dataclass(frozen=True)
class MemorySettings:
    """Its own keys: only a catalog name (nothing to reach, no credential)."""

    catalog_id: str = "memory"

    def secrets(self) -> tuple[Secret, ...]:
        return ()

    def basic_auth(self) -> tuple[str, str] | None:
        return None

    def fingerprint_fields(self) -> dict[str, object]:
        return {}


def parse_settings(t: Table, base: Path) -> MemorySettings:
    return MemorySettings(catalog_id=t.string("catalog_id", default="memory"))


def make_backend(target: Target, limits: Limits, clock: Clock, **_: Any) -> MemoryBackend:
    """An empty in-memory catalog shaped by the job's limits."""
    return MemoryBackend(shape=BatchShape(max_ids=limits.max_batch_ids,
                                          max_bytes=limits.max_batch_bytes))


# Not in the registry (a config cannot name it): the flow tests build it directly.
SPEC = BackendSpec(
    name="memory",
    settings_type=MemorySettings,
    parse_settings=parse_settings,
    default_base_url="memory://",
    capabilities=Capabilities(lists=True, reads_back=True, restores=True, purges=True,
                              per_item_answers=True, lists_properties=True),
    factory=make_backend,
)
