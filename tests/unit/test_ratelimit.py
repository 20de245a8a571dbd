from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.clock import FakeClock
from reconciler.ratelimit import SlidingWindowBudget


def send(budget: SlidingWindowBudget, clock: FakeClock, latency: float) -> tuple[float, float]:
    clock.sleep(budget.wait_time(clock.monotonic()))
    sent = clock.monotonic()
    clock.advance(latency)
    budget.record(clock.monotonic())
    return sent, clock.monotonic()


def test_first_requests_go_at_once_then_wait_for_the_window():
    clock, budget = FakeClock(start=0), SlidingWindowBudget(5, 10)
    sent = [send(budget, clock, 0.0)[0] for _ in range(7)]
    assert sent == [0, 0, 0, 0, 0, 10, 10]


def test_pause_until_blocks_even_with_budget_left():
    budget = SlidingWindowBudget(5, 10)
    budget.pause_until(7.5)
    assert budget.wait_time(2.5) == 5.0
    assert budget.wait_time(8) == 0


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
