from __future__ import annotations

from reconciler.backends.memory import MemoryBackend
from reconciler.core.batching import BatchShape
from reconciler.core.errors import AuthError, BatchAnswerMismatch, FatalApiError, RetriableApiError
from reconciler.core.ratelimit import SlidingWindowBudget
from reconciler.core.settings import Limits
from reconciler.runs.executor import Executor

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


class RefusingBackend(MemoryBackend):
    """Refuses with a 400 any request holding one of ``bad`` (as a server would)."""

    def __init__(self, bad, text="bulk delete: HTTP 400: Invalid JSON", **kw):
        super().__init__(IDS, shape=BatchShape(max_ids=kw.pop("max_ids", 5), max_bytes=10**6))
        self.bad, self.text, self.requests = set(bad), text, 0

    def delete_batch(self, ids):
        self.requests += 1
        if self.bad & set(ids):
            raise FatalApiError(self.text.format(first=min(self.bad & set(ids))), status=400)
        return super().delete_batch(ids)


def test_a_single_id_still_refused_after_splitting_fails(clock):
    fake = RefusingBackend({"id-000"})
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
    from reconciler.core.ratelimit import SlidingWindowBudget

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


def test_a_pause_longer_than_the_retry_deadline_is_not_obeyed(clock):
    from dataclasses import replace

    limits = replace(LIMITS, retry_deadline_seconds=600)
    budget = SlidingWindowBudget(limits.requests_per_window, limits.window_seconds)
    fake = backend()
    fake.faults.append(RetriableApiError("bulk delete: HTTP 429: Rate limit exceeded",
                                         status=429, retry_after=86400))
    result = Executor(fake, limits, clock, budget).run(IDS)
    assert result.counts() == {"queued": 0, "failed": 0, "unknown": 0, "not_sent": 30}
    assert result.requests == 1 and max(clock.sleeps, default=0) <= 600
    assert result.stopped.startswith(
        "stopped: the server asked to wait 86400 s, longer than retry_deadline_seconds (600 s)")
    # The shared budget never holds a pause past the deadline: the next run does not hang.
    assert budget.state.paused_until <= clock.monotonic()
    assert len(fake.items) == 30


def test_a_pause_within_the_deadline_is_cut_to_the_time_left(clock):
    from dataclasses import replace

    limits = replace(LIMITS, retry_deadline_seconds=10, max_attempts=10)
    fake = backend()
    fake.faults.extend([RetriableApiError("HTTP 503", status=503, retry_after=6)] * 3)
    result = Executor(fake, limits, clock).run(IDS[:5])
    assert sum(clock.sleeps) <= 10 + 1e-9
    assert result.counts()["unknown"] == 5  # a 503 may have been applied: unknown, not lost


def test_a_400_about_the_whole_request_is_not_bisected_down_to_single_ids(clock):
    fake = RefusingBackend(IDS, text="bulk delete: HTTP 400: Payload is not a list",
                           max_ids=30)
    result = Executor(fake, LIMITS, clock).run(IDS)
    assert result.counts() == {"queued": 0, "failed": 30, "unknown": 0, "not_sent": 0}
    assert fake.requests == 3  # the batch, then both halves refused the same way
    assert result.outcomes[0].detail == ("bulk delete: HTTP 400: Payload is not a list (the "
                                         "whole batch was refused the same way, halves too)")


def test_bisection_costs_a_bounded_number_of_requests(clock):
    from reconciler.runs.executor import split_request_cap

    bad = {IDS[n] for n in range(0, 30, 3)}  # ten bad ids spread over one batch of 30
    # The server names the first bad id, so halves are never refused "the same way".
    fake = RefusingBackend(bad, text="bulk delete: HTTP 400: bad id {first}", max_ids=30)
    result = Executor(fake, LIMITS, clock).run(IDS)
    assert fake.requests <= split_request_cap(30) == 19
    counts = result.counts()
    assert counts["failed"] + counts["queued"] == 30 and counts["queued"] > 0
    assert all(o.outcome == "failed" for o in result.outcomes if o.item_id in bad)
    capped = [o for o in result.outcomes if "not split further" in o.detail]
    assert capped and all(o.detail.endswith(" (not split further: the batch used its 19 "
                                            "requests)") for o in capped)
    assert capped[0].detail.startswith("bulk delete: HTTP 400: bad id id-")


def test_a_pause_stored_in_the_shared_budget_past_the_deadline_is_not_obeyed(clock):
    from dataclasses import replace

    from reconciler.core.ratelimit import BudgetState

    limits = replace(LIMITS, retry_deadline_seconds=600)
    budget = SlidingWindowBudget(limits.requests_per_window, limits.window_seconds)
    # Another process (a longer deadline, an older version) stored a day-long pause.
    budget.state = BudgetState(paused_until=clock.monotonic() + 86400)
    fake = backend()
    result = Executor(fake, limits, clock, budget).run(IDS[:10])
    assert result.counts() == {"queued": 0, "failed": 0, "unknown": 0, "not_sent": 10}
    assert result.stopped == ("stopped: the shared rate budget asks to wait 86400 s, longer "
                              "than retry_deadline_seconds (600 s); the next run resumes")
    assert clock.sleeps == [] and result.requests == 0


def test_a_414_uri_too_long_is_split_like_a_400(clock):
    fake = backend()
    fake.faults.append(FatalApiError("delete entities: HTTP 414: URI Too Long", status=414))
    result = Executor(fake, LIMITS, clock).run(IDS)
    assert result.counts() == {"queued": 30, "failed": 0, "unknown": 0, "not_sent": 0}
    assert result.splits == 1
