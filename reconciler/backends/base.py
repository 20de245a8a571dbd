"""The one interface every catalog backend implements, and the values it speaks in.

A backend is a thin adapter: it turns these calls into requests and answers into these
values, raising only errors from ``reconciler.core.errors``. Planning, batching, the rate
budget and retries live outside it, so every backend gets them the same way, and the
shared contract suite (tests/backends/) runs against each implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from reconciler.core.assumptions import Assumption
from reconciler.core.batching import BatchShape
from reconciler.core.classify import ItemResult
from reconciler.core.plan import AddressRules


@dataclass(frozen=True)
class Record:
    """One catalog item as the API holds it (for read-back and restore)."""

    item_id: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inventory:
    """The remote ids, and how sure we are that they are all of them."""

    ids: Sequence[str]
    expected: int | None  # what the server says it holds; None when it does not say
    requests: int = 0
    detail: str = ""
    # The API assumptions checked on the answers (``reconciler.core.assumptions``), and whether
    # the counts behind the proof held together (False: never reported complete).
    assumptions: tuple[Assumption, ...] = ()
    proven: bool = True

    @property
    def complete(self) -> bool:
        return self.proven and self.expected is not None and len(self.ids) == self.expected


# Hears each page of listed records, with the catalog's total as the server states it.
RecordSink = Callable[[Sequence[dict[str, Any]], int | None], None]


def address_rules_for(shape: BatchShape, forbidden_substrings: tuple[str, ...]) -> AddressRules:
    """What a backend can address: no forbidden substring, and small enough to send alone.

    JSON and percent-encoding turn one byte into at most 6 (or 3) bytes, so ids shorter
    than a sixth of the room left always fit and only longer ones are encoded to be sure.
    """
    return AddressRules(
        forbidden_substrings=forbidden_substrings,
        fits=shape.fits_alone,
        fits_below_bytes=max(0, (shape.max_bytes - shape.overhead - 2) // 6),
    )

__all__ = [
    "Backend",
    "Inventory",
    "ItemResult",
    "ReadBudgeted",
    "Record",
    "RecordSink",
    "address_rules_for",
]


@runtime_checkable
class ReadBudgeted(Protocol):
    """A backend whose list and read calls take a rate budget that may be shared with
    other processes (HTTP backends; the redacting wrapper passes it through)."""

    @property
    def read_budget_key(self) -> str: ...

    @property
    def read_rate(self) -> tuple[int, float]: ...

    def share_read_budget(self, budget: Any) -> None: ...


class Backend(Protocol):
    """List inventory, delete a batch, read back, restore."""

    name: str
    reads_back: bool  # whether read_back can fetch records (backups need them)
    lists_properties: bool  # whether inventory() records hold the properties read_back gives

    @property
    def budget_key(self) -> str:
        """Requests with the same key share one rate budget (one remote catalog)."""

    @property
    def batch_shape(self) -> BatchShape:
        """Limits and encoding of one bulk delete request."""

    @property
    def address_rules(self) -> AddressRules:
        """Which ids this API cannot address at all."""

    def check(self) -> str:
        """A read-only request proving the API is reachable with these credentials."""

    def probe(self) -> tuple[Assumption, ...]:
        """Read-only probes of the API assumptions the public docs leave open."""

    def inventory(self, records: RecordSink | None = None) -> Inventory:
        """Every id the remote catalog holds, with a proof of completeness.

        ``records`` hears every listed record (``{"item_id", "properties"}``) page by page,
        which is how backups get full records without holding the catalog in memory."""

    def delete_batch(self, ids: Sequence[str]) -> list[ItemResult]:
        """One bulk delete; one result per id, in order. Raises ApiError subclasses."""

    def read_back(self, ids: Sequence[str]) -> list[Record]:
        """The records of those ids still present remotely."""

    def restore(self, records: Sequence[Record]) -> list[ItemResult]:
        """Recreate items (upsert); one result per record, in order."""

    def delete_all(self) -> None:
        """Delete every item of the catalog (only ever from ``purge``)."""

    def close(self) -> None:
        """Release connections."""
