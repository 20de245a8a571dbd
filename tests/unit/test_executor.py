from __future__ import annotations

from reconciler.backends.memory import MemoryBackend
from reconciler.batching import BatchShape
from reconciler.config import Limits
from reconciler.errors import AuthError, BatchAnswerMismatch, FatalApiError, RetriableApiError
from reconciler.executor import Executor

LIMITS = Limits(requests_per_window=5, window_seconds=10, max_attempts=4,
                backoff_initial_seconds=1, backoff_max_seconds=8)
IDS = [f"id-{n:03d}" for n in range(30)]  # six batches of five


def backend(**kw):
    return MemoryBackend(IDS, shape=BatchShape(max_ids=5, max_bytes=10_000), **kw)


def test_all_queued_within_the_budget(clock):
    fake = backend()
    result = Executor(fake, LIMITS, clock).run(IDS)
    assert result.counts() == {"queued": 30, "failed": 0, "unknown": 0, "not_sent": 0}
    assert fake.items == {}
    assert clock.sleeps == [10.0]  # five requests, then the sixth waits for the window
    assert result.batches == result.requests == 6


def test_429_waits_for_retry_after_and_loses_nothing(clock):
    fake = backend()
    fake.faults.extend([RetriableApiError("throttled", status=429, retry_after=3.5)] * 2)
    result = Executor(fake, LIMITS, clock).run(IDS)
    assert result.counts()["queued"] == 30
    assert result.throttled == 2 and result.retries == 2
    assert 3.5 in clock.sleeps
    assert sorted(fake.deleted) == IDS and len(fake.deleted) == len(set(fake.deleted))


def test_429_without_retry_after_backs_off(clock):
    fake = backend()
    fake.faults.append(RetriableApiError("throttled", status=429))
    result = Executor(fake, LIMITS, clock).run(IDS[:5])
    assert result.counts()["queued"] == 5
    assert 1.0 <= clock.sleeps[0] <= 2.0  # initial backoff plus up to one second of jitter


def test_retries_running_out_stop_the_run(clock):
    fake = backend()
    fake.faults.extend([RetriableApiError("HTTP 503", status=503)] * LIMITS.max_attempts)
    result = Executor(fake, LIMITS, clock).run(IDS)
    counts = result.counts()
    assert counts == {"queued": 0, "failed": 0, "unknown": 5, "not_sent": 25}
    assert result.stopped.startswith("stopped after 4 attempts")
    assert len(fake.items) == 30


def test_auth_error_stops_at_once(clock):
    fake = backend()
    fake.faults.append(AuthError("bulk delete: HTTP 403: Missing permission", status=403))
    result = Executor(fake, LIMITS, clock).run(IDS)
    assert result.counts() == {"queued": 0, "failed": 0, "unknown": 0, "not_sent": 30}
    assert "403" in result.stopped and result.requests == 1


def test_mismatched_answer_is_unknown_for_that_batch_only(clock):
    fake = backend()
    fake.faults.append(BatchAnswerMismatch("sent 5 ids, answer has 4 entries"))
    result = Executor(fake, LIMITS, clock).run(IDS)
    assert result.counts() == {"queued": 25, "failed": 0, "unknown": 5, "not_sent": 0}
    assert all(o.outcome == "unknown" for o in result.outcomes[:5])


def test_rejected_batch_fails_and_the_run_goes_on(clock):
    fake = backend()
    fake.faults.append(FatalApiError("bulk delete: HTTP 400: Payload size exceeded", status=400))
    result = Executor(fake, LIMITS, clock).run(IDS)
    assert result.counts() == {"queued": 25, "failed": 5, "unknown": 0, "not_sent": 0}
    assert result.outcomes[0].detail == "bulk delete: HTTP 400: Payload size exceeded"


def test_per_item_failures_carry_the_server_text(clock):
    fake = backend()
    result = Executor(fake, LIMITS, clock).run(["id-000", ""])
    assert [(o.item_id, o.outcome, o.detail) for o in result.outcomes] == [
        ("id-000", "queued", ""),
        ("", "failed", "Validation error: item id must not be empty"),
    ]


def test_budget_is_shared_between_executors(clock):
    from reconciler.ratelimit import SlidingWindowBudget

    budget = SlidingWindowBudget(5, 10)
    first, second = backend(), backend()
    Executor(first, LIMITS, clock, budget).run(IDS[:20])
    Executor(second, LIMITS, clock, budget).run(IDS[20:])
    assert clock.sleeps == [10.0]  # six requests in all: the sixth waited
