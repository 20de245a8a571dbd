"""What replicas share through PostgreSQL: the job lease (with fencing), the rate budget of a
catalog, and backups; and the same lease/budget/backup interface over files (SQLite state)."""

from __future__ import annotations

import threading
import time

import httpx
import psycopg
import pytest

from reconciler.core.errors import SafetyRefusal
from reconciler.core.ratelimit import SlidingWindowBudget
from reconciler.core.settings import Config
from reconciler.emulator import Emulator, EmulatorSettings
from reconciler.store import backup_store, catalog_budget, job_lease, open_store
from reconciler.store.locks import JobBusy
from reconciler.store.postgres import LeaseLost, redact_dsn


def test_a_job_lease_is_exclusive_and_released(store_config):
    with job_lease(store_config, "job"):
        with pytest.raises(JobBusy) as caught:
            job_lease(store_config, "job").acquire()
        assert str(caught.value).startswith("job 'job' is already being run by ")
        assert str(caught.value).endswith("; this run did nothing")
        job_lease(store_config, "other").acquire().release()
    job_lease(store_config, "job").acquire().release()


def test_a_lease_whose_session_dies_is_taken_over_and_its_holder_is_fenced(postgres_dsn,
                                                                           tmp_path):
    store_config = Config(path=tmp_path / "c.toml", state_dir=tmp_path, jobs={},
                          state=postgres_dsn)
    first = job_lease(store_config, "job").acquire()
    fenced = open_store(store_config, first)
    fenced.start_run("r1", "job", False, "t0", target="T")
    fenced.store_plan("r1", ["a", "b", "c"], [])
    fenced.mark_sent("r1", "r1", 1, ["a"], 1.0)  # the lease is held: the write goes through
    with psycopg.connect(store_config.state, autocommit=True) as admin:  # its session dies
        admin.execute("SELECT pg_terminate_backend(%s)", (first.backend_pid,))
    deadline = time.monotonic() + 10
    second = None
    while second is None:
        try:
            second = job_lease(store_config, "job").acquire()
        except JobBusy:
            assert time.monotonic() < deadline, "the lease was never freed"
            time.sleep(0.05)
    with pytest.raises(LeaseLost, match="lost its lease"):
        fenced.mark_sent("r1", "r1", 2, ["b"], 2.0)
    assert fenced.state_counts("r1") == {"sent": 1, "planned": 2}  # nothing marked, nothing sent
    assert open_store(store_config, second).interrupted_run("job", "T").run_id == "r1"
    fenced.close()
    first.release()  # its connection is gone already: harmless
    second.release()


def test_the_dsn_password_never_reaches_a_message(monkeypatch):
    assert redact_dsn("postgresql://app:s3cr%40t@db:5432/rec") == "postgresql://app:***@db:5432/rec"
    assert redact_dsn("host=db password=s3cret dbname=x") == "host=db password=*** dbname=x"
    from psycopg_pool import ConnectionPool

    from reconciler.core.errors import ConfigError
    from reconciler.store import postgres
    from reconciler.store.postgres import PostgresStore

    class QuickPool(ConnectionPool):  # gives up on the closed port after 1 s, not 30 s
        def wait(self, timeout: float = 30.0) -> None:
            super().wait(timeout=min(timeout, 1.0))

    monkeypatch.setattr(postgres, "ConnectionPool", QuickPool)

    with pytest.raises(ConfigError) as caught:
        PostgresStore("postgresql://app:s3cret@127.0.0.1:1/nope?connect_timeout=1")
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


def test_backups_are_written_read_and_pruned(store_config):
    store = open_store(store_config)  # the schema
    backups = backup_store(store_config)
    records = [{"item_id": "a", "properties": {"t": "☃"}}, {"item_id": "b", "properties": None}]
    assert backups.read("job", "r1") is None
    count, where = backups.write("job", "r1", records)
    assert count == 2 and "s3cret" not in where
    assert list(backups.read("job", "r1")) == records
    assert backups.prune("job", 3600.0, time.time()) == []
    assert backups.prune("job", 0.0, time.time() + 10) == [where]
    assert backups.read("job", "r1") is None
    store.close()


def _hammer(budgets, emulator, calls_each):
    """One thread per budget, each sending ``calls_each`` bulk deletes when its budget admits."""
    url = emulator.base_url + emulator.catalog_path + "/items/bulk-delete"
    auth = (emulator.settings.api_key_id, emulator.settings.api_secret)
    statuses: list[int] = []

    def worker(number, budget):
        with httpx.Client(auth=auth) as client:
            for call in range(calls_each):
                while True:
                    grant = budget.acquire(time.monotonic())
                    if grant.token:
                        break
                    time.sleep(grant.wait)
                answer = client.request("DELETE", url, json=[f"w{number}-{call}"])
                statuses.append(answer.status_code)
                budget.complete(grant.token, time.monotonic())

    threads = [threading.Thread(target=worker, args=(n, b)) for n, b in enumerate(budgets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


def test_one_budget_per_catalog_across_replicas_gives_no_429(store_config, serve):
    """Two replicas (two budget objects: nothing shared but the store) send to one catalog
    that allows 5 calls per 0.5 s: together they keep to it."""
    open_store(store_config).close()
    items = [f"w{n}-{c}" for n in range(2) for c in range(8)]
    emulator = serve(Emulator(items, EmulatorSettings(bulk_requests_per_window=5,
                                                      bulk_window_seconds=0.5)))
    budgets = [catalog_budget(store_config, "catalog-1", 5, 0.5) for _ in range(2)]
    statuses = _hammer(budgets, emulator, 8)
    assert statuses == [200] * 16
    assert emulator.stats.throttled == 0 and emulator.ids() == set()


def test_budgets_not_shared_would_be_throttled(serve):
    """The control: two replicas each with its own budget break the catalog's limit."""
    emulator = serve(Emulator([], EmulatorSettings(bulk_requests_per_window=5,
                                                   bulk_window_seconds=0.5)))
    statuses = _hammer([SlidingWindowBudget(5, 0.5), SlidingWindowBudget(5, 0.5)], emulator, 8)
    assert 429 in statuses and emulator.stats.throttled > 0


def test_a_backup_that_cannot_be_written_refuses(tmp_path):
    from reconciler.store.backups import FileBackups

    (tmp_path / "backups").write_text("not a folder")
    with pytest.raises(SafetyRefusal, match="nothing deleted"):
        FileBackups(tmp_path).write("job", "r1", [{"item_id": "a"}])
