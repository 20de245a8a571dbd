"""Time as an injected dependency, so the pure core and its tests never read the real clock.

``SystemClock`` is the one place that does; ``FakeClock`` is the reference fake whose
``sleep`` advances time instantly, which lets tests run the real rate limiter and retry
policy in microseconds and without depending on wall-clock timing.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (a fake clock just advances)."""

    def utcnow(self) -> datetime:
        """Wall-clock time for timestamps in reports and run ids."""


class SystemClock:
    """The real clock. With a ``wake`` event, a sleep ends early when it is set (a stop)."""

    def __init__(self, wake: threading.Event | None = None) -> None:
        self._wake = wake

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._wake is None:
            time.sleep(seconds)
        else:
            self._wake.wait(seconds)

    def utcnow(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when slept; records every sleep for assertions."""

    def __init__(self, start: float = 1000.0, wall: datetime | None = None) -> None:
        self._now = start
        self._wall0 = wall or datetime(2026, 1, 1, tzinfo=UTC)
        self._start = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self._now += seconds

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def utcnow(self) -> datetime:
        return self._wall0 + timedelta(seconds=self._now - self._start)
