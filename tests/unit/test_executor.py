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
    assert result.stopped.startswith("stopped, the API kept failing")
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


def test_rejected_batch_is_split_and_resent(clock):
    fake = backend()
    fake.faults.append(FatalApiError("bulk delete: HTTP 400: Payload size exceeded", status=400))
    result = Executor(fake, LIMITS, clock).run(IDS)
    assert result.counts() == {"queued": 30, "failed": 0, "unknown": 0, "not_sent": 0}
    assert result.splits == 1
    assert [len(r) for r in fake.delete_requests[:2]] == [2, 3]


def test_a_single_id_still_refused_after_splitting_fails(clock):
    fake = backend()
    refusal = FatalApiError("bulk delete: HTTP 400: Invalid JSON", status=400)
    fake.faults.extend([refusal] * 3)  # the batch of 5, then its half of 2, then id-000 alone
    result = Executor(fake, LIMITS, clock).run(IDS[:5])
    by_id = {o.item_id: o for o in result.outcomes}
    assert by_id["id-000"].outcome == "failed"
    assert by_id["id-000"].detail == "bulk delete: HTTP 400: Invalid JSON"
    assert result.counts() == {"queued": 4, "failed": 1, "unknown": 0, "not_sent": 0}


def test_a_non_400_rejection_fails_the_batch_and_the_run_goes_on(clock):
    fake = backend()
    fake.faults.append(FatalApiError("bulk delete: HTTP 404: Catalog not found", status=404))
    result = Executor(fake, LIMITS, clock).run(IDS)
    assert result.counts() == {"queued": 25, "failed": 5, "unknown": 0, "not_sent": 0}


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


class RecordingLedger:
    def __init__(self):
        self.events = []

    def sending(self, seq, ids):
        self.events.append(("sending", seq, list(ids)))

    def answered(self, seq, outcomes):
        self.events.append(("answered", seq, [(o.item_id, o.outcome) for o in outcomes]))


def test_the_ledger_hears_of_each_batch_before_it_is_sent(clock):
    fake, ledger = backend(), RecordingLedger()

    original = fake.delete_batch

    def checked(ids):
        assert ledger.events[-1] == ("sending", len(fake.delete_requests) + 1, list(ids))
        return original(ids)

    fake.delete_batch = checked
    Executor(fake, LIMITS, clock, ledger=ledger).run(IDS[:10])
    assert [e[:2] for e in ledger.events] == [
        ("sending", 1), ("answered", 1), ("sending", 2), ("answered", 2)]


def test_a_stop_request_leaves_the_rest_not_sent(clock):
    fake = backend()
    result = Executor(fake, LIMITS, clock,
                      should_stop=lambda: len(fake.delete_requests) >= 2).run(IDS)
    requests = fake.delete_requests
    assert len(requests) == 2
    assert result.counts() == {"queued": 10, "failed": 0, "unknown": 0, "not_sent": 20}
    assert result.stopped.startswith("stopped on request")


def test_retry_deadline_on_the_injected_clock(clock):
    from dataclasses import replace

    limits = replace(LIMITS, max_attempts=100, retry_deadline_seconds=5,
                     backoff_initial_seconds=1, backoff_max_seconds=1)
    fake = backend()
    fake.faults.extend([RetriableApiError("HTTP 502", status=502)] * 100)
    result = Executor(fake, limits, clock).run(IDS[:5])
    assert result.counts()["unknown"] == 5
    assert 3 <= result.requests <= 6  # 1-2 s apart, for about 5 s


def test_a_414_uri_too_long_is_split_like_a_400(clock):
    fake = backend()
    fake.faults.append(FatalApiError("delete entities: HTTP 414: URI Too Long", status=414))
    result = Executor(fake, LIMITS, clock).run(IDS)
    assert result.counts() == {"queued": 30, "failed": 0, "unknown": 0, "not_sent": 0}
    assert result.splits == 1
