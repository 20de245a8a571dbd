"""Helpers shared by the tests: config files, exports, and an emulator-backed job."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from reconciler.config import Config, load_config
from reconciler.emulator import Emulator

# Short rate windows, so tests run the real limiters quickly: bulk calls 5 per 0.2 s, list
# and read-back calls 20 per 0.05 s (the defaults, 10 per 1 s, made apply's per-id
# read-back of a few hundred ids take most of a minute).
FAST_LIMITS = {
    "requests_per_window": 5,
    "window_seconds": 0.2,
    "read_requests_per_window": 20,
    "read_window_seconds": 0.05,
    "backoff_initial_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "timeout_seconds": 10,
}


def write_csv(path: Path, ids: list[str], column: str = "item_id", gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    opener: Any = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([column, "title"])
        writer.writerows([i, f"t-{n}"] for n, i in enumerate(ids))
    return path


def write_parquet(path: Path, ids: list[Any], column: str = "item_id", type_: Any = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({column: pa.array(ids, type=type_)}), path)
    return path


# Most tests are about something else than the safety gates: they start from rules that let
# a run delete at once (the gates' own tests set the defaults back or tighten them).
PERMISSIVE_SAFETY = {
    "grace_runs": 1,
    "grace_period": "off",
    "min_ids": 0,
    "max_delete_fraction": 1.0,
    "max_deletes_per_day": "off",
}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def job_toml(
    name: str,
    base_url: str,
    source: Path,
    *,
    emulator: Emulator | None = None,
    limits: dict[str, Any] | None = None,
    inventory: Path | None = None,
    target_extra: dict[str, Any] | None = None,
    api_secret: str | None = None,
    safety: dict[str, Any] | None = None,
) -> str:
    s = emulator.settings if emulator else None
    target = {
        "backend": "bloomreach",
        "base_url": base_url,
        "project_token": s.project_token if s else "demo-project",
        "catalog_id": s.catalog_id if s else "demo-catalog",
        "api_key_id": s.api_key_id if s else "demo-key",
        "api_secret": api_secret or (s.api_secret if s else "demo-secret"),
        **(target_extra or {}),
    }
    lines = [
        f"[jobs.{name}.source]",
        f"path = {toml_value(source)}",
        f"[jobs.{name}.target]",
        *(f"{k} = {toml_value(v)}" for k, v in target.items()),
    ]
    if inventory is not None:
        lines += [f"[jobs.{name}.target.inventory]", f"path = {toml_value(inventory)}"]
    lines += [f"[jobs.{name}.limits]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in {**FAST_LIMITS, **(limits or {})}.items()]
    rules = PERMISSIVE_SAFETY if safety is None else safety
    lines += [f"[jobs.{name}.safety]"]
    lines += [f"{k} = {toml_list(v) if isinstance(v, list) else toml_value(v)}"
              for k, v in rules.items()]
    return "\n".join(lines) + "\n"


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(toml_value(v) for v in values) + "]"


def write_config(folder: Path, *jobs: str, logging: str = 'format = "json"') -> Path:
    path = folder / "reconciler.toml"
    path.write_text(
        'state_dir = "state"\n[logging]\n' + logging + "\n" + "".join(jobs), encoding="utf-8"
    )
    return path


def emulator_config(
    folder: Path, emulator: Emulator, source_ids: list[str], name: str = "products", **kw: Any
) -> Config:
    source = write_csv(folder / "exports" / f"{name}.csv", source_ids)
    return load_config(write_config(folder, job_toml(name, emulator.base_url, source,
                                                      emulator=emulator, **kw)))


def reconciler_command(*args: Any) -> list[str]:
    import sys

    return [sys.executable, "-m", "reconciler", *map(str, args)]


def run_reconciler(*args: Any, timeout: float = 120, env: dict[str, str] | None = None) -> Any:
    """Run a real ``reconciler`` process to completion."""
    import os
    import subprocess

    return subprocess.run(reconciler_command(*args), capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


class Started:
    """A real ``reconciler`` process writing to files (a full pipe would block it)."""

    def __init__(self, *args: Any, env: dict[str, str] | None = None) -> None:
        import os
        import subprocess
        import tempfile

        self._out = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._err = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(reconciler_command(*args), stdout=self._out,
                                        stderr=self._err, text=True,
                                        env={**os.environ, **(env or {})})
        self.pid = self.process.pid

    def kill(self) -> None:
        self.process.kill()

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def communicate(self, timeout: float) -> tuple[str, str]:
        self.process.wait(timeout)
        self._out.seek(0)
        self._err.seek(0)
        return self._out.read(), self._err.read()


def start_reconciler(*args: Any, env: dict[str, str] | None = None) -> Started:
    """Start a real ``reconciler`` process (to be killed or signalled by the test)."""
    return Started(*args, env=env)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, for a process the test starts later.

    ``bind(("127.0.0.1", 0))`` would hand out a port from the kernel's ephemeral range, which
    another pytest-xdist worker's emulator or client may be given before our process binds it.
    So the port comes from below that range (where the kernel never picks one by itself), from
    a block of its own per xdist worker, at random within it, and is checked to be free."""
    import os
    import random
    import socket

    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    block = 400
    first = 10000 + (int(worker) if worker.isdigit() else 0) % 50 * block
    candidates = list(range(first, first + block))
    random.shuffle(candidates)
    for port in candidates:
        if port >= low:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as fallback:  # an unusual ephemeral range: the kernel's choice
        fallback.bind(("127.0.0.1", 0))
        return int(fallback.getsockname()[1])


def wait_for(predicate: Any, timeout: float = 60, what: str = "condition") -> None:
    """Poll until ``predicate()`` holds; the timeout only bounds a hang, never a result."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
