"""Progress of listing and deleting: bars on a terminal, throttled log events elsewhere.

Bars are tqdm's (ids done / total, rate, ETA) on stderr, only when stderr is a TTY;
otherwise a ``progress`` event is logged at most every ``every_seconds``, so journald and
CI logs show a long run advancing without a line per page.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm


class Progress:
    """One phase's progress (``listing`` or ``deleting``)."""

    def __init__(self, phase: str, log: Any, *, stream: TextIO | None = None,
                 every_seconds: float = 10.0) -> None:
        self.phase = phase
        self._log = log
        self._stream = stream or sys.stderr
        self._every = every_seconds
        self._bar: tqdm[Any] | None = None
        self._done = 0
        self._total: int | None = None
        self._started = time.monotonic()
        self._last_event = self._started
        self._tty = self._stream.isatty()

    def update(self, advance: int, total: int | None = None) -> None:
        if total is not None:
            self._total = total
        self._done += advance
        if self._total is not None:
            self._done = min(self._done, self._total)  # never past 100%
        if self._tty:
            self._draw()
        elif time.monotonic() - self._last_event >= self._every:
            self._event()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._done and not self._tty:
            self._event()

    def _draw(self) -> None:
        if self._bar is None:
            from tqdm import tqdm  # imported when a bar is drawn (a TTY): 30-70 ms a start

            # initial=: the first frame's ids were not done in the bar's first microsecond,
            # so they do not count towards its rate (no nonsense rate on the first frame).
            self._bar = tqdm(total=self._total, desc=self.phase, unit=" ids", file=self._stream,
                             dynamic_ncols=True, leave=False, initial=self._done)
        if self._total is not None and self._bar.total != self._total:
            self._bar.total = self._total
        self._bar.n = min(self._done, self._total) if self._total else self._done
        self._bar.refresh()

    def _event(self) -> None:
        now = time.monotonic()
        self._last_event = now
        rate = self._done / max(now - self._started, 1e-9)
        left = None if not self._total else max(self._total - self._done, 0) / max(rate, 1e-9)
        self._log.info("progress", phase=self.phase, done=self._done, total=self._total,
                       ids_per_second=round(rate, 1),
                       eta_seconds=None if left is None else round(left, 1))
