"""The ``Store``: what the runs need from durable state, whatever holds it.

The runs (reconciler/runs/) talk to their state only through this protocol: the run rows
(history), the per-item plan and its outcomes, grace (absences), the ledger. SQLite
(journal.py, the default) implements it; another database can, as long as it keeps the
same contract: every write is one transaction, a batch is recorded ``sent`` before its
request goes out, and every query that feeds a delete asks for one target fingerprint.
Open a store with ``reconciler.store.open_store(config)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the protocol's annotations only: the values live in core/
    from reconciler.core.gracetime import GraceMark
    from reconciler.core.ownership import Claim

__all__ = ["ItemRow", "RunRow", "Store"]


@dataclass(frozen=True)
class RunRow:
    run_id: str
    job: str
    dry_run: bool
    status: str
    started_at: str
    finished_at: str | None
    resumed_from: str | None
    exit_code: int | None
    summary: dict[str, Any]
    replica: str = ""  # hostname:pid of the process (replica) that ran it


@dataclass(frozen=True)
class ItemRow:
    item_id: str
    state: str
    detail: str
    sends: int


class Store(Protocol):
    """Runs, items, grace and the ledger of every job (see journal.py for the semantics)."""

    def close(self) -> None: ...

    # -- runs (the history) ------------------------------------------------------------
    def start_run(
        self, run_id: str, job: str, dry_run: bool, started_at: str,
        resumed_from: str | None = None, *, target: str | None,
    ) -> None: ...

    def finish_run(
        self, run_id: str, status: str, exit_code: int, finished_at: str, summary: dict[str, Any]
    ) -> None: ...

    def set_status(self, run_id: str, status: str) -> None: ...

    def run(self, run_id: str) -> RunRow | None: ...

    def runs(self, job: str | None = None, limit: int = 50) -> list[RunRow]: ...

    def last_target(self, job: str, before: str) -> tuple[bool, str | None]: ...

    def mark_crashed(self, job: str | None = None, *, holding_lock: bool = False) -> list[str]: ...

    def interrupted_run(self, job: str, target: str) -> RunRow | None: ...

    def last_source_ids(self, job: str, target: str) -> int | None: ...

    def last_source_mtime(self, job: str, target: str) -> float | None:
        """The mtime of the export the newest successful real run on ``target`` read."""

    # -- items (the plan and its outcomes) ---------------------------------------------
    def store_plan(
        self, run_id: str, to_delete: Iterable[str], skipped: Iterable[tuple[str, str]]
    ) -> None: ...

    def mark_sent(self, run_id: str, plan_run: str, seq: int, ids: Sequence[str],
                  now: float) -> None: ...

    def record_outcomes(
        self, run_id: str, plan_run: str, seq: int | None,
        outcomes: Sequence[tuple[str, str, str]], now: float,
    ) -> None: ...

    def resendable(self, plan_run: str) -> list[ItemRow]: ...

    def items(self, plan_run: str, state: str | None = None) -> list[ItemRow]: ...

    def state_counts(self, plan_run: str) -> dict[str, int]: ...

    def next_batch_seq(self, plan_run: str) -> int: ...

    def queued_before(self, job: str, run_id: str,
                      target: str) -> list[tuple[str, str, float, int]]: ...

    def queued_since(self, since: float, target: str) -> int: ...

    def queued_ids_since(self, since: float, target: str) -> list[str]: ...

    def mark_verified(self, updates: Iterable[tuple[str, str, str, str]]) -> None: ...

    # -- grace and the ledger ------------------------------------------------------------
    def absences(self, job: str, target: str) -> dict[str, tuple[int, float]]: ...

    def replace_absences(self, job: str, target: str,
                         absences: dict[str, tuple[int, float]]) -> None: ...

    def grace_mark(self, job: str, target: str) -> GraceMark | None: ...

    def set_grace_mark(self, job: str, target: str, mark: GraceMark) -> None: ...

    def ledger(self, job: str, target: str) -> list[str]: ...

    def update_ledger(self, job: str, target: str, seen: Iterable[str],
                      gone: Iterable[str]) -> None: ...

    # -- who deletes from a catalog, and which saved plans were spent -------------------
    def claim(self, target: str, claim: Claim) -> None:
        """Record (or refresh) that ``claim.job`` runs deletes against ``target``."""

    def claims(self, target: str) -> list[Claim]: ...

    def spend_plan(self, plan_run: str, run_id: str, at: float) -> str | None:
        """Record that ``run_id`` applies the saved plan made by ``plan_run``, atomically;
        when a run already did, record nothing and return that run's id."""

    def plan_spent_by(self, plan_run: str) -> str | None: ...
