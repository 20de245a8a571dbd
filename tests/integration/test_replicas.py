"""Two replicas (``reconciler daemon`` processes) on one config and one PostgreSQL.

The replica holding the job's lease is killed with SIGKILL while a delete is provably in
flight (the emulator holds it); the other takes the lease at its next slot, resumes the
stored plan and finishes it: the catalog ends exact, no id the server queued is sent again
(only the batch in flight at the kill is), and neither replica ever gets a 429.
"""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest

from reconciler.config import load_config
from reconciler.store import open_store
from tests.helpers import FAST_LIMITS, job_toml, start_reconciler, wait_for, write_csv

pytestmark = pytest.mark.integration

ITEMS = [f"sku-{n:04d}" for n in range(600)]
STALE = set(ITEMS[::2])  # 300 ids to delete
BATCH = 20  # 15 batches
LIMITS = {**FAST_LIMITS, "max_batch_ids": BATCH, "requests_per_window": 5,
          "window_seconds": 0.5}


def replicas_config(tmp_path, emulator, dsn):
    source = write_csv(tmp_path / "exports" / "products.csv",
                       [i for i in ITEMS if i not in STALE])
    path = tmp_path / "reconciler.toml"
    path.write_text(
        f'state = "{dsn}"\nstate_dir = "state"\n[logging]\nformat = "json"\n'
        '[jobs.products]\nschedule = "every 1s"\n'
        + job_toml("products", emulator.base_url, source, emulator=emulator, limits=LIMITS),
        encoding="utf-8")
    return path


def lease_holder(dsn):
    """The pid of the replica whose run is deleting now (its journal row is running)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pid FROM runs WHERE status = 'running' ORDER BY seq DESC"
                           " LIMIT 1").fetchone()
    return row[0] if row else None


def test_the_other_replica_finishes_the_plan_of_a_killed_one(tmp_path, start_emulator,
                                                             postgres_dsn):
    emulator = start_emulator(ITEMS, bulk_requests_per_window=5, bulk_window_seconds=0.5)
    path = replicas_config(tmp_path, emulator, postgres_dsn)
    emulator.hold("bulk", 4)  # the fifth delete is held: four batches answered
    replicas = [start_reconciler("--config", path, "daemon") for _ in range(2)]
    try:
        assert emulator.held.wait(90), "no replica reached the held delete"
        holder = lease_holder(postgres_dsn)
        victim = next(r for r in replicas if r.pid == holder)
        survivor = next(r for r in replicas if r is not victim)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(30)
        killed_at = time.monotonic()
        emulator.release()  # the held delete completes on the server, its answer is lost
        wait_for(lambda: emulator.ids() == set(ITEMS) - STALE, timeout=90,
                 what="the surviving replica to finish the plan")
        takeover = time.monotonic() - killed_at
        config = load_config(path)
        store = open_store(config)
        wait_for(lambda: any(r.resumed_from and r.status == "finished"
                             for r in store.runs("products")), what="the resumed run to finish")
        survivor.send_signal(signal.SIGTERM)
        _, err = survivor.communicate(timeout=30)
        assert survivor.returncode == 0, err[-2000:]
    finally:
        for replica in replicas:
            if replica.returncode is None:
                replica.kill()
    runs = store.runs("products")
    first = next(r for r in runs if r.resumed_from is None and r.status in ("resumed", "crashed"))
    resumed = next(r for r in runs if r.resumed_from == first.run_id)
    assert first.replica.endswith(f":{victim.pid}")
    assert resumed.replica.endswith(f":{survivor.pid}")
    assert resumed.summary["resumed_at"].get("queued", 0) == 4 * BATCH
    # Exactly the plan is gone; the server queued no id twice; only the batch in flight at
    # the kill was sent again; no 429 across both replicas.
    assert set(emulator.stats.deleted) == STALE and len(emulator.stats.deleted) == len(STALE)
    sent_twice = [i for i in store.items(first.run_id) if i.sends > 1]
    assert len(sent_twice) <= BATCH
    assert emulator.stats.bulk_delete_entries <= len(STALE) + BATCH
    assert emulator.stats.throttled == 0
    store.close()
    print(f"takeover: the plan finished {takeover:.1f} s after the kill")


def test_a_slot_whose_job_another_replica_holds_is_skipped_not_failed(tmp_path, start_emulator,
                                                                      postgres_dsn):
    from prometheus_client import generate_latest

    from reconciler.service.daemon import Daemon
    from reconciler.store import job_lease

    emulator = start_emulator(ITEMS)
    path = replicas_config(tmp_path, emulator, postgres_dsn)
    daemon = Daemon(path)
    store = open_store(daemon.config)
    with job_lease(daemon.config, "products"):  # another replica runs the job
        daemon._run("products")
    assert store.runs("products") == []  # no journal row, no report, no failed run
    assert daemon.health_problem() == "" and not (tmp_path / "state" / "reports").exists()
    metrics = generate_latest(daemon.metrics.registry).decode()
    assert 'reconciler_lease_held_elsewhere_total{reconciler_job="products"} 1.0' in metrics
    assert f':{os.getpid()}"}} 1.0' in metrics  # reconciler_replica_info{replica="host:pid"}
    daemon._run("products")  # the lease is free: this replica runs the job
    (run,) = store.runs("products")
    assert run.status == "finished" and run.replica.endswith(f":{os.getpid()}")
    assert emulator.ids() == set(ITEMS) - STALE
    store.close()


def test_run_history_and_restore_from_any_replica(tmp_path, start_emulator, postgres_dsn):
    """CLI processes on PostgreSQL state: a run exits, history names the replica, and a
    restore typed on another machine (another state_dir) finds the backup in the database."""
    from tests.helpers import run_reconciler

    emulator = start_emulator(ITEMS)
    path = replicas_config(tmp_path, emulator, postgres_dsn)
    done = run_reconciler("--config", path, "run", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert emulator.ids() == set(ITEMS) - STALE
    history = run_reconciler("--config", path, "history")
    assert history.returncode == 0 and "replica" in history.stdout.splitlines()[0]
    store = open_store(load_config(path))
    (run,) = store.runs("products")
    store.close()
    assert run.replica in history.stdout and "@" not in run.replica
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "reconciler.toml").write_text(
        path.read_text().replace('state_dir = "state"', 'state_dir = "other-state"'))
    (other / "exports").mkdir()
    (other / "exports" / "products.csv").write_bytes(
        (tmp_path / "exports" / "products.csv").read_bytes())
    restored = run_reconciler("--config", other / "reconciler.toml", "restore", run.run_id)
    assert restored.returncode == 0, restored.stderr[-2000:]
    assert emulator.ids() == set(ITEMS)
