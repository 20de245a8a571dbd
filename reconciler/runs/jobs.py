"""``run_jobs``: run several jobs once, one after the other, until a stop.

The one loop the CLI (``plan``/``run``), the daemon (``--once``) and the demo share; what
to show of each result is the caller's (``on_result``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reconciler.core.errors import (
    EXIT_CONFIG,
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNEXPECTED,
)
from reconciler.core.settings import Config, Job
from reconciler.logging import get_logger
from reconciler.runs.runner import BackendFactory, RunRequest, RunResult, default_backend, run_job
from reconciler.runs.signals import StopFlag, graceful_stop

_SEVERITY = (EXIT_UNEXPECTED, EXIT_CONFIG, EXIT_REFUSED, EXIT_ITEMS_FAILED, EXIT_OK)


def worst_exit_code(codes: Sequence[int]) -> int:
    """The most serious exit code of several jobs'."""
    return min(codes, key=_SEVERITY.index, default=EXIT_OK)


def run_jobs(
    config: Config, jobs: Sequence[Job], request: RunRequest, *,
    stop: StopFlag | None = None, factory: BackendFactory = default_backend,
    on_result: Callable[[Job, RunResult], None] = lambda job, result: None,
) -> list[int]:
    """Each job's exit code; a stop (SIGTERM/SIGINT) leaves the rest unrun, counted as 4."""
    stop = stop or StopFlag()
    log = get_logger()
    codes = []
    with graceful_stop(stop, lambda name: log.warning("signal.stop_requested", signal=name)):
        for job in jobs:
            if stop():
                break
            result = run_job(config, job, request, stop=stop, backend_factory=factory)
            codes.append(result.exit_code)
            on_result(job, result)
    if stop() and len(codes) < len(jobs):
        codes.append(EXIT_ITEMS_FAILED)  # jobs left unrun because of the stop
    return codes
