"""summary.json, typed: the contract's keys as fields, assembled once at the edge of a run.

The flows record what they did as they go (``RunRecord.summary``, ``FlowResult.summary``);
when the run is over, ``RunSummary.assemble`` takes that record once, checks every key
the contract promises (present, of its type), and ``as_json`` gives back exactly the keys,
values and order recorded, for summary.json, the journal and callers. A key missing or of
the wrong type is a bug of ours and fails loudly here, not in a user's script.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# What each contract key must hold (bool is not an int here, nor an int a bool).
_TYPES: dict[str, type] = {
    "job": str, "run_id": str, "action": str, "dry_run": bool,
    "backend": str, "catalog_id": str, "target": str,
    "source_ids": int, "remote_ids": int, "inventory_complete": bool,
    "to_delete": int, "skipped": dict, "deleted": int, "failed": int,
    "unknown": int, "not_sent": int, "started_at": str, "finished_at": str,
    "exit_code": int,
}


@dataclass(frozen=True)
class RunSummary:
    """One run's summary: the contract's keys, and every other key the action recorded
    (``details``: inventory, gates, backup, verified, ...)."""

    job: str
    run_id: str
    action: str
    dry_run: bool
    backend: str
    catalog_id: str
    target: str
    source_ids: int
    remote_ids: int
    inventory_complete: bool
    to_delete: int
    skipped: Mapping[str, int]
    deleted: int
    failed: int
    unknown: int
    not_sent: int
    started_at: str
    finished_at: str
    exit_code: int
    details: Mapping[str, Any] = field(default_factory=dict)
    order: tuple[str, ...] = ()  # the keys in the order the run recorded them

    @classmethod
    def assemble(cls, recorded: Mapping[str, Any]) -> RunSummary:
        """The summary of what a run recorded; TypeError names a missing or mistyped key."""
        for key, expected in _TYPES.items():
            if key not in recorded:
                raise TypeError(f"summary.json: {key!r} missing")
            value = recorded[key]
            if not isinstance(value, expected) or (
                    isinstance(value, bool) and expected is not bool):
                raise TypeError(f"summary.json: {key!r} is {type(value).__name__}, "
                                f"not {expected.__name__}")
        named = {f.name for f in fields(cls)} - {"details", "order"}
        return cls(**{k: recorded[k] for k in named},
                   details={k: v for k, v in recorded.items() if k not in named},
                   order=tuple(recorded))

    def as_json(self) -> dict[str, Any]:
        """The keys and values as recorded, in their order: what summary.json holds."""
        values = {**{k: getattr(self, k) for k in _TYPES}, **self.details}
        return {k: values[k] for k in self.order}
