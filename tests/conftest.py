from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from reconciler import logging as rlog
from reconciler.core.clock import FakeClock
from reconciler.emulator import Emulator, EmulatorSettings
from reconciler.emulator.server import ServedEmulator


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
def serve() -> Iterator:
    """Start any emulator on 127.0.0.1 (real sockets); all are stopped after the test."""
    started: list[ServedEmulator] = []

    def start(emulator: ServedEmulator) -> ServedEmulator:
        emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def start_emulator(log_stream, serve) -> Iterator:
    """Start Bloomreach emulators with a short rate window (5 per 0.2 s) by default."""

    def start(items, **settings) -> Emulator:
        defaults = {"bulk_requests_per_window": 5, "bulk_window_seconds": 0.2,
                    "retry_after_fractional": True}
        return serve(Emulator(items, EmulatorSettings(**{**defaults, **settings})))

    yield start
