"""Adobe Target end to end against its emulator, including the delete-everything hazard."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.backends.adobe_target import AdobeTargetBackend
from reconciler.backends.adobe_target import AdobeTargetSettings as TargetSettings
from reconciler.config import Limits, Secret, Target, load_config
from reconciler.core.clock import FakeClock
from reconciler.core.errors import EXIT_OK, FatalApiError
from reconciler.emulator.adobe_target import AdobeTargetEmulator, AdobeTargetSettings
from reconciler.runs.runner import RunRequest, run_job
from reconciler.store.backups import read_records
from tests.helpers import PERMISSIVE_SAFETY, toml_value, write_config, write_csv

pytestmark = pytest.mark.integration

FAST = AdobeTargetSettings(requests_per_window=50, window_seconds=1.0)


@pytest.fixture
def adobe(serve):
    return lambda entities, settings=FAST: serve(AdobeTargetEmulator(entities, settings))


def target_for(emulator, environment=1):
    s = emulator.settings
    return Target(backend="adobe-target", base_url=emulator.base_url,
                  settings=TargetSettings(tenant=s.tenant, environment=environment,
                                          api_key=Secret(s.api_key),
                                          token=Secret(s.token)))


def recs_config(tmp_path, emulator, source_ids, extra_limits=""):
    """A job 'recs' on environment 1 of the emulator, permissive safety, fast limits."""
    source = write_csv(tmp_path / "source.csv", source_ids)
    s = emulator.settings
    target = {"backend": "adobe-target", "base_url": emulator.base_url, "tenant": s.tenant,
              "environment": 1, "api_key": s.api_key, "token": s.token}
    text = (f"[jobs.recs.source]\npath = {toml_value(source)}\n[jobs.recs.target]\n"
            + "".join(f"{k} = {toml_value(v)}\n" for k, v in target.items())
            + "[jobs.recs.limits]\nrequests_per_window = 50\nwindow_seconds = 1\n"
            + extra_limits + "[jobs.recs.safety]\n"
            + "".join(f"{k} = {toml_value(v)}\n" for k, v in PERMISSIVE_SAFETY.items()))
    return load_config(write_config(tmp_path, text))


def test_the_guard_keeps_the_environment_alive(adobe):
    """Would fail without the guard: the emulator deletes everything for an empty ids list."""
    emulator = adobe({1: ["a", "b"], 2: ["c"]})
    backend = AdobeTargetBackend(target_for(emulator), Limits(max_attempts=2), FakeClock())
    with pytest.raises(FatalApiError, match="without ids"):
        backend.delete_batch([])
    backend.close()
    assert emulator.stats.delete_everything == 0
    assert emulator.ids(1) == {"a", "b"} and emulator.ids(2) == {"c"}


def test_the_emulator_really_deletes_everything_without_ids(adobe):
    import httpx

    emulator = adobe({1: ["a", "b"], 2: ["c"]})
    s = emulator.settings
    answer = httpx.delete(f"{emulator.base_url}/{s.tenant}/target/recs/entities",
                          params={"environment": 1},
                          headers={"authorization": f"Bearer {s.token}", "x-api-key": s.api_key})
    assert answer.json() == {"operation": "deleted all"}
    assert emulator.ids(1) == set() and emulator.ids(2) == {"c"}


def test_reconcile_21000_entities_exactly(tmp_path, adobe):
    entities = [f"ent-{n:06d}" for n in range(21_000)] + ["has,comma", "ünïcødé", "00123"]
    stale = set(entities[::20]) | {"has,comma", "ünïcødé", "00123"}
    emulator = adobe({1: entities, 2: entities[:100]})
    config = recs_config(tmp_path, emulator, [i for i in entities if i not in stale],
                         "backoff_initial_seconds = 0.05\n")
    result = run_job(config, config.jobs["recs"], RunRequest(dry_run=False))
    assert result.exit_code == EXIT_OK, result.summary
    summary = result.summary
    assert summary["inventory_complete"] is True and summary["remote_ids"] == len(entities)
    assert summary["skipped"] == {"unaddressable": 1}  # the id with a comma
    expected = stale - {"has,comma"}
    assert set(emulator.stats.deleted) == expected and len(emulator.stats.deleted) == len(expected)
    assert emulator.ids(1) == set(entities) - expected
    assert emulator.ids(2) == set(entities[:100])  # the other environment is untouched
    assert emulator.stats.delete_everything == 0
    assert max(emulator.stats.url_lengths) <= 8192
    assert summary["backup"]["records"] == len(expected)


def test_503_throttling_is_honoured(tmp_path, adobe):
    emulator = adobe({1: [f"e{n:04d}" for n in range(3000)]},
                     AdobeTargetSettings(requests_per_window=3, window_seconds=0.5,
                                         retry_after_fractional=True))
    limits = Limits(requests_per_window=50, window_seconds=0.5, max_attempts=30,
                    backoff_initial_seconds=0.05, backoff_max_seconds=0.2, list_page_size=500,
                    list_window=501)
    from reconciler.core.clock import SystemClock
    backend = AdobeTargetBackend(target_for(emulator), limits, SystemClock())
    inventory = backend.inventory()
    backend.close()
    assert inventory.complete and len(inventory.ids) == 3000
    assert emulator.stats.throttled > 0


def test_searches_and_reads_share_the_deletes_budget_file(tmp_path, adobe):
    """Adobe documents one limit (50 calls a minute) for every admin call: catalogsearch and
    Get Entity count against the same shared budget file as the deletes, even in a dry run
    (which sends no delete at all)."""
    from reconciler.runs.runner import default_backend
    from reconciler.store.budgets import budget_path

    emulator = adobe({1: [f"e{n:03d}" for n in range(30)]})
    source = write_csv(tmp_path / "source.csv", [f"e{n:03d}" for n in range(30)])
    s = emulator.settings
    text = (f"[jobs.recs.source]\npath = {toml_value(source)}\n[jobs.recs.target]\n"
            f"backend = \"adobe-target\"\nbase_url = {toml_value(emulator.base_url)}\n"
            f"tenant = {toml_value(s.tenant)}\nenvironment = 1\n"
            f"api_key = {toml_value(s.api_key)}\ntoken = {toml_value(s.token)}\n")
    config = load_config(write_config(tmp_path, text))
    job = config.jobs["recs"]
    backend = default_backend(job, FakeClock(), None)
    shared = budget_path(config.budgets, backend.budget_key)
    assert backend.read_budget_key == backend.budget_key
    backend.close()
    assert not shared.exists()
    result = run_job(config, job, RunRequest(dry_run=True))
    assert result.exit_code == EXIT_OK, result.summary
    assert shared.exists() and shared.stat().st_size > 0



def test_a_runs_backup_holds_the_properties_its_listing_does_not_carry(tmp_path, adobe):
    """Adobe Target's search lists ids only: the backup reads the deleted ones back, so a
    restore would bring back their properties, not empty entities."""
    entities = [f"ent-{n:03d}" for n in range(40)]
    emulator = adobe({1: entities})
    config = recs_config(tmp_path, emulator, entities[5:])
    result = run_job(config, config.jobs["recs"], RunRequest(dry_run=False))
    assert result.exit_code == EXIT_OK and result.summary["deleted"] == 5, result.summary
    assert result.summary["backup"]["read_back"] == 5
    records = sorted(read_records(Path(result.summary["backup"]["path"])),
                     key=lambda r: r["item_id"])
    assert [(r["item_id"], r["properties"]["name"]) for r in records] == [
        (f"ent-{n:03d}", f"Entity ent-{n:03d}") for n in range(5)]
