"""The one retry policy: tenacity, exponential backoff with jitter, Retry-After honoured.

Only ``RetriableApiError`` is retried, up to ``max_attempts`` or ``retry_deadline_seconds``,
whichever comes first. When the server said how long to wait, that wins over the backoff;
the sleep goes through the injected clock, so tests never wait.

Every wait is bounded by the deadline: a backoff is cut to the time left, and a server that
asks for a pause beyond it (``Retry-After: 86400``) is not obeyed: retrying stops at once and
the error is raised, so the caller can leave the batch resumable instead of sleeping a day.
"""

from __future__ import annotations

from collections.abc import Callable

import tenacity

from reconciler.core.clock import Clock
from reconciler.core.errors import RetriableApiError
from reconciler.core.settings import Limits

OnRetry = Callable[[RetriableApiError, int, float], None]


def _server_said_or(backoff: tenacity.wait.wait_base,
                    deadline: _StopAfterClockDelay) -> Callable[[tenacity.RetryCallState], float]:
    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetriableApiError) and error.retry_after is not None:
            return min(error.retry_after, deadline.remaining())
        return min(float(backoff(state)), deadline.remaining())

    return wait


class _StopAfterClockDelay(tenacity.stop.stop_base):
    """Stop once ``deadline`` seconds have passed on the injected clock (tenacity's own
    ``stop_after_delay`` reads the real monotonic clock), or at once when the server asks
    for a pause that would end past the deadline."""

    def __init__(self, clock: Clock, deadline: float) -> None:
        self._clock = clock
        self._deadline_at = clock.monotonic() + deadline

    def remaining(self) -> float:
        return max(0.0, self._deadline_at - self._clock.monotonic())

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, RetriableApiError) and error.retry_after is not None \
                and error.retry_after > self.remaining():
            return True
        return self._clock.monotonic() >= self._deadline_at


def retrying(limits: Limits, clock: Clock, on_retry: OnRetry | None = None) -> tenacity.Retrying:
    """A tenacity ``Retrying`` for one request; re-raises the last error when attempts run out."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        if on_retry and isinstance(error, RetriableApiError):
            on_retry(error, state.attempt_number, delay)

    # Exponential from backoff_initial_seconds, capped, plus up to one initial step of jitter
    # so that writers throttled together do not retry together.
    backoff = tenacity.wait_exponential(
        multiplier=limits.backoff_initial_seconds, max=limits.backoff_max_seconds
    ) + tenacity.wait_random(0, limits.backoff_initial_seconds)
    deadline = _StopAfterClockDelay(clock, limits.retry_deadline_seconds)
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(RetriableApiError),
        stop=tenacity.stop_after_attempt(limits.max_attempts) | deadline,
        wait=_server_said_or(backoff, deadline),
        sleep=clock.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
