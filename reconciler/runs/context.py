"""The values a run is made of, shared by the lifecycle, the runner and every flow: what
was asked (``RunRequest``), what a flow is given (``Context``, ``RunContext``), what it
fills in for the report (``RunRecord``) and what comes back (``FlowResult``, ``RunResult``).

It imports no flow, no runner and no backend module, so anything in ``runs/`` can use it
without pulling in the rest.
"""

from __future__ import annotations

import secrets as token_source
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.core.fingerprint import short, target_fingerprint
from reconciler.core.states import RunStatus
from reconciler.report.html import HtmlExtras

if TYPE_CHECKING:  # annotations only: this module stays a leaf of runs/
    from reconciler.backends.base import Backend
    from reconciler.core.clock import Clock
    from reconciler.core.plan import Plan
    from reconciler.core.settings import Config, Job
    from reconciler.runs.executor import Outcome
    from reconciler.runs.signals import StopFlag
    from reconciler.store import Store
    from reconciler.store.saved_plan import SavedPlan

BackendFactory = Callable[["Job", "Clock", Any], "Backend"]


@dataclass(frozen=True)
class RunRequest:
    dry_run: bool
    report_root: Path | None = None  # --report-dir: reports go to DIR/<job>/
    item_events: bool = True
    verify_only: bool = False  # run --verify: read back earlier deletes, delete nothing
    plan_out: Path | None = None  # plan --out: save the plan (even past a cap) for apply
    apply: SavedPlan | None = None  # apply: delete exactly this saved plan's ids
    approve: bool = False
    reason: str = ""
    # Asked with the plan before anything is deleted (run on a terminal); False cancels.
    confirm: Callable[[RunResult], bool] | None = None


@dataclass
class RunResult:
    job: str
    run_id: str
    exit_code: int
    report_dir: Path
    summary: dict[str, Any]
    message: str
    outcomes: list[Outcome] = field(default_factory=list)
    traceback: str = ""  # rendered, when the run ended in an unexpected error (a bug)
    plan: Plan | None = None
    properties: dict[str, str] = field(default_factory=dict)  # key properties, by id


@dataclass(frozen=True)
class Context:
    """What a lifecycle flow (restore, purge) is given: values, nothing to set."""

    config: Config
    job: Job
    run_id: str
    clock: Clock
    log: Any
    store: Store
    stop: StopFlag
    factory: BackendFactory


@dataclass(frozen=True)
class FlowResult:
    """What a flow returns: its exit code, one line, what it adds to summary.json, and its
    per-item outcomes and plan for the report."""

    exit_code: int
    message: str
    summary: dict[str, Any] = field(default_factory=dict)
    status: RunStatus = RunStatus.FINISHED
    outcomes: list[Outcome] | None = None
    plan: Plan | None = None
    report_action: str = "deleted"  # the CSV the queued ids go to (restored.csv for restore)


@dataclass(frozen=True)
class RunContext:
    """What the plan, run, verify, apply and resume flows are given: values, nothing to set."""

    config: Config
    job: Job
    request: RunRequest
    clock: Clock
    log: Any
    run_id: str
    dry_run: bool
    target: str  # the target's fingerprint
    folder: Path  # the report folder asked for
    stop: StopFlag
    factory: BackendFactory


@dataclass
class RunRecord:
    """What those flows fill in as they go, read once at the edge for the report (a flow
    that stops half-way still leaves its plan and outcomes to report)."""

    summary: dict[str, Any]
    html: HtmlExtras = field(default_factory=HtmlExtras)  # what report.html needs besides
    plan: Plan | None = None
    outcomes: list[Outcome] | None = None
    status: RunStatus = RunStatus.FINISHED


def new_run_id(clock: Clock) -> str:
    return f"{clock.utcnow():%Y%m%dT%H%M%SZ}-{token_source.token_hex(3)}"


def report_dir_for(config: Config, job: Job, run_id: str, report_root: Path | None) -> Path:
    if report_root is not None:
        return report_root / job.name
    return config.state_dir / "reports" / job.name / run_id


def iso_now(clock: Clock) -> str:
    return clock.utcnow().isoformat(timespec="seconds").replace("+00:00", "Z")


def base_summary(job: Job, run_id: str, clock: Clock, **extra: Any) -> dict[str, Any]:
    """The keys every summary.json has (the contract's), before a run fills them in."""
    return {
        "job": job.name, "run_id": run_id, "dry_run": False, "backend": job.target.backend,
        "catalog_id": job.target.catalog_id, "target": short(target_fingerprint(job.target)),
        "source_ids": 0, "remote_ids": 0,
        "inventory_complete": False, "to_delete": 0, "skipped": {}, "deleted": 0, "failed": 0,
        "unknown": 0, "not_sent": 0, "started_at": iso_now(clock), "finished_at": None,
        "exit_code": None, **extra,
    }
