from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import HealthCheck, settings

from reconciler import logging as rlog
from reconciler.core.clock import FakeClock
from reconciler.emulator import Emulator, EmulatorSettings
from reconciler.emulator.server import ServedEmulator

# Hypothesis times each example (200 ms deadline) and its data generation: on a loaded
# machine, or with the suite on several xdist workers, a slow example then fails a test
# whose property holds. Its properties are checked in full; only those wall-clock checks go.
# The examples are the same on every run (derandomize), so CI's verdict on a commit does
# not depend on a draw; `HYPOTHESIS_PROFILE=explore make test` draws new ones to hunt with.
settings.register_profile("reconciler", deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "reconciler"))


@pytest.fixture(autouse=True)
def _logging_reset_after_each_test() -> Iterator[None]:
    """A test that configures logging (the CLI does, to the sys.stderr of the moment: the
    test's capture, closed when it ends) must not leave the next test in the same worker
    logging into a closed file; which test came before depends on xdist's scheduling."""
    yield
    structlog.reset_defaults()


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL for the whole session: ``RECONCILER_TEST_POSTGRES`` when set, else a
    throwaway server from the pgserver wheel in a fresh temporary directory (as root,
    pgserver runs initdb and postgres as its own unprivileged user ``pgserver``)."""
    import os
    import shutil
    import tempfile

    given = os.environ.get("RECONCILER_TEST_POSTGRES")
    if given:
        yield given
        return
    import pgserver

    # Not under pytest's tmp_path: its 0700 parents would keep the 'pgserver' user out.
    folder = tempfile.mkdtemp(prefix="reconciler-pg-")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_dsn(postgres_server) -> Iterator[str]:
    """A ``postgresql://`` URL (the form ``state`` takes) onto a fresh, empty database of the
    session's server (dropped afterwards)."""
    import uuid
    from urllib.parse import quote

    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    params = {k: str(v) for k, v in conninfo_to_dict(postgres_server).items()}
    user = quote(params.get("user", ""), safe="")
    password = quote(params.get("password", ""), safe="")
    login = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host, port = params.get("host", ""), params.get("port", "")
    query = [f"{k}={quote(v, safe='')}" for k, v in params.items()
             if k not in ("user", "password", "host", "port", "dbname")]
    if host.startswith("/"):  # a Unix socket folder: in the query, not the authority
        query.append(f"host={quote(host, safe='')}")
        host = ""
    authority = host + (f":{port}" if port and host else "")
    if port and not host:
        query.append(f"port={port}")
    yield f"postgresql://{login}{authority}/{name}" + ("?" + "&".join(query) if query else "")
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
