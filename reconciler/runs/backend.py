"""The adapter a run talks to: the job's backend from the registry, its retries logged,
and every answer redacted of the job's secrets."""

from __future__ import annotations

from typing import Any, cast

from reconciler.backends.base import Backend
from reconciler.backends.registry import spec_for
from reconciler.core.clock import Clock
from reconciler.core.errors import ApiError
from reconciler.core.redact import RedactingBackend, target_forms
from reconciler.core.settings import Job


def default_backend(job: Job, clock: Clock, log: Any) -> Backend:
    def on_retry(error: ApiError, attempt: int, delay: float) -> None:
        log.warning("api.retry", error=str(error), attempt=attempt, wait_seconds=round(delay, 3))

    backend = spec_for(job.target.backend).factory(job.target, job.limits, clock,
                                                    on_retry=on_retry)
    # Servers may echo credentials in errors: none may reach a log, the journal or a report.
    return cast(Backend, RedactingBackend(backend, target_forms(job.target)))
