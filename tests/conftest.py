from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from reconciler import logging as rlog
from reconciler.clock import FakeClock
from reconciler.emulator import Emulator, EmulatorSettings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def log_stream() -> io.StringIO:
    """Every test's structlog output, captured (JSON lines) for assertions."""
    stream = io.StringIO()
    rlog.configure("debug", "json", stream=stream)
    return stream


@pytest.fixture
def start_emulator(log_stream) -> Iterator:
    """Start emulators on 127.0.0.1 (real sockets); all are stopped after the test."""
    started: list[Emulator] = []

    def start(items, **settings) -> Emulator:
        defaults = {"bulk_requests_per_window": 5, "bulk_window_seconds": 0.2,
                    "retry_after_fractional": True}
        emulator = Emulator(items, EmulatorSettings(**{**defaults, **settings}))
        emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()
