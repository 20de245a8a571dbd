"""Wire one run of one job: lock, journal, report, exit code; the flows do the rest.

``plan``, ``run`` and the daemon all call ``run_job``. Whatever happens, the run ends
with a report folder, a journal row and one exit code from the contract; errors of the
user's (config, source, credentials) become one line, not a traceback. What the run does
is a flow of ``runs/flows/``, given a ``RunContext`` of values and a ``RunRecord`` to fill
in for the report:

* ``reconcile.py``: a fresh plan (``plan``, ``run``, ``run --verify``);
* ``resume.py``: a real run first looks in the journal for an interrupted run of the same
  job; if there is one, this run finishes that stored plan instead of making a new one;
* ``apply.py``: ``apply PLAN``, exactly a saved plan's ids.

All of that state is bound to the target's fingerprint (fingerprint.py): a job pointed at
another catalog resumes nothing, starts grace from zero and has no shrink baseline, and
its summary says ``target_changed``. Jobs that share a catalog must own disjoint scopes
(scope.py); an id outside the job's scope is never its to delete.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from reconciler.core.clock import Clock, SystemClock
from reconciler.core.errors import (
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EnvironmentProblem,
    ReconcilerError,
    SafetyRefusal,
    SourceError,
    describe_os_error,
)
from reconciler.core.fingerprint import short, target_fingerprint
from reconciler.core.settings import Config, Job
from reconciler.core.states import Action
from reconciler.logging import get_logger
from reconciler.report.files import write_report
from reconciler.report.html import MAX_HISTORY
from reconciler.runs.backend import default_backend
from reconciler.runs.capabilities import check_ownership
from reconciler.runs.claims import stake_claim
from reconciler.runs.context import (
    BackendFactory,
    RunContext,
    RunRecord,
    RunRequest,
    RunResult,
    base_summary,
    iso_now,
    new_run_id,
    report_dir_for,
)
from reconciler.runs.flows.apply import apply_saved
from reconciler.runs.flows.reconcile import reconcile
from reconciler.runs.flows.resume import resume
from reconciler.runs.signals import StopFlag
from reconciler.runs.summary import RunSummary
from reconciler.store import Store, environment_errors, job_lease, open_store, preflight
from reconciler.store.journal import DRY, FAILED_RUN, FINISHED, REFUSED, STOPPED

__all__ = [  # what callers import from here (the rest lives in runs/context.py and flows/)
    "BackendFactory", "RunRequest", "RunResult", "base_summary", "check_ownership",
    "default_backend", "iso_now", "new_run_id", "report_dir_for", "run_job",
]


def run_job(
    config: Config,
    job: Job,
    request: RunRequest,
    *,
    clock: Clock | None = None,
    backend_factory: BackendFactory = default_backend,
    stop: StopFlag | None = None,
) -> RunResult:
    """Reconcile one job once (or plan it, when ``dry_run``); always writes a report."""
    stop = stop or StopFlag()
    clock = clock or SystemClock(wake=stop.event)
    run_id = new_run_id(clock)
    dry_run = request.dry_run or job.dry_run or request.verify_only
    ctx = RunContext(
        config=config, job=job, request=request, clock=clock,
        log=get_logger(job=job.name, run_id=run_id), run_id=run_id, dry_run=dry_run,
        target=target_fingerprint(job.target),
        folder=report_dir_for(config, job, run_id, request.report_root),
        stop=stop, factory=backend_factory,
    )
    rec = RunRecord(base_summary(job, run_id, clock, dry_run=dry_run,
                                 action=str(_action(request, dry_run))))
    return _execute(ctx, rec)


def _execute(ctx: RunContext, rec: RunRecord) -> RunResult:
    ctx.log.info("run.started", dry_run=ctx.dry_run, report_dir=str(ctx.folder))
    started = ctx.clock.monotonic()
    journal: Store | None = None
    tb = ""
    try:
        check_ownership(ctx.config, ctx.job)
        # Before anything is deleted: the state and the report folder must take writes.
        preflight.writable_dir(ctx.config.state_dir, "state_dir")
        with job_lease(ctx.config, ctx.job.name) as lease:
            journal = open_store(ctx.config, lease)
            journal.mark_crashed(ctx.job.name, holding_lock=True)
            stake_claim(ctx.config, ctx.job, journal, ctx.target,
                        ctx.clock.utcnow().timestamp(), record=not ctx.dry_run)
            _note_target_change(ctx, rec, journal)
            exit_code, message = _journaled(ctx, rec, journal)
    except (SourceError, SafetyRefusal, EnvironmentProblem) as exc:
        exit_code, message = exc.exit_code, str(exc)
        rec.status = REFUSED
        rec.summary["refused"] = message
        ctx.log.error("run.refused", reason=message)
    except ReconcilerError as exc:
        exit_code, message = exc.exit_code, str(exc)
        rec.status = FAILED_RUN
        rec.summary["error"] = message
        ctx.log.error("run.failed", error=message, exit_code=exit_code)
    except environment_errors() as exc:
        # The environment failed under a run (disk full, state_dir removed): one line,
        # exit 1; what was journaled stays resumable.
        exit_code, message = EXIT_UNEXPECTED, f"stopped: {describe_os_error(exc)}"
        # Stopped while sending (send_deletes said so): its plan is resumed by the next run,
        # as after a signal; failed anywhere else, there was no plan to resume.
        rec.status = STOPPED if rec.status == STOPPED else FAILED_RUN
        rec.summary["error"] = message
        ctx.log.error("run.failed", error=message, exit_code=exit_code)
    except Exception as exc:  # a bug: one line, the run closed, the traceback in the log
        exit_code = EXIT_UNEXPECTED
        message = f"unexpected error: {type(exc).__name__}: {exc}"
        rec.status = FAILED_RUN
        rec.summary["error"] = message
        tb = traceback.format_exc()
        ctx.log.error("run.crashed", error=message, exit_code=exit_code, traceback=tb)
    rec.summary["finished_at"] = iso_now(ctx.clock)
    rec.summary["run_seconds"] = round(ctx.clock.monotonic() - started, 3)
    rec.summary["exit_code"] = exit_code
    if journal is not None:
        exit_code, message = _finish_row(ctx, rec, journal, exit_code, message)
    summary = RunSummary.assemble(rec.summary).as_json()  # the contract's keys, checked
    folder, note = _write_report(ctx, rec, summary)
    message += note
    ctx.log.info("run.finished", **_loggable(summary))
    return RunResult(
        ctx.job.name, ctx.run_id, exit_code, folder, summary, message,
        rec.outcomes or [], traceback=tb, plan=rec.plan, properties=rec.html.properties,
    )


def _finish_row(ctx: RunContext, rec: RunRecord, journal: Store, exit_code: int,
                message: str) -> tuple[int, str]:
    """Finish the run's journal row and close the journal; a row that cannot be finished
    turns a clean exit into exit 1 (the exit code and line, as they now are)."""
    try:
        journal.finish_run(ctx.run_id, DRY if ctx.dry_run and rec.status == FINISHED
                           else rec.status, exit_code, rec.summary["finished_at"],
                           rec.summary)
        rec.html.history = [r.summary for r in
                            reversed(journal.runs(ctx.job.name, MAX_HISTORY))
                            if r.summary]
    except environment_errors() as exc:  # the next start marks the row crashed
        problem = describe_os_error(exc)
        ctx.log.error("journal.finish_failed", error=problem)
        if exit_code in (EXIT_OK, EXIT_ITEMS_FAILED):
            # What was sent is journaled item by item, but the run's own record is
            # not: that is not a clean finish, whatever the items did.
            exit_code = rec.summary["exit_code"] = EXIT_UNEXPECTED
            message = f"stopped: the journal could not record the run's end: {problem}"
            rec.summary["error"] = message
    finally:
        journal.close()
    return exit_code, message


def _note_target_change(ctx: RunContext, rec: RunRecord, journal: Store) -> None:
    """Say so when this job's last run was against another catalog; its state (an
    interrupted plan included) stays with that catalog and is not used here."""
    ran, last = journal.last_target(ctx.job.name, ctx.run_id)
    if not ran or last == ctx.target:
        return
    change = {"from": short(last), "to": short(ctx.target)}
    rec.summary["target_changed"] = change
    left = journal.interrupted_run(ctx.job.name, last) if last else None
    ctx.log.warning("run.target_changed", **change,
                    detail="the job points at another catalog than its last run: "
                           "no plan, grace, baseline or daily total carries over",
                    left_alone=left.run_id if left else None)


def _write_report(ctx: RunContext, rec: RunRecord,
                  summary: dict[str, Any]) -> tuple[Path, str]:
    """Write the report; when its folder fails, into state_dir instead; else say so.
    (The folder it went to, and what to add to the run's line.)"""
    folders = [ctx.folder]
    fallback = ctx.config.state_dir / "reports" / ctx.job.name / ctx.run_id
    if fallback != ctx.folder:
        folders.append(fallback)
    problems = []
    for folder in folders:
        try:
            write_report(folder, summary, rec.plan, rec.outcomes, extras=rec.html)
        except OSError as exc:
            problems.append(f"{folder}: {describe_os_error(exc)}")
            ctx.log.error("report.failed", folder=str(folder), error=problems[-1])
            continue
        return folder, f" (report folder unusable, written to {folder})" if problems else ""
    return ctx.folder, f"; no report written: {'; '.join(problems)}"


def _journaled(ctx: RunContext, rec: RunRecord, journal: Store) -> tuple[int, str]:
    if ctx.request.apply is not None:
        return apply_saved(ctx, rec, journal, ctx.request.apply)
    interrupted = None if ctx.dry_run else journal.interrupted_run(ctx.job.name, ctx.target)
    journal.start_run(ctx.run_id, ctx.job.name, ctx.dry_run, rec.summary["started_at"],
                      resumed_from=interrupted.run_id if interrupted else None,
                      target=ctx.target)
    preflight.writable_dir(ctx.folder, "report folder")  # before anything is deleted
    backend = ctx.factory(ctx.job, ctx.clock, ctx.log)
    try:
        if interrupted is not None:
            return resume(ctx, rec, journal, backend, interrupted)
        return reconcile(ctx, rec, journal, backend)
    finally:
        backend.close()


def _action(request: RunRequest, dry_run: bool) -> Action:
    """What this run is, for summary.json's ``action``."""
    if request.verify_only:
        return Action.VERIFY
    if request.apply is not None:
        return Action.APPLY
    return Action.PLAN if dry_run else Action.RUN


def _loggable(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("dry_run", "source_ids", "remote_ids", "inventory_complete", "to_delete",
            "skipped", "deleted", "failed", "unknown", "not_sent", "exit_code", "resumed_from")
    return {k: summary.get(k) for k in keys if k in summary}
