"""A sliding-window request budget over an injected clock.

The server counts "N requests in any W seconds" from when requests *arrive*; we only know
when we sent them and when their answers came back. Stamping a request with the time its
answer arrived (``record``) is the safe side: the server saw it no later than that, so
waiting ``W`` from the stamp guarantees the server's window has moved on too. This is why
a lone writer that keeps to this budget gets no 429 at all.
"""

from __future__ import annotations

from collections import deque


class SlidingWindowBudget:
    """Admits at most ``limit`` requests in any ``window`` seconds; honours pauses (429)."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a budget needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._stamps: deque[float] = deque()
        self._paused_until = float("-inf")

    def wait_time(self, now: float) -> float:
        """Seconds to wait before the next request may be sent (0 when it may go now)."""
        while self._stamps and self._stamps[0] <= now - self.window:
            self._stamps.popleft()
        wait = self._paused_until - now
        if len(self._stamps) >= self.limit:
            wait = max(wait, self._stamps[-self.limit] + self.window - now)
        return max(0.0, wait)

    def record(self, stamp: float) -> None:
        """Count one request, stamped when its answer arrived (see the module docstring)."""
        self._stamps.append(stamp)

    def pause_until(self, until: float) -> None:
        """Send nothing before ``until`` (the server's Retry-After said so)."""
        self._paused_until = max(self._paused_until, until)
