"""The restore and purge flows over the in-memory backend, inside the one lifecycle."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.base import Inventory, Record, RecordSink
from reconciler.backends.memory import MemoryBackend
from reconciler.config import Config, load_config
from reconciler.core.batching import BatchShape
from reconciler.core.errors import EXIT_ITEMS_FAILED, EXIT_OK, ConfigError
from reconciler.core.states import RunStatus
from reconciler.runs import operations
from reconciler.runs.signals import StopFlag
from reconciler.store import open_store
from reconciler.store.backups import read_records
from tests.helpers import job_toml, write_config, write_csv

ITEMS = {f"{n:04d}": {"title": f"t{n}", "price": n} for n in range(40)}
ITEMS |= {"a/b": {"title": "slash"}, "c/d/e": {"title": "two slashes"}}


def _config(tmp_path: Path) -> Config:
    source = write_csv(tmp_path / "exports" / "products.csv", ["0000"])
    return load_config(write_config(tmp_path, job_toml("products", "http://127.0.0.1:9", source)))


class Catalog(MemoryBackend):
    """Its listing yields some records twice (as pages that overlap do)."""

    def inventory(self, records: RecordSink | None = None) -> Inventory:
        if records is not None:
            page = [{"item_id": i, "properties": dict(p)} for i, p in self.items.items()]
            records(page, len(self.items))
            records(page[:5], len(self.items))
        return Inventory(ids=sorted(self.items), expected=len(self.items), requests=2)


def _factory(backend: MemoryBackend) -> Any:
    return lambda job, clock, log: backend


def _rows(config: Config) -> list[Any]:
    store = open_store(config)
    try:
        return store.runs("products")
    finally:
        store.close()


def _summary(result: Any) -> dict[str, Any]:
    return json.loads((result.report_dir / "summary.json").read_text())


def test_purge_then_restore_returns_the_catalog_exactly_with_slash_ids(tmp_path: Path) -> None:
    config = _config(tmp_path)
    catalog = Catalog(ITEMS, shape=BatchShape(max_ids=7, max_bytes=100_000))
    purged = operations.purge(config, "products", "demo-catalog", factory=_factory(catalog))
    assert purged.exit_code == EXIT_OK, purged.message
    assert set(catalog.items) == {"a/b", "c/d/e"}  # left in place: nothing could restore them
    assert all(len(r) <= 7 for r in catalog.delete_requests)  # bulk deletes, in batches
    summary = _summary(purged)
    assert summary["action"] == "purge"
    assert summary["deleted"] == 40 and summary["skipped"] == {"unaddressable": 2}
    assert summary["backup"]["records"] == 42  # each id once
    backup = [r["item_id"] for r in read_records(Path(summary["backup"]["path"]))]
    assert sorted(backup) == sorted(ITEMS)
    skipped = (purged.report_dir / "skipped.csv").read_text()
    assert '"a/b","unaddressable"' in skipped
    assert "Purge report" in (purged.report_dir / "report.md").read_text()

    restored = operations.restore(config, purged.run_id, factory=_factory(catalog))
    assert restored.exit_code == EXIT_OK, restored.message
    assert catalog.items == ITEMS
    summary = _summary(restored)
    assert summary["action"] == "restore" and summary["restored"] == 40
    assert summary["skipped"] == {"unaddressable": 2}
    assert "Restore report" in (restored.report_dir / "report.md").read_text()
    assert [r.status for r in _rows(config)] == [RunStatus.FINISHED, RunStatus.FINISHED]


def test_a_stopped_purge_finishes_its_row_and_purging_again_finishes_the_job(
        tmp_path: Path) -> None:
    config = _config(tmp_path)
    catalog = Catalog(ITEMS, shape=BatchShape(max_ids=5, max_bytes=100_000))
    stop = StopFlag()
    sent: list[int] = []
    original = catalog.delete_batch

    def delete_then_sigterm(ids: Sequence[str]) -> Any:
        sent.append(len(ids))
        stop.request("SIGTERM")  # the signal arrives while the first batch is in flight
        return original(ids)

    catalog.delete_batch = delete_then_sigterm  # type: ignore[method-assign]
    first = operations.purge(config, "products", "demo-catalog", stop=stop,
                             factory=_factory(catalog))
    assert first.exit_code == EXIT_ITEMS_FAILED
    assert first.summary["deleted"] == 5 and first.summary["not_sent"] == 35
    assert [r.status for r in _rows(config)] == [RunStatus.STOPPED]
    outcomes = (first.report_dir / "outcomes.csv").read_text()
    assert outcomes.count("not_sent") == 35

    catalog.delete_batch = original  # type: ignore[method-assign]
    again = operations.purge(config, "products", "demo-catalog", factory=_factory(catalog))
    assert again.exit_code == EXIT_OK and set(catalog.items) == {"a/b", "c/d/e"}
    assert RunStatus.RUNNING not in [r.status for r in _rows(config)]


def test_ctrl_c_and_failures_during_restore_leave_no_running_row(tmp_path: Path) -> None:
    config = _config(tmp_path)
    catalog = Catalog(ITEMS)
    purged = operations.purge(config, "products", "demo-catalog", factory=_factory(catalog))

    def interrupted(records: Sequence[Record]) -> Any:
        raise KeyboardInterrupt

    catalog.restore = interrupted  # type: ignore[method-assign]
    stopped = operations.restore(config, purged.run_id, factory=_factory(catalog))
    assert stopped.exit_code == 130 and (stopped.report_dir / "summary.json").exists()

    def broken(records: Sequence[Record]) -> Any:
        raise RuntimeError("boom")

    catalog.restore = broken  # type: ignore[method-assign]
    failed = operations.restore(config, purged.run_id, factory=_factory(catalog))
    assert failed.exit_code == 1 and "boom" in failed.message
    assert _summary(failed)["action"] == "restore"
    statuses = [r.status for r in _rows(config)]
    assert statuses == [RunStatus.FAILED, RunStatus.STOPPED, RunStatus.FINISHED]


def test_an_incomplete_listing_refuses_the_purge_and_closes_its_row(tmp_path: Path) -> None:
    config = _config(tmp_path)

    class Partial(MemoryBackend):
        def inventory(self, records: RecordSink | None = None) -> Inventory:
            return Inventory(ids=sorted(self.items)[:3], expected=len(self.items), requests=1)

    catalog = Partial(ITEMS)
    refused = operations.purge(config, "products", "demo-catalog", factory=_factory(catalog))
    assert refused.exit_code == 3 and "cannot be backed up first" in refused.message
    assert catalog.items == ITEMS
    assert [r.status for r in _rows(config)] == [RunStatus.REFUSED]


@pytest.mark.parametrize("backend", ["adobe-target", "adobe-classic"])
def test_unsupported_purge_is_refused_before_any_row(tmp_path: Path, backend: str) -> None:
    config = _config(tmp_path)
    job = config.jobs["products"]
    job = replace(job, target=replace(job.target, backend=backend))
    config = replace(config, jobs={"products": job})
    with pytest.raises(ConfigError, match=f"job 'products': {backend} cannot purge \\("):
        operations.purge(config, "products", "demo-catalog",
                         factory=_factory(MemoryBackend(ITEMS)))
    assert not (config.state_dir / "journal.sqlite3").exists() or _rows(config) == []


def test_purge_then_restore_on_a_postgresql_state_finds_the_backup(
        tmp_path: Path, postgres_dsn: str) -> None:
    config = replace(_config(tmp_path), state=postgres_dsn)
    catalog = Catalog(ITEMS, shape=BatchShape(max_ids=7, max_bytes=100_000))
    purged = operations.purge(config, "products", "demo-catalog", factory=_factory(catalog))
    assert purged.exit_code == EXIT_OK, purged.message
    backup = _summary(purged)["backup"]
    assert backup["records"] == 42 and backup["path"].endswith(
        f"#backups/products/{purged.run_id}")  # in the database: any replica restores it
    assert not list((config.state_dir / "backups").rglob("*.jsonl.gz"))
    restored = operations.restore(config, purged.run_id, factory=_factory(catalog))
    assert restored.exit_code == EXIT_OK, restored.message
    assert catalog.items == ITEMS
