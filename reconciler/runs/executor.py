"""Drive the planned deletes through the rate budget, and give every id exactly one outcome.

Outcomes:

* ``queued``: the server answered ``success: true`` for this id (bulk delete only queues;
  read-back later confirms it).
* ``failed``: the server refused this id (its own error text is the detail), or refused
  it alone with a 400 after its batch was split down to it.
* ``unknown``: the request may or may not have been applied (the answer could not be
  matched to the ids, or retries ran out); never reported as deleted, resent on resume.
* ``not_sent``: the run stopped (a signal, a credentials error, the API stayed down)
  before this id was sent; the next run resumes it.

A throttled or failed request is resent with the same ids, so nothing is lost or sent
twice in one run. The ``ledger`` hears of every batch before it is sent and of every
outcome when it is known, which is how the journal makes a run survive a crash.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reconciler.backends.base import Backend, ItemResult
from reconciler.backends.retry import retrying
from reconciler.core import states
from reconciler.core.batching import BatchShape, split_batches
from reconciler.core.clock import Clock
from reconciler.core.errors import (
    ApiError,
    AuthError,
    BatchAnswerMismatch,
    FatalApiError,
    RetriableApiError,
)
from reconciler.core.ratelimit import SlidingWindowBudget
from reconciler.core.settings import Limits

QUEUED = states.Outcome.QUEUED
FAILED = states.Outcome.FAILED
UNKNOWN = states.Outcome.UNKNOWN
NOT_SENT = states.Outcome.NOT_SENT
SKIPPED = states.Outcome.SKIPPED
PLANNED = states.Outcome.PLANNED
FINAL_OUTCOMES = (QUEUED, FAILED, UNKNOWN, NOT_SENT)
STOP_REQUESTED = "stopped on request (signal); the next run resumes the rest"
SPLIT_EXTRA_REQUESTS = 8


def split_request_cap(size: int) -> int:
    """The requests one batch of ``size`` ids may cost when bisected after a 400: enough to
    isolate a few bad ids (2 per level of halving), never ~2n."""
    return 1 + 2 * max(1, math.ceil(math.log2(max(size, 2)))) + SPLIT_EXTRA_REQUESTS


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
    splits: int = 0
    budget_wait_seconds: float = 0.0
    stopped: str = ""  # why the run stopped early, if it did
    stop_error: ApiError | None = None

    def counts(self) -> dict[str, int]:
        counts = Counter(o.outcome for o in self.outcomes)
        return {name: counts.get(name, 0) for name in FINAL_OUTCOMES}


class Ledger(Protocol):
    """Where batches and outcomes are recorded (the journal; nothing for a test)."""

    def sending(self, seq: int, ids: Sequence[str]) -> None:
        """Called before the request for these ids goes out."""

    def answered(self, seq: int | None, outcomes: Sequence[Outcome]) -> None:
        """Called once the outcomes are known (``seq`` is None for ids never sent)."""


class NoLedger:
    def sending(self, seq: int, ids: Sequence[str]) -> None:
        pass

    def answered(self, seq: int | None, outcomes: Sequence[Outcome]) -> None:
        pass


class _StopNow(Exception):
    """A stop was requested before the request went out."""


class _BudgetWaitTooLong(Exception):
    """The shared budget asks for a wait past the retry deadline (a pause stored by another
    process or an older version): not obeyed, like a server's."""


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
        ledger: Ledger | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        first_seq: int = 1,
        on_outcome: OutcomeSink | None = None,
        on_batch: BatchSink | None = None,
        on_retry: Callable[[ApiError, int, float], None] | None = None,
        send: Callable[[list[str]], list[ItemResult]] | None = None,
        shape: BatchShape | None = None,
    ) -> None:
        self._backend = backend
        # What one request does with a batch: a bulk delete, unless told otherwise (restore).
        self._send_batch = send or backend.delete_batch
        self._shape = shape or backend.batch_shape
        self._limits = limits
        self._clock = clock
        self._budget = budget or SlidingWindowBudget(
            limits.requests_per_window, limits.window_seconds
        )
        self._ledger = ledger or NoLedger()
        self._should_stop = should_stop
        self._next_seq = first_seq
        self._on_outcome = on_outcome
        self._on_batch = on_batch
        self._on_retry = on_retry

    def run(self, ids: Iterable[str]) -> ExecutionResult:
        # Kept on the executor: when the ledger fails (the journal's disk or file gone),
        # the caller still reports what the server was asked and answered.
        result = self.partial = ExecutionResult()
        self.in_flight: list[str] = []
        for batch in split_batches(ids, self._shape):
            if not result.stopped and self._should_stop():
                result.stopped = STOP_REQUESTED
            if result.stopped:
                self._record(result, None, [Outcome(i, NOT_SENT, result.stopped) for i in batch])
                continue
            self._deliver(batch, result)
        return result

    def _deliver(self, batch: list[str], result: ExecutionResult) -> None:
        """Send one batch; a batch refused whole with a 400 is bisected (``_bisect``)."""
        cap = split_request_cap(len(batch))
        requests_before = result.requests
        refusal = self._deliver_part(batch, result)
        if refusal is not None:
            self._bisect(batch, refusal, result,
                         lambda: cap - (result.requests - requests_before), cap)

    def _deliver_part(self, batch: list[str], result: ExecutionResult) -> FatalApiError | None:
        """One request for these ids (a batch of its own); the 400 when it was refused whole."""
        seq = self._next_seq
        self._next_seq += 1
        result.batches += 1
        started = self._clock.monotonic()
        self._ledger.sending(seq, batch)
        self.in_flight = batch  # sent, and its answer not yet recorded
        outcomes = self._send(batch, result)
        if isinstance(outcomes, FatalApiError):  # refused whole: the halves go as new batches
            self.in_flight = []
            self._ledger.answered(seq, [])
            return outcomes
        self._record(result, seq, outcomes)
        self.in_flight = []
        if self._on_batch:
            self._on_batch(seq, outcomes, self._clock.monotonic() - started)
        return None

    def _bisect(self, batch: list[str], refusal: FatalApiError, result: ExecutionResult,
                left: Callable[[], int], cap: int) -> None:
        """Find the ids a 400 is about by halving, within a bounded number of requests.

        Both halves refused with the same text means the refusal is not about one id (a
        malformed request, a server-wide rule): every id fails with that text, no further
        halving. When the batch's request cap (``split_request_cap``) is spent, the ids
        still unresolved fail with the server's text too, instead of ~2n requests.
        """
        result.splits += 1
        middle = len(batch) // 2
        refused: list[tuple[list[str], FatalApiError]] = []
        for half in (batch[:middle], batch[middle:]):
            if result.stopped:
                self._record(result, None, [Outcome(i, NOT_SENT, result.stopped) for i in half])
            elif left() <= 0:
                refused.append((half, refusal))
            else:
                answer = self._deliver_part(half, result)
                if answer is not None:
                    refused.append((half, answer))
        if len(refused) == 2 and refused[0][1].args == refused[1][1].args == refusal.args:
            self._fail(result, batch, f"{refusal} (the whole batch was refused the same way, "
                                      "halves too)")
            return
        for half, error in refused:
            if left() <= 0:
                self._fail(result, half, f"{error} (not split further: the batch used its "
                                         f"{cap} requests)")
            else:
                self._bisect(half, error, result, left, cap)

    def _fail(self, result: ExecutionResult, ids: list[str], detail: str) -> None:
        self._record(result, None, [Outcome(i, FAILED, detail) for i in ids])

    def _record(self, result: ExecutionResult, seq: int | None,
                outcomes: list[Outcome]) -> None:
        result.outcomes.extend(outcomes)  # first: answered, whether journaled or not
        self._ledger.answered(seq, outcomes)
        if self._on_outcome:
            for outcome in outcomes:
                self._on_outcome(outcome)

    def _send(self, batch: list[str],
              result: ExecutionResult) -> list[Outcome] | FatalApiError:
        """The outcomes of one batch, or the 400 that refused it whole (split it)."""

        def attempt() -> list[ItemResult]:
            token = self._wait_for_slot(result)
            result.requests += 1
            try:
                return self._send_batch(batch)
            except RetriableApiError as exc:
                if exc.throttled:
                    result.throttled += 1
                    self._budget.throttled(self._clock.monotonic(), self._bounded_pause(exc))
                raise
            finally:
                self._budget.complete(token, self._clock.monotonic())

        def on_retry(error: RetriableApiError, attempt_number: int, delay: float) -> None:
            result.retries += 1
            if self._on_retry:
                self._on_retry(error, attempt_number, delay)

        try:
            answers = retrying(self._limits, self._clock, on_retry)(attempt)
        except _StopNow:
            result.stopped = STOP_REQUESTED
            return [Outcome(i, NOT_SENT, result.stopped) for i in batch]
        except _BudgetWaitTooLong as exc:
            result.stopped = (f"stopped: the shared rate budget asks to wait {exc} s, longer "
                              f"than retry_deadline_seconds "
                              f"({self._limits.retry_deadline_seconds:.0f} s); the next run "
                              "resumes")
            return [Outcome(i, NOT_SENT, result.stopped) for i in batch]
        except BatchAnswerMismatch as exc:
            return [Outcome(i, UNKNOWN, str(exc)) for i in batch]
        except AuthError as exc:
            self._stop(result, exc, f"stopped: {exc}")
            return [Outcome(i, NOT_SENT, result.stopped) for i in batch]
        except RetriableApiError as exc:
            deadline = self._limits.retry_deadline_seconds
            if exc.retry_after is not None and exc.retry_after > deadline:
                # The server asked for a pause longer than we may wait: not obeyed; the
                # request was refused, so its ids were not applied and stay resumable.
                why = (f"stopped: the server asked to wait {exc.retry_after:.0f} s, longer than "
                       f"retry_deadline_seconds ({deadline:.0f} s); "
                       "the next run resumes")
                self._stop(result, exc, why)
                return [Outcome(i, NOT_SENT if exc.throttled else UNKNOWN, f"{why}: {exc}")
                        for i in batch]
            self._stop(result, exc, f"stopped, the API kept failing: {exc}")
            if exc.throttled:  # a 429 (or Adobe's 503) means the request was not applied
                return [Outcome(i, NOT_SENT, result.stopped) for i in batch]
            return [Outcome(i, UNKNOWN, str(exc)) for i in batch]
        except FatalApiError as exc:
            if exc.status in (400, 414) and len(batch) > 1:  # 414: the URL was too long
                return exc
            return [Outcome(i, FAILED, str(exc)) for i in batch]
        return [
            Outcome(i, QUEUED) if answer.ok else Outcome(i, FAILED, answer.error)
            for i, answer in zip(batch, answers, strict=True)
        ]

    def _bounded_pause(self, error: RetriableApiError) -> float | None:
        """The server's pause for the shared budget, or None when it is longer than the
        retry deadline: such a pause is not obeyed (the batch stops, resumable), and later
        runs and other processes sharing the budget must not inherit a day-long wait."""
        if error.retry_after is None or error.retry_after > self._limits.retry_deadline_seconds:
            return None
        return error.retry_after

    def _wait_for_slot(self, result: ExecutionResult) -> str:
        """Wait until the budget admits a request; a stop request ends the wait."""
        waited = 0.0
        while True:
            grant = self._budget.acquire(self._clock.monotonic())
            if grant.token is None and waited + grant.wait > self._limits.retry_deadline_seconds:
                raise _BudgetWaitTooLong(f"{grant.wait:.0f}")
            waited += grant.wait
            if grant.token is not None:
                if self._should_stop():
                    self._budget.complete(grant.token, self._clock.monotonic())
                    raise _StopNow
                return grant.token
            result.budget_wait_seconds += grant.wait
            self._clock.sleep(grant.wait)
            if self._should_stop():
                raise _StopNow

    @staticmethod
    def _stop(result: ExecutionResult, error: ApiError, reason: str) -> None:
        result.stopped = reason
        result.stop_error = error
