"""Graceful stop: the first SIGTERM/SIGINT asks the run to stop, a second one exits at once.

The first signal sets a flag (and wakes any rate-limit or backoff sleep); the executor
lets the in-flight request finish, records it, marks the rest ``not_sent``, and the run
writes its report. A second signal exits immediately: the journal is consistent at every
instant (SQLite transactions), so the next run resumes exactly where this one stood.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopFlag:
    """Callable as ``should_stop``; ``event`` wakes sleeps when set."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def __call__(self) -> bool:
        return self.event.is_set()

    def request(self, reason: str) -> None:
        self.reason = reason
        self.event.set()


@contextmanager
def graceful_stop(flag: StopFlag, on_signal: Callable[[str], Any] | None = None,
                  ) -> Iterator[StopFlag]:
    """Install the handlers for the duration (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if flag():
            os._exit(128 + signum)  # second signal: at once; the journal stays consistent
        flag.request(name)
        if on_signal:
            on_signal(name)

    previous = {s: signal.signal(s, handle) for s in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
