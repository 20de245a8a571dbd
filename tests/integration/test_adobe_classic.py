"""Adobe Recommendations classic end to end: export inventory, ledger inventory, no deleteAll."""

from __future__ import annotations

import pytest

from reconciler.backends.adobe_classic import entity_delete_query
from reconciler.config import load_config
from reconciler.core.errors import EXIT_CONFIG, EXIT_OK, ConfigError
from reconciler.emulator.adobe_classic import AdobeClassicEmulator
from reconciler.runs.runner import RunRequest, run_job
from tests.helpers import PERMISSIVE_SAFETY, toml_value, write_config, write_csv

pytestmark = pytest.mark.integration


@pytest.fixture
def classic(serve):
    return lambda entities: serve(AdobeClassicEmulator(entities))


def classic_config(tmp_path, emulator, source_ids, inventory):
    source = write_csv(tmp_path / "source.csv", source_ids)
    s = emulator.settings
    target = {"backend": "adobe-classic", "base_url": emulator.base_url, "client": s.client,
              "client_token": s.client_token}
    text = (f"[jobs.recs.source]\npath = {toml_value(source)}\n[jobs.recs.target]\n"
            + "".join(f"{k} = {toml_value(v)}\n" for k, v in target.items()))
    if inventory == "ledger":
        text += 'inventory = "ledger"\n'
    elif inventory is not None:
        text += f"[jobs.recs.target.inventory]\npath = {toml_value(inventory)}\n"
    text += ("[jobs.recs.limits]\nrequests_per_window = 100\nwindow_seconds = 1\n"
             "[jobs.recs.safety]\n"
             + "".join(f"{k} = {toml_value(v)}\n" for k, v in PERMISSIVE_SAFETY.items()))
    return load_config(write_config(tmp_path, text))


def test_the_delete_query_never_goes_without_ids():
    with pytest.raises(ValueError, match="without ids"):
        entity_delete_query("c", "t", [])
    assert entity_delete_query("c", "t o", ["a b", "é"]) == (
        "/rest?action=entity.delete&client=c&clientToken=t%20o&entityIds=a%20b,%C3%A9")


def test_reconcile_20000_entities_from_an_export(tmp_path, classic):
    entities = [f"p{n:06d}" for n in range(20_500)] + ["has,comma", "00123"]
    stale = set(entities[::25]) | {"has,comma", "00123"}
    emulator = classic(entities)
    export = write_csv(tmp_path / "catalog-export.csv", entities)
    config = classic_config(tmp_path, emulator, [i for i in entities if i not in stale], export)
    result = run_job(config, config.jobs["recs"], RunRequest(dry_run=False))
    assert result.exit_code == EXIT_OK, result.summary
    assert result.summary["skipped"] == {"unaddressable": 1}
    expected = stale - {"has,comma"}
    assert set(emulator.stats.deleted) == expected
    assert len(emulator.stats.deleted) == len(expected)
    assert emulator.ids() == set(entities) - expected
    assert emulator.stats.delete_all == 0 and max(emulator.stats.url_lengths) <= 8192
    assert result.summary["backup"]["records"] == len(expected)  # ids only: no read-back
    assert "demo-client-token" not in (result.report_dir / "summary.json").read_text()


def test_the_ledger_is_the_inventory_when_nothing_lists(tmp_path, classic):
    entities = [f"p{n:04d}" for n in range(3000)]
    emulator = classic(entities)
    config = classic_config(tmp_path, emulator, entities, "ledger")
    first = run_job(config, config.jobs["recs"], RunRequest(dry_run=False))
    assert first.exit_code == EXIT_OK and first.summary["to_delete"] == 0
    assert first.summary["inventory"]["source"] == "ledger"
    write_csv(config.jobs["recs"].source.path, entities[100:])  # 100 ids left the export
    second = run_job(config, config.jobs["recs"], RunRequest(dry_run=False))
    assert second.exit_code == EXIT_OK and second.summary["deleted"] == 100
    assert set(emulator.stats.deleted) == set(entities[:100])
    third = run_job(config, config.jobs["recs"], RunRequest(dry_run=False))
    assert third.summary["to_delete"] == 0  # deleted ids left the ledger


def test_classic_needs_an_export_or_the_ledger(tmp_path, classic):
    emulator = classic(["a"])
    with pytest.raises(ConfigError) as caught:
        classic_config(tmp_path, emulator, ["a"], None)
    assert caught.value.exit_code == EXIT_CONFIG
    assert str(caught.value).endswith(
        "jobs.recs.target.inventory: missing key: adobe-classic cannot list its entities; "
        'name an export ({ path = "..." }) or "ledger"')
