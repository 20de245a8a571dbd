from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.clock import FakeClock
from reconciler.core.ratelimit import MAX_IN_FLIGHT_SECONDS, SlidingWindowBudget
from reconciler.store.budgets import FileBudget, budget_path


def send(budget, clock: FakeClock, latency: float) -> tuple[float, float]:
    """One request through the budget: (sent at, answered at)."""
    while True:
        grant = budget.acquire(clock.monotonic())
        if grant.token:
            break
        clock.sleep(grant.wait)
    sent = clock.monotonic()
    clock.advance(latency)
    budget.complete(grant.token, clock.monotonic())
    return sent, clock.monotonic()


def test_first_requests_go_at_once_then_wait_for_the_window():
    clock, budget = FakeClock(start=0), SlidingWindowBudget(5, 10)
    sent = [send(budget, clock, 0.0)[0] for _ in range(7)]
    assert sent == [0, 0, 0, 0, 0, 10, 10]


def test_requests_in_flight_hold_their_slot():
    budget = SlidingWindowBudget(2, 10)
    first, second = budget.acquire(0), budget.acquire(0)
    assert first.token and second.token
    assert budget.acquire(0).token is None  # both still in flight
    budget.complete(first.token, 1.0)
    waiting = budget.acquire(1.0)
    assert waiting.token is None and waiting.wait == 10.0  # free at 1 + 10


def test_a_429_pauses_and_halves_then_quiet_windows_give_slots_back():
    budget = SlidingWindowBudget(5, 10)
    budget.throttled(0, retry_after=3)
    assert budget.acquire(1).wait == 2.0  # paused until 3
    assert budget.state.limit == 2
    clock = FakeClock(start=3)
    sent = [send(budget, clock, 0)[0] for _ in range(4)]
    assert sent == [3, 3, 13, 13]  # two per window while adapted
    for _ in range(8):
        send(budget, clock, 0)
    assert budget.state.limit is None  # recovered to the configured limit


def test_a_slot_whose_process_died_expires():
    budget = SlidingWindowBudget(1, 10)
    assert budget.acquire(0).token
    assert budget.acquire(MAX_IN_FLIGHT_SECONDS + 10.5).token


def test_file_budget_is_shared_by_instances(tmp_path):
    path = budget_path(tmp_path, "bloomreach:https://x:/catalogs/c")
    clock = FakeClock(start=0)
    first, second = FileBudget(path, 5, 10), FileBudget(path, 5, 10)
    sent = [send(b, clock, 0.0)[0] for b in (first, second) * 4]
    assert sent == [0, 0, 0, 0, 0, 10, 10, 10]


def test_a_torn_budget_file_starts_afresh(tmp_path):
    path = tmp_path / "b.json"
    path.write_text("{not json")
    assert FileBudget(path, 5, 10).acquire(0).token


@given(
    st.integers(min_value=1, max_value=6),
    st.floats(min_value=0.5, max_value=20),
    st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=40),
)
def test_never_more_than_limit_arrivals_in_any_window(limit, window, latencies):
    """Arrivals lie anywhere between send and answer; even so no window holds more than limit."""
    clock, budget = FakeClock(start=0), SlidingWindowBudget(limit, window)
    spans = [send(budget, clock, latency) for latency in latencies]
    # Worst case for the server: each request arrives as late as possible (at its answer)
    # while the later one arrives as early as possible (when it was sent).
    for i in range(len(spans)):
        later = [s for s, _ in spans[i + limit:]]
        if later:
            assert later[0] - spans[i][1] >= window - 1e-9


@given(st.lists(st.tuples(st.booleans(), st.floats(min_value=0, max_value=2)), min_size=1,
                max_size=30))
def test_two_processes_sharing_a_file_keep_the_limit(tmp_path_factory, steps):
    path = tmp_path_factory.mktemp("budget") / "b.json"
    clock = FakeClock(start=0)
    budgets = (FileBudget(path, 3, 5), FileBudget(path, 3, 5))
    spans = [send(budgets[int(which)], clock, latency) for which, latency in steps]
    for i in range(len(spans)):
        later = [s for s, _ in spans[i + 3:]]
        if later:
            assert later[0] - spans[i][1] >= 5 - 1e-9
