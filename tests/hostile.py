"""The hostile rounds' shared harness (tests/integration/test_attack_*.py).

The usual shape: a catalog of 2,000 ids (``PLAIN`` and ``DASHED``), of which the 100
``DASHED`` ones (5%, under every cap) are the ones an accident makes look missing; a job
with the DEFAULT safety settings (an empty ``[safety]`` table) run in-process on a
FakeClock, runs an hour apart (past ``grace_runs`` 2 and ``grace_period`` 1h); and the
assertion that no id a person would say is still in the source was deleted.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler.config import load_config
from reconciler.core.clock import FakeClock
from reconciler.core.errors import EXIT_OK
from reconciler.runs.runner import RunRequest, run_job
from reconciler.runs.signals import StopFlag
from tests.helpers import job_toml

PLAIN = {f"sku-{n:04d}": {"title": f"Item {n}"} for n in range(1900)}
DASHED = {f"ab-{n:03d}": {"title": "dashed"} for n in range(100)}
UPPER = {f"AB-{n:03d}": {"title": "upper"} for n in range(100)}
READS = {"read_requests_per_window": 100, "read_window_seconds": 0.1}


def write_lines(path: Path, lines) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path


def configure(folder: Path, emulator, ids, name="products", state: Path | str | None = None,
              scope: list[str] | None = None, export: str | None = None):
    """A default-safety job ``name`` whose export holds ``ids``; ``state``: a shared
    state_dir (absolute) or a PostgreSQL URL; ``scope``: the job's scope."""
    source = write_lines(folder / "exports" / (export or f"{name}.csv"), ["item_id", *ids])
    text = job_toml(name, emulator.base_url, source, emulator=emulator, safety={},
                    limits=READS)
    if scope is not None:
        text = text.replace(f"[jobs.{name}.source]",
                            f"[jobs.{name}]\nscope = {scope!r}\n[jobs.{name}.source]")
    top = (f'state = "{state}"\n' if str(state).startswith("postgresql:")
           else f'state_dir = "{state or "state"}"\n')
    path = folder / "reconciler.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(top + '[logging]\nformat = "json"\n' + text, encoding="utf-8")
    return load_config(path)


def run(config, clock, name="products", **request):
    return run_job(config, config.jobs[name], RunRequest(dry_run=request.pop("dry_run", False),
                                                         **request), clock=clock)


def runs_an_hour_apart(config, clock, times=3, name="products"):
    results = []
    for _ in range(times):
        results.append(run(config, clock, name))
        clock.advance(3601)
    return results


def assert_none_deleted(emulator, ids, results):
    gone = sorted(set(ids) - emulator.ids())
    assert not gone, (f"{len(gone)} live ids deleted, e.g. {gone[:3]}; runs: "
                      f"{[(r.exit_code, r.summary.get('refused')) for r in results]}")


def set_mtime(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def stopped_before_sending(config, clock):
    """Two runs an hour apart over an export without the ab-* ids: the second one's plan
    (the 100 ids, due) is stored and stopped before any send."""
    assert run(config, clock).summary["pending_grace"] == 100
    clock.advance(3601)
    stop = StopFlag()
    stop.request("test")
    stopped = run_job(config, config.jobs["products"], RunRequest(dry_run=False),
                      clock=clock, stop=stop)
    assert stopped.summary["not_sent"] == 100
    return stopped


def plan_saved_after_grace(config, folder: Path, name="products"):
    """Over the job's export as it is (written two hours ago), a run that starts grace and,
    an hour later, ``plan --out`` of the 100 ids now due: (the clock, the plan file, the
    planning run)."""
    source = config.jobs[name].source.path
    real = datetime.now(UTC)
    os.utime(source, ((real - timedelta(hours=2)).timestamp(),) * 2)
    clock = FakeClock(wall=real - timedelta(hours=2))
    job = config.jobs[name]
    run_job(config, job, RunRequest(dry_run=False), clock=clock)  # grace starts
    clock.advance(3601)
    plan_file = folder / "plan.json"
    planned = run_job(config, job, RunRequest(dry_run=True, plan_out=plan_file), clock=clock)
    assert planned.exit_code == EXIT_OK and len(planned.plan.to_delete) == 100
    return clock, plan_file, planned
