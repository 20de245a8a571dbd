"""The plan, run, verify and resume flows over the in-memory backend, through ``run_job``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.backends.memory import MemoryBackend
from reconciler.config import Config, load_config
from reconciler.core.errors import EXIT_ITEMS_FAILED, EXIT_OK
from reconciler.runs.runner import RunRequest, RunResult, run_job
from reconciler.runs.signals import StopFlag
from reconciler.store.backups import read_records
from tests.flows.test_apply_backup import Counting
from tests.helpers import job_toml, write_config, write_csv

ITEMS = {f"{n:04d}": {"title": f"t{n}"} for n in range(30)}


def _config(tmp_path: Path, keep: list[str]) -> Config:
    source = write_csv(tmp_path / "exports" / "products.csv", keep)
    return load_config(write_config(tmp_path, job_toml("products", "http://127.0.0.1:9",
                                                       source)))


def _run(config: Config, backend: MemoryBackend, stop: StopFlag | None = None,
         **request: Any) -> RunResult:
    return run_job(config, config.jobs["products"],
                   RunRequest(dry_run=request.pop("dry_run", False), **request),
                   backend_factory=lambda job, clock, log: backend, stop=stop)


def test_plan_then_run_backs_up_from_the_listing_and_deletes(tmp_path: Path) -> None:
    catalog = Counting(ITEMS)
    config = _config(tmp_path, sorted(ITEMS)[5:])
    planned = _run(config, catalog, dry_run=True)
    assert planned.exit_code == EXIT_OK, planned.message
    assert planned.message == "dry run: 5 ids would be deleted"
    assert planned.summary["action"] == "plan" and len(catalog.items) == 30
    ran = _run(config, catalog)
    assert ran.exit_code == EXIT_OK, ran.message
    assert ran.summary["action"] == "run" and ran.summary["deleted"] == 5
    assert catalog.read == [] and ran.summary["backup"]["read_back"] == 0
    backup = {r["item_id"]: r["properties"]
              for r in read_records(Path(ran.summary["backup"]["path"]))}
    assert backup == {i: ITEMS[i] for i in sorted(ITEMS)[:5]}
    verified = _run(config, catalog, verify_only=True)
    assert verified.summary["action"] == "verify"
    assert verified.message == ("verified: 5 gone, 0 still listed (resent by the next run), "
                                "0 too recent to judge")


def test_a_stopped_run_is_resumed_and_skips_what_came_back(tmp_path: Path) -> None:
    catalog = Counting(ITEMS)
    config = _config(tmp_path, sorted(ITEMS)[5:])
    stop = StopFlag()
    stop.request("test")
    stopped = _run(config, catalog, stop=stop)
    assert stopped.exit_code == EXIT_ITEMS_FAILED and stopped.summary["not_sent"] == 5
    write_csv(config.jobs["products"].source.path, sorted(ITEMS)[4:])  # 0004 is back
    resumed = _run(config, catalog)
    assert resumed.exit_code == EXIT_OK, resumed.message
    assert resumed.summary["resumed_from"] == stopped.run_id
    assert resumed.summary["skipped"] == {"back_in_source": 1}
    assert resumed.message == f"resumed {stopped.run_id}: 4 deleted, 0 not deleted"
    assert sorted(catalog.deleted) == sorted(ITEMS)[:4]
