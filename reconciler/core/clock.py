"""Time as an injected dependency, so the pure core and its tests never read the real clock.

``SystemClock`` is the one place that does; ``FakeClock`` is the reference fake whose
``sleep`` advances time instantly, which lets tests run the real rate limiter and retry
policy in microseconds and without depending on wall-clock timing.
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from reconciler.core.gracetime import BootTime

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_fake_boots = itertools.count(1)


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (a fake clock just advances)."""

    def utcnow(self) -> datetime:
        """Wall-clock time for timestamps in reports and run ids."""

    def boot(self) -> BootTime:
        """The host's boot clock, which no wall-clock correction moves (see gracetime.py)."""


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

    def boot(self) -> BootTime:
        """Linux's boot id and CLOCK_BOOTTIME; elsewhere no witness (boot id "")."""
        try:
            boot_id = _BOOT_ID.read_text(encoding="ascii").strip()
            return BootTime(boot_id, time.clock_gettime(time.CLOCK_BOOTTIME))
        except (OSError, AttributeError, UnicodeDecodeError):
            return BootTime("", 0.0)


class FakeClock:
    """A clock that only moves when slept; records every sleep for assertions.

    Its boot clock is its monotonic clock. Each instance is its own boot unless ``boot_id``
    names one: two fakes given one ``boot_id`` are two readings on one host.
    """

    def __init__(self, start: float = 1000.0, wall: datetime | None = None,
                 boot_id: str | None = None) -> None:
        self._now = start
        self._wall0 = wall or datetime(2026, 1, 1, tzinfo=UTC)
        self._start = start
        self._boot_id = boot_id or f"fake-boot-{next(_fake_boots)}"
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

    def boot(self) -> BootTime:
        return BootTime(self._boot_id, self._now)
