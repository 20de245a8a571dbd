"""Drive the planned deletes through the rate budget, and give every id exactly one outcome.

Outcomes:

* ``queued``: the server answered ``success: true`` for this id (bulk delete only queues;
  the API confirms nothing more).
* ``failed``: the server refused this id (its own error text is the detail), or refused
  the whole batch with a non-retriable 4xx.
* ``unknown``: the request may or may not have been applied (the answer could not be
  matched to the ids, or retries ran out); never reported as deleted.
* ``not_sent``: the run stopped (a credentials error, or the API stayed down) before
  this id's batch was sent.

A throttled or failed request is resent with the same ids, so nothing is lost or sent
twice in one run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from reconciler.backends.base import Backend, ItemResult
from reconciler.batching import split_batches
from reconciler.clock import Clock
from reconciler.config import Limits
from reconciler.errors import (
    ApiError,
    AuthError,
    BatchAnswerMismatch,
    FatalApiError,
    RetriableApiError,
)
from reconciler.ratelimit import SlidingWindowBudget
from reconciler.retry import retrying

QUEUED = "queued"
FAILED = "failed"
UNKNOWN = "unknown"
NOT_SENT = "not_sent"
SKIPPED = "skipped"
PLANNED = "planned"
FINAL_OUTCOMES = (QUEUED, FAILED, UNKNOWN, NOT_SENT)


@dataclass(frozen=True)
class Outcome:
    item_id: str
    outcome: str
    detail: str = ""


@dataclass
class ExecutionResult:
    outcomes: list[Outcome] = field(default_factory=list)
    batches: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    budget_wait_seconds: float = 0.0
    stopped: str = ""  # why the run stopped early, if it did
    stop_error: ApiError | None = None

    def counts(self) -> dict[str, int]:
        counts = Counter(o.outcome for o in self.outcomes)
        return {name: counts.get(name, 0) for name in FINAL_OUTCOMES}


OutcomeSink = Callable[[Outcome], None]
BatchSink = Callable[[int, Sequence[Outcome], float], None]


class Executor:
    """Sends batches for one backend; the budget may be shared by executors of one catalog."""

    def __init__(
        self,
        backend: Backend,
        limits: Limits,
        clock: Clock,
        budget: SlidingWindowBudget | None = None,
        *,
        on_outcome: OutcomeSink | None = None,
        on_batch: BatchSink | None = None,
        on_retry: Callable[[ApiError, int, float], None] | None = None,
    ) -> None:
        self._backend = backend
        self._limits = limits
        self._clock = clock
        self._budget = budget or SlidingWindowBudget(
            limits.requests_per_window, limits.window_seconds
        )
        self._on_outcome = on_outcome
        self._on_batch = on_batch
        self._on_retry = on_retry

    def run(self, ids: Iterable[str]) -> ExecutionResult:
        result = ExecutionResult()
        batches = split_batches(ids, self._backend.batch_shape)
        for batch in batches:
            if result.stopped:
                self._record(result, [Outcome(i, NOT_SENT, result.stopped) for i in batch])
                continue
            result.batches += 1
            started = self._clock.monotonic()
            outcomes = self._send(batch, result)
            self._record(result, outcomes)
            if self._on_batch:
                self._on_batch(result.batches, outcomes, self._clock.monotonic() - started)
        return result

    def _record(self, result: ExecutionResult, outcomes: list[Outcome]) -> None:
        result.outcomes.extend(outcomes)
        if self._on_outcome:
            for outcome in outcomes:
                self._on_outcome(outcome)

    def _send(self, batch: list[str], result: ExecutionResult) -> list[Outcome]:
        def attempt() -> list[ItemResult]:
            wait = self._budget.wait_time(self._clock.monotonic())
            if wait > 0:
                result.budget_wait_seconds += wait
                self._clock.sleep(wait)
            result.requests += 1
            try:
                return self._backend.delete_batch(batch)
            except RetriableApiError as exc:
                if exc.throttled:
                    result.throttled += 1
                    if exc.retry_after is not None:
                        self._budget.pause_until(self._clock.monotonic() + exc.retry_after)
                raise
            finally:
                self._budget.record(self._clock.monotonic())

        def on_retry(error: RetriableApiError, attempt_number: int, delay: float) -> None:
            result.retries += 1
            if self._on_retry:
                self._on_retry(error, attempt_number, delay)

        try:
            answers = retrying(self._limits, self._clock, on_retry)(attempt)
        except BatchAnswerMismatch as exc:
            return [Outcome(i, UNKNOWN, str(exc)) for i in batch]
        except AuthError as exc:
            self._stop(result, exc, f"stopped: {exc}")
            return [Outcome(i, NOT_SENT, result.stopped) for i in batch]
        except RetriableApiError as exc:
            self._stop(result, exc, f"stopped after {self._limits.max_attempts} attempts: {exc}")
            return [Outcome(i, UNKNOWN, str(exc)) for i in batch]
        except FatalApiError as exc:
            return [Outcome(i, FAILED, str(exc)) for i in batch]
        return [
            Outcome(i, QUEUED) if answer.ok else Outcome(i, FAILED, answer.error)
            for i, answer in zip(batch, answers, strict=True)
        ]

    @staticmethod
    def _stop(result: ExecutionResult, error: ApiError, reason: str) -> None:
        result.stopped = reason
        result.stop_error = error
