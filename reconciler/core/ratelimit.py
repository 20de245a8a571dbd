"""The per-catalog request budget: a sliding window over an injected clock, shared and adaptive.

The server counts "N requests in any W seconds" from when requests *arrive*; we only know
when we sent them and when their answers came back. A slot is therefore taken when a
request is admitted (it counts while in flight) and stamped when its answer arrives: the
server saw it no later than that, so ``W`` after the stamp its window has moved on too.
This is why a lone writer that keeps to the budget gets no 429 at all.

The budget is shared by every job and process that targets one catalog (``FileBudget``
in ``budgets.py`` keeps the same state in a locked file). Other writers outside this tool
spend the same server budget, so a 429 that arrives anyway halves the number of slots we
use, and each quiet window gives one back (additive increase, multiplicative decrease): a
neighbouring importer is not starved, and we recover when it stops. A configured limit below the
server's (``requests_per_window`` < 5) leaves the rest to other writers from the start.

``BudgetState`` and its functions are pure; ``SlidingWindowBudget`` holds one in memory.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace

POLL_SECONDS = 0.05  # how soon to ask again when every slot is still in flight
MAX_IN_FLIGHT_SECONDS = 300.0  # a slot its process never completed (it died) expires


@dataclass(frozen=True)
class Slot:
    token: str
    started: float
    ended: float | None = None


@dataclass(frozen=True)
class BudgetState:
    slots: tuple[Slot, ...] = ()
    limit: int | None = None  # the adapted limit; None until a 429 first lowers it
    paused_until: float = float("-inf")
    last_change: float = float("-inf")


@dataclass(frozen=True)
class Grant:
    """``token`` when admitted (pass it to ``complete``); otherwise ``wait`` seconds."""

    token: str | None
    wait: float = 0.0


def _live(state: BudgetState, now: float, window: float) -> tuple[Slot, ...]:
    kept = []
    for slot in state.slots:
        ended = slot.ended
        if ended is None and slot.started < now - MAX_IN_FLIGHT_SECONDS:
            ended = slot.started + MAX_IN_FLIGHT_SECONDS
        if ended is None or ended > now - window:
            kept.append(slot)
    return tuple(kept)


def admit(state: BudgetState, now: float, limit: int, window: float,
          token: str) -> tuple[BudgetState, Grant]:
    """Take a slot now, or say how long to wait."""
    slots = _live(state, now, window)
    effective = min(limit, state.limit) if state.limit is not None else limit
    if state.paused_until > now:
        return replace(state, slots=slots), Grant(None, state.paused_until - now)
    if len(slots) >= effective:
        ended = sorted(s.ended for s in slots if s.ended is not None)
        # The slot to free is the one `effective` places from the newest.
        index = len(slots) - effective
        wait = ended[index] + window - now if index < len(ended) else POLL_SECONDS
        return replace(state, slots=slots), Grant(None, max(wait, POLL_SECONDS / 10))
    return replace(state, slots=(*slots, Slot(token, now))), Grant(token)


def complete(state: BudgetState, token: str, now: float, limit: int,
             window: float) -> BudgetState:
    """Stamp the slot with its answer's arrival; a quiet window gives back one slot."""
    slots = tuple(replace(s, ended=now) if s.token == token else s for s in state.slots)
    state = replace(state, slots=slots)
    if state.limit is not None and now - state.last_change >= window:
        raised = state.limit + 1
        state = replace(state, limit=None if raised >= limit else raised, last_change=now)
    return state


def throttled(state: BudgetState, now: float, limit: int,
              retry_after: float | None) -> BudgetState:
    """The server said 429 despite the budget: someone else writes too. Halve, and pause."""
    current = state.limit if state.limit is not None else limit
    return replace(
        state,
        limit=max(1, current // 2),
        last_change=now,
        paused_until=max(state.paused_until, now + retry_after) if retry_after else
        state.paused_until,
    )


@dataclass
class SlidingWindowBudget:
    """The budget of one process (shared by the executors holding this object)."""

    limit: int
    window: float
    state: BudgetState = field(default_factory=BudgetState)

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError("a budget needs limit >= 1 and window > 0")
        self._lock = threading.Lock()

    def acquire(self, now: float) -> Grant:
        with self._lock:
            self.state, grant = admit(self.state, now, self.limit, self.window,
                                      uuid.uuid4().hex)
            return grant

    def complete(self, token: str, now: float) -> None:
        with self._lock:
            self.state = complete(self.state, token, now, self.limit, self.window)

    def throttled(self, now: float, retry_after: float | None) -> None:
        with self._lock:
            self.state = throttled(self.state, now, self.limit, retry_after)
