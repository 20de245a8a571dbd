"""apply's backup over the in-memory backend: taken from the listing apply makes anyway,
read back one id at a time only where the listing cannot stand for the item."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.backends.base import Inventory, Record, RecordSink
from reconciler.backends.memory import MemoryBackend
from reconciler.config import Config, load_config
from reconciler.core.errors import EXIT_OK
from reconciler.runs.runner import RunRequest, RunResult, run_job
from reconciler.store import saved_plan
from reconciler.store.backups import read_records
from tests.helpers import job_toml, write_config, write_csv

ITEMS = {f"{n:04d}": {"title": f"t{n}", "price": n} for n in range(40)}
KEEP = sorted(ITEMS)[10:]  # the source: 0000..0009 are to delete


class Counting(MemoryBackend):
    """Counts read-backs by id; ``hidden`` ids are left out of the listing, which then says
    it is incomplete; ``ids_only`` lists no properties (as Adobe Target's search)."""

    def __init__(self, items: dict[str, dict[str, Any]], hidden: Sequence[str] = (),
                 ids_only: bool = False) -> None:
        super().__init__(items)
        self.hidden = set(hidden)
        self.lists_properties = not ids_only
        self.read: list[str] = []

    def inventory(self, records: RecordSink | None = None) -> Inventory:
        shown = {i: p for i, p in self.items.items() if i not in self.hidden}
        if records is not None:
            records([{"item_id": i, "properties": dict(p) if self.lists_properties else {}}
                     for i, p in shown.items()], len(self.items))
        return Inventory(ids=sorted(shown), expected=len(self.items), requests=1)

    def read_back(self, ids: Sequence[str]) -> list[Record]:
        self.read.extend(ids)
        return super().read_back(ids)


def _config(tmp_path: Path) -> Config:
    source = write_csv(tmp_path / "exports" / "products.csv", KEEP)
    safety = {"grace_runs": 1, "grace_period": "off", "min_ids": 0, "max_shrink": 1.0,
              "max_delete_fraction": 1.0, "max_deletes_per_day": "off"}
    return load_config(write_config(tmp_path, job_toml("products", "http://127.0.0.1:9", source,
                                                       safety=safety)))


def _apply(tmp_path: Path, backend: MemoryBackend, planned_with: MemoryBackend) -> RunResult:
    config = _config(tmp_path)
    job = config.jobs["products"]
    plan_file = tmp_path / "plan.json"
    planned = run_job(config, job, RunRequest(dry_run=True, plan_out=plan_file),
                      backend_factory=lambda job, clock, log: planned_with)
    assert planned.exit_code == EXIT_OK, planned.message
    saved = saved_plan.load(plan_file, saved_plan.signing_key(config.state_dir))
    assert len(saved.to_delete) == 10
    return run_job(config, job, RunRequest(dry_run=False, apply=saved),
                   backend_factory=lambda job, clock, log: backend)


def _backup(result: RunResult) -> dict[str, Any]:
    return {r["item_id"]: r["properties"]
            for r in read_records(Path(result.summary["backup"]["path"]))}


def test_a_complete_listing_stands_for_the_read_back(tmp_path: Path) -> None:
    catalog = Counting(ITEMS)
    del catalog.items["0003"]  # gone since the plan
    catalog.items["0004"]["title"] = "edited since the plan"
    applied = _apply(tmp_path, catalog, Counting(ITEMS))
    assert applied.exit_code == EXIT_OK, applied.message
    assert catalog.read == []
    assert applied.summary["skipped"] == {"already_gone": 1}
    assert applied.summary["backup"]["read_back"] == 0
    backup = _backup(applied)
    assert sorted(backup) == [f"{n:04d}" for n in range(10) if n != 3]
    assert backup["0004"] == {"title": "edited since the plan", "price": 4}


def test_ids_an_incomplete_listing_did_not_show_are_read_back(tmp_path: Path) -> None:
    catalog = Counting(ITEMS, hidden=["0001", "0002"])
    del catalog.items["0002"]  # not listed and really gone; 0001 not listed but there
    applied = _apply(tmp_path, catalog, Counting(ITEMS))
    assert applied.exit_code == EXIT_OK, applied.message
    assert applied.summary["inventory_complete"] is False
    assert catalog.read == ["0001", "0002"]
    assert applied.summary["backup"]["read_back"] == 2
    assert applied.summary["skipped"] == {"already_gone": 1}
    assert _backup(applied)["0001"] == ITEMS["0001"]
    assert "0001" not in catalog.items and "0005" not in catalog.items


def test_a_listing_without_properties_reads_back_only_the_listed_ids(tmp_path: Path) -> None:
    catalog = Counting(ITEMS, ids_only=True)
    del catalog.items["0003"]
    applied = _apply(tmp_path, catalog, Counting(ITEMS, ids_only=True))
    assert applied.exit_code == EXIT_OK, applied.message
    assert catalog.read == [f"{n:04d}" for n in range(10) if n != 3]  # not the gone one
    assert applied.summary["skipped"] == {"already_gone": 1}
    assert _backup(applied)["0004"] == ITEMS["0004"]  # the properties, read back
