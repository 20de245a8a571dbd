"""Wire one run of one job: source, inventory, plan, deletes, report. The only wiring module.

``plan``, ``run`` and (later) the daemon all call ``run_job``. Whatever happens, the
run ends with a report folder and one exit code from the contract; errors of the user's
(config, source, credentials) become one line, not a traceback.
"""

from __future__ import annotations

import secrets as token_source
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from reconciler.backends.base import Backend, Inventory
from reconciler.backends.bloomreach import BloomreachBackend
from reconciler.clock import Clock, SystemClock
from reconciler.config import Config, Job
from reconciler.errors import (
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    ApiError,
    ReconcilerError,
    SourceError,
)
from reconciler.executor import FAILED, NOT_SENT, QUEUED, SKIPPED, UNKNOWN, Executor, Outcome
from reconciler.logging import get_logger
from reconciler.plan import Plan, make_plan
from reconciler.ratelimit import SlidingWindowBudget
from reconciler.report import write_report
from reconciler.source import read_ids

BackendFactory = Callable[[Job, Clock, Any], Backend]


def default_backend(job: Job, clock: Clock, log: Any) -> Backend:
    def on_retry(error: ApiError, attempt: int, delay: float) -> None:
        log.warning("api.retry", error=str(error), attempt=attempt, wait_seconds=round(delay, 3))

    return BloomreachBackend(job.target, job.limits, clock, on_retry=on_retry)


@dataclass(frozen=True)
class RunRequest:
    dry_run: bool
    report_root: Path | None = None  # --report-dir: reports go to DIR/<job>/
    item_events: bool = True


@dataclass
class RunResult:
    job: str
    run_id: str
    exit_code: int
    report_dir: Path
    summary: dict[str, Any]
    message: str
    outcomes: list[Outcome] = field(default_factory=list)


def new_run_id(clock: Clock) -> str:
    return f"{clock.utcnow():%Y%m%dT%H%M%SZ}-{token_source.token_hex(3)}"


def report_dir_for(config: Config, job: Job, run_id: str, report_root: Path | None) -> Path:
    if report_root is not None:
        return report_root / job.name
    return config.state_dir / "reports" / job.name / run_id


