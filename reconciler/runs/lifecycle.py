"""One run lifecycle for every action: the lock, a journal row, a flow, the row always
finished, the report always written, one exit code.

::

    refuse_unsupported ─► lock ─► open_store ─► start_run ─► flow(ctx) ─► finish_run ─► report

A flow (runs/flows/) takes a ``Context`` of values and returns a ``FlowResult``; it never
finishes the row or writes the report itself, so no action can leave a ``running`` row:
a refusal, an error, a bug or Ctrl-C all end here with the row finished.
SIGTERM/SIGINT set ``ctx.stop`` (the executor stops between requests; a second signal
exits at once and the next start marks the row ``crashed``).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from reconciler.core.clock import Clock, SystemClock
from reconciler.core.errors import (
    EXIT_UNEXPECTED,
    EnvironmentProblem,
    ReconcilerError,
    SafetyRefusal,
    SourceError,
)
from reconciler.core.fingerprint import target_fingerprint
from reconciler.core.settings import Config, Job
from reconciler.core.states import Action, RunStatus
from reconciler.logging import get_logger
from reconciler.report.files import write_report
from reconciler.runs.backend import default_backend
from reconciler.runs.capabilities import refuse_unsupported
from reconciler.runs.context import (
    BackendFactory,
    Context,
    FlowResult,
    RunResult,
    base_summary,
    iso_now,
    new_run_id,
    report_dir_for,
)
from reconciler.runs.signals import StopFlag, graceful_stop
from reconciler.runs.summary import RunSummary
from reconciler.store import Store, job_lease, open_store, preflight

EXIT_INTERRUPTED = 130  # Ctrl-C reached the flow (no signal handler installed)


Flow = Callable[[Context], FlowResult]


def run_action(
    config: Config, job: Job, action: Action, flow: Flow, *,
    clock: Clock | None = None, stop: StopFlag | None = None,
    factory: BackendFactory = default_backend, **summary_extra: Any,
) -> RunResult:
    refuse_unsupported(job, action)  # before any lock or journal row
    clock = clock or SystemClock()
    stop = stop or StopFlag()
    run_id = new_run_id(clock)
    log = get_logger(job=job.name, run_id=run_id)
    summary = base_summary(job, run_id, clock, action=str(action), **summary_extra)
    folder = report_dir_for(config, job, run_id, None)
    started = clock.monotonic()
    log.info(f"{action}.started")
    result: FlowResult | None = None
    tb = ""
    store: Store | None = None
    row = False
    try:
        preflight.writable_dir(config.state_dir, "state_dir")
        with job_lease(config, job.name) as lease, graceful_stop(stop):
            store = open_store(config, lease)
            store.mark_crashed(job.name, holding_lock=True)
            store.start_run(run_id, job.name, False, summary["started_at"],
                            target=target_fingerprint(job.target))
            row = True
            result = flow(Context(config, job, run_id, clock, log, store, stop, factory))
    except (SourceError, SafetyRefusal, EnvironmentProblem) as exc:
        result = FlowResult(exc.exit_code, str(exc), {"refused": str(exc)}, RunStatus.REFUSED)
        log.error(f"{action}.refused", reason=str(exc))
    except ReconcilerError as exc:
        result = FlowResult(exc.exit_code, str(exc), {"error": str(exc)}, RunStatus.FAILED)
        log.error(f"{action}.failed", error=str(exc))
    except KeyboardInterrupt:
        why = "stopped on request (Ctrl-C); run it again to go on"
        result = FlowResult(EXIT_INTERRUPTED, why, {"error": why}, RunStatus.STOPPED)
        log.warning(f"{action}.stopped", reason=why)
    except Exception as exc:  # a bug or the environment: one line, the row closed
        why = f"unexpected error: {type(exc).__name__}: {exc}"
        tb = traceback.format_exc()
        result = FlowResult(EXIT_UNEXPECTED, why, {"error": why}, RunStatus.FAILED)
        log.error(f"{action}.crashed", error=why, traceback=tb)
    finally:
        if result is not None:
            summary.update(result.summary)
            summary["exit_code"] = result.exit_code
        summary.update(finished_at=iso_now(clock),
                       run_seconds=round(clock.monotonic() - started, 3))
        if store is not None:
            try:
                if row:  # SystemExit and the like pass through, the row still closed
                    status = result.status if result else RunStatus.STOPPED
                    code = result.exit_code if result else EXIT_UNEXPECTED
                    store.finish_run(run_id, status, code, summary["finished_at"], summary)
            finally:
                store.close()
    assert result is not None
    summary = RunSummary.assemble(summary).as_json()  # the contract's keys, checked
    message = result.message
    try:
        write_report(folder, summary, result.plan, result.outcomes,
                     action=result.report_action)
    except OSError as exc:
        message += f"; no report written: {folder}: {exc}"
    log.info(f"{action}.finished", exit_code=result.exit_code, status=str(result.status))
    return RunResult(job.name, run_id, result.exit_code, folder, summary, message,
                     result.outcomes or [], traceback=tb, plan=result.plan)