class _Run:
    """The state of one run while it is wired together; ``execute`` returns its result."""

    def __init__(
        self, config: Config, job: Job, request: RunRequest, clock: Clock, factory: BackendFactory
    ) -> None:
        self.job, self.request, self.clock, self.factory = job, request, clock, factory
        self.run_id = new_run_id(clock)
        self.dry_run = request.dry_run or job.dry_run
        self.folder = report_dir_for(config, job, self.run_id, request.report_root)
        self.log = get_logger(job=job.name, run_id=self.run_id)
        self.plan: Plan | None = None
        self.outcomes: list[Outcome] | None = None
        self.summary: dict[str, Any] = {
            "job": job.name,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "backend": job.target.backend,
            "catalog_id": job.target.catalog_id,
            "source_ids": 0,
            "remote_ids": 0,
            "inventory_complete": False,
            "to_delete": 0,
            "skipped": {},
            "deleted": 0,
            "failed": 0,
            "unknown": 0,
            "not_sent": 0,
            "started_at": _iso(clock),
            "finished_at": None,
            "exit_code": None,
        }

    def execute(self) -> RunResult:
        self.log.info("run.started", dry_run=self.dry_run, report_dir=str(self.folder))
        backend = self.factory(self.job, self.clock, self.log)
        try:
            exit_code, message = self._reconcile(backend)
        except SourceError as exc:
            exit_code, message = exc.exit_code, str(exc)
            self.summary["refused"] = message
            self.log.error("run.refused", reason=message)
        except ReconcilerError as exc:
            exit_code, message = exc.exit_code, str(exc)
            self.summary["error"] = message
            self.log.error("run.failed", error=message, exit_code=exit_code)
        finally:
            backend.close()
        self.summary["finished_at"] = _iso(self.clock)
        self.summary["exit_code"] = exit_code
        write_report(self.folder, self.summary, self.plan, self.outcomes)
        self.log.info("run.finished", **_loggable(self.summary))
        return RunResult(
            self.job.name, self.run_id, exit_code, self.folder, self.summary, message,
            self.outcomes or [],
        )

    def _reconcile(self, backend: Backend) -> tuple[int, str]:
        source = read_ids(self.job.source)
        self.log.info("source.read", path=str(self.job.source.path), rows=len(source))
        remote = self._inventory(backend)
        self.plan = plan = make_plan(source, remote, backend.address_rules)
        self._summarize_plan(plan)
        self.log.info(
            "plan.made", to_delete=len(plan.to_delete), skipped=plan.skipped_counts(),
            source_ids=plan.source.unique, remote_ids=plan.remote.unique,
        )
        if self.dry_run:
            return EXIT_OK, f"dry run: {len(plan.to_delete)} ids would be deleted"
        self._log_skipped(plan)
        result = Executor(
            backend, self.job.limits, self.clock,
            SlidingWindowBudget(self.job.limits.requests_per_window,
                                self.job.limits.window_seconds),
            on_outcome=self._log_outcome, on_batch=self._log_batch,
        ).run(plan.to_delete.to_pylist())
        self.outcomes = result.outcomes
        counts = result.counts()
        self.summary.update(
            deleted=counts[QUEUED], failed=counts[FAILED], unknown=counts[UNKNOWN],
            not_sent=counts[NOT_SENT], batches=result.batches, requests=result.requests,
            throttled=result.throttled, retries=result.retries,
            budget_wait_seconds=round(result.budget_wait_seconds, 3),
        )
        if result.stopped:
            self.summary["error"] = result.stopped
        bad = counts[FAILED] + counts[UNKNOWN] + counts[NOT_SENT]
        message = f"{counts[QUEUED]} deleted, {bad} not deleted"
        return (EXIT_ITEMS_FAILED if bad else EXIT_OK), message

    def _inventory(self, backend: Backend) -> pa.Array:
        spec = self.job.target.inventory
        if spec is not None:
            try:
                remote = read_ids(spec)
            except SourceError as exc:
                raise SourceError(f"inventory export: {exc}") from None
            self.summary["inventory"] = {"source": "export", "path": str(spec.path)}
            self.summary["inventory_complete"] = True
            return remote
        started = self.clock.monotonic()
        inventory: Inventory = backend.inventory()
        self.summary["inventory_complete"] = inventory.complete
        self.summary["inventory"] = {
            "source": "api", "expected": inventory.expected, "found": len(inventory.ids),
            "requests": inventory.requests, "detail": inventory.detail,
        }
        self.log.info(
            "inventory.listed", found=len(inventory.ids), expected=inventory.expected,
            complete=inventory.complete, requests=inventory.requests,
            seconds=round(self.clock.monotonic() - started, 3),
        )
        return pa.array(inventory.ids, type=pa.string())

    def _summarize_plan(self, plan: Plan) -> None:
        self.summary.update(
            source_ids=plan.source.unique,
            remote_ids=plan.remote.unique,
            to_delete=len(plan.to_delete),
            skipped=plan.skipped_counts(),
            source={
                "path": str(self.job.source.path), "rows": plan.source.rows,
                "empty_ids": plan.source.empty, "duplicate_ids": plan.source.duplicates,
                "whitespace_ids": plan.source.whitespace,
            },
        )
        self.summary["inventory"].update(
            rows=plan.remote.rows, empty_ids=plan.remote.empty,
            duplicate_ids=plan.remote.duplicates,
        )

    def _log_skipped(self, plan: Plan) -> None:
        if not self.request.item_events:
            return
        for item_id, reason in zip(
            plan.skipped_ids.to_pylist(), plan.skipped_reasons.to_pylist(), strict=True
        ):
            self.log.info("item", item_id=item_id, outcome=SKIPPED, detail=reason)

    def _log_outcome(self, outcome: Outcome) -> None:
        if not self.request.item_events:
            return
        level = self.log.info if outcome.outcome == QUEUED else self.log.warning
        level("item", item_id=outcome.item_id, outcome=outcome.outcome, detail=outcome.detail)

    def _log_batch(self, number: int, outcomes: Any, seconds: float) -> None:
        queued = sum(1 for o in outcomes if o.outcome == QUEUED)
        self.log.info(
            "batch", batch=number, size=len(outcomes), queued=queued,
            not_queued=len(outcomes) - queued, seconds=round(seconds, 3),
        )


def run_job(
    config: Config,
    job: Job,
    request: RunRequest,
    *,
    clock: Clock | None = None,
    backend_factory: BackendFactory = default_backend,
) -> RunResult:
    """Reconcile one job once (or plan it, when ``dry_run``); always writes a report."""
    return _Run(config, job, request, clock or SystemClock(), backend_factory).execute()


def _iso(clock: Clock) -> str:
    return clock.utcnow().isoformat(timespec="seconds").replace("+00:00", "Z")


def _loggable(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("dry_run", "source_ids", "remote_ids", "inventory_complete", "to_delete",
            "skipped", "deleted", "failed", "unknown", "not_sent", "exit_code")
    return {k: summary.get(k) for k in keys}
