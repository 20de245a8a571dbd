"""Never delete what should stay: each bad situation ends with nothing deleted."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.core.clock import FakeClock
from reconciler.core.errors import EXIT_CONFIG, EXIT_OK, EXIT_REFUSED
from reconciler.emulator import generate_items
from reconciler.runs.runner import RunRequest, run_job
from reconciler.store import saved_plan
from tests.helpers import (
    emulator_config,
    job_toml,
    run_reconciler,
    write_config,
    write_csv,
)

pytestmark = pytest.mark.integration

ITEMS = {f"{n:05d}": {"title": f"Item {n}", "price": n} for n in range(2000)}
DEFAULT_SAFETY: dict = {}  # an empty [safety] table: every default applies


def run(config, dry_run=False, clock=None, **kw):
    return run_job(config, config.jobs["products"], RunRequest(dry_run=dry_run, **kw),
                   clock=clock)


def wall_clock(hours_ago=0.0):
    """A fake clock at the real time (minus ``hours_ago``), moved by the test only."""
    return FakeClock(wall=datetime.now(UTC) - timedelta(hours=hours_ago))


def refused(result, gate):
    assert result.exit_code == EXIT_REFUSED, result.summary
    assert result.summary["refused"].startswith(f"{gate}: "), result.summary["refused"]


@pytest.fixture
def catalog(start_emulator):
    return start_emulator(ITEMS, bulk_requests_per_window=100)


def make(tmp_path, catalog, source, **safety):
    return emulator_config(tmp_path, catalog, source, safety={**DEFAULT_SAFETY, **safety})


def test_empty_export_is_refused(tmp_path, catalog):
    result = run(make(tmp_path, catalog, []))
    refused(result, "min_ids")
    assert catalog.stats.bulk_delete_requests == 0


def test_truncated_export_is_refused_after_a_good_run(tmp_path, catalog):
    everything = sorted(ITEMS)
    config = make(tmp_path, catalog, everything)
    assert run(config).exit_code == EXIT_OK
    write_csv(config.jobs["products"].source.path, everything[:1000])  # half the rows
    result = run(config)
    refused(result, "max_shrink")
    assert "2000 -> 1000 ids" in result.summary["refused"]
    assert catalog.stats.bulk_delete_requests == 0 and len(catalog.ids()) == 2000


def test_ids_that_lost_their_leading_zeros_are_refused(tmp_path, catalog):
    as_numbers = [str(int(i)) for i in ITEMS]  # "00042" read as 42
    result = run(make(tmp_path, catalog, as_numbers, max_delete_fraction=1.0,
                      max_deletes_per_day="off"))
    refused(result, "near_match")
    assert catalog.stats.bulk_delete_requests == 0


def test_stale_export_is_refused(tmp_path, catalog):
    config = make(tmp_path, catalog, sorted(ITEMS))
    old = time.time() - 3 * 86400
    os.utime(config.jobs["products"].source.path, (old, old))
    result = run(config)
    refused(result, "max_age")
    assert "72.0 h old; max_age is 26.0 h" in result.summary["refused"]


def test_missing_canary_is_refused(tmp_path, catalog):
    source = sorted(ITEMS)[:-1]
    result = run(make(tmp_path, catalog, source, canary_ids=["01999"]))
    refused(result, "canary_ids")
    assert catalog.stats.bulk_delete_requests == 0


def test_a_cap_refuses_the_whole_run_never_a_partial_one(tmp_path, catalog):
    source = sorted(ITEMS)[:1500]  # 25% of the catalog would go; the default cap is 10%
    config, clock = make(tmp_path, catalog, source, max_shrink=1.0), wall_clock()
    first = run(config, clock=clock)  # the ids are first seen missing: all pending grace
    assert first.exit_code == EXIT_OK and first.summary["pending_grace"] == 500
    clock.advance(3601)
    result = run(config, clock=clock)  # now all 500 are due at once: the cap refuses
    refused(result, "max_delete_fraction")
    assert catalog.stats.bulk_delete_requests == 0 and len(catalog.ids()) == 2000
    gates = {g["gate"]: g for g in result.summary["gates"]}
    assert gates["max_delete_fraction"]["fraction"] == 0.25


def test_daily_budget_across_runs(tmp_path, catalog):
    ids = sorted(ITEMS)
    config = make(tmp_path, catalog, ids[100:], grace_runs=1, grace_period="off",
                  max_deletes_per_day=150)
    assert run(config).summary["deleted"] == 100
    write_csv(config.jobs["products"].source.path, ids[200:])
    refused(run(config), "max_deletes_per_day")
    assert len(catalog.ids()) == 1900


def test_protected_ids_are_never_deleted(tmp_path, catalog):
    protect_file = write_csv(tmp_path / "keep.csv", ["00003"])
    source = sorted(ITEMS)[10:]
    config = make(tmp_path, catalog, source, grace_runs=1, grace_period="off",
                  protect=["00001", "0000[5-6]", f"file:{protect_file}"])
    result = run(config)
    assert result.exit_code == EXIT_OK
    assert result.summary["skipped"] == {"protected": 4}
    assert {"00001", "00003", "00005", "00006"} <= catalog.ids()
    assert set(catalog.stats.deleted) == {"00000", "00002", "00004", "00007", "00008", "00009"}


def test_a_protect_list_cut_short_is_refused_like_a_source(tmp_path, catalog):
    protect_file = tmp_path / "keep.csv"
    protect_file.write_bytes(b"item_id\n00003\n0000")  # still being written
    config = make(tmp_path, catalog, sorted(ITEMS)[10:], grace_runs=1, grace_period="off",
                  protect=[f"file:{protect_file}"])
    result = run(config)
    assert result.exit_code == EXIT_REFUSED
    assert result.summary["refused"] == (
        f"{protect_file}: the last row of this protect list has no line break: it may be cut "
        "short (still being written?); nothing was deleted (require_final_newline = false "
        "accepts it)")
    assert catalog.stats.bulk_delete_requests == 0


def test_one_off_missing_id_survives_its_grace(tmp_path, catalog):
    ids = sorted(ITEMS)
    config = make(tmp_path, catalog, [i for i in ids if i != "00042"], grace_period="off")
    first = run(config)
    assert first.exit_code == EXIT_OK
    assert first.summary["pending_grace"] == 1 and first.summary["deleted"] == 0
    write_csv(config.jobs["products"].source.path, ids)  # the id is back
    assert run(config).summary["to_delete"] == 0
    write_csv(config.jobs["products"].source.path, [i for i in ids if i != "00042"])
    again = run(config)  # missing again: grace starts over
    assert again.summary["pending_grace"] == 1
    assert catalog.stats.bulk_delete_requests == 0 and "00042" in catalog.ids()
    last = run(config)  # two runs in a row: now it goes
    assert last.summary["deleted"] == 1 and "00042" not in catalog.ids()


def test_saved_plan_applied_later_deletes_exactly_its_ids_minus_drifted(tmp_path, catalog):
    ids = sorted(ITEMS)
    config = make(tmp_path, catalog, ids[100:], grace_runs=1, grace_period="off")
    plan_file = tmp_path / "plan.json"
    planned = run_reconciler("--config", config.path, "plan", "products", "--out", plan_file)
    assert planned.returncode == 0, planned.stderr
    saved = json.loads(plan_file.read_text())
    assert saved["to_delete"] == ids[:100] and len(saved["source"]["sha256"]) == 64
    write_csv(config.jobs["products"].source.path, ids[5:])  # 00005..00099 drift back
    applied = run_reconciler("--config", config.path, "apply", plan_file)
    assert applied.returncode == 0, applied.stderr
    assert sorted(catalog.stats.deleted) == ids[:5]
    report = applied.stdout.splitlines()[-1].removeprefix("products: report ")
    summary = json.loads((config.path.parent / report / "summary.json").read_text())
    assert summary["skipped"] == {"drifted": 95} and summary["source_changed"] is True


def test_apply_is_the_way_past_a_cap_and_old_plans_are_refused(tmp_path, catalog):
    ids = sorted(ITEMS)
    config = make(tmp_path, catalog, ids[500:], grace_runs=1, grace_period="off",
                  max_shrink=1.0)
    plan_file = tmp_path / "plan.json"
    planned = run_reconciler("--config", config.path, "plan", "products", "--out", plan_file)
    assert planned.returncode == EXIT_REFUSED
    assert "the plan is saved in" in planned.stderr
    blocked = run_reconciler("--config", config.path, "apply", plan_file)
    assert blocked.returncode == EXIT_REFUSED and catalog.stats.bulk_delete_requests == 0
    no_reason = run_reconciler("--config", config.path, "apply", plan_file, "--approve")
    assert no_reason.returncode == EXIT_CONFIG
    assert no_reason.stderr == "reconciler: apply --approve needs --reason TEXT (it is logged)\n"
    approved = run_reconciler("--config", config.path, "apply", plan_file, "--approve",
                              "--reason", "spring clean-up, ticket 42")
    assert approved.returncode == EXIT_OK, approved.stderr
    assert len(catalog.stats.deleted) == 500
    event = next(json.loads(line) for line in approved.stderr.splitlines()
                 if '"apply.approved"' in line)
    assert event["reason"] == "spring clean-up, ticket 42" and event["user"]
    twice = run_reconciler("--config", config.path, "apply", plan_file, "--approve",
                           "--reason", "once more")
    assert twice.returncode == EXIT_REFUSED and len(catalog.stats.deleted) == 500
    assert [line for line in twice.stderr.splitlines() if not line.startswith("{")] == [
        f"products: the plan made by run {saved_run(plan_file)} was "
        f"already applied by run {approved_run(approved)} (a saved plan is applied once): "
        "nothing was deleted; make a new plan"]

    saved = json.loads(plan_file.read_text())
    saved["created_at"] -= 2 * 86400  # a plan made two days ago (signed as it would be)
    saved["mac"] = saved_plan.signature(saved, saved_plan.signing_key(config.state_dir))
    plan_file.write_text(json.dumps(saved))
    stale = run_reconciler("--config", config.path, "apply", plan_file, "--approve",
                           "--reason", "again")
    assert stale.returncode == EXIT_REFUSED
    assert "old; max_plan_age is 24.0 h: make a new one" in stale.stderr


def test_apply_backs_up_from_its_listing_with_no_read_back_per_id(tmp_path, catalog):
    """The listing apply makes anyway (the caps need the catalog as it is now) carries each
    item's current properties: the backup takes them from there, with no GET per id, and
    an id gone since the plan is skipped as ``already_gone``."""
    ids = sorted(ITEMS)
    config = make(tmp_path, catalog, ids[100:], grace_runs=1, grace_period="off")
    plan_file = tmp_path / "plan.json"
    planned = run(config, dry_run=True, plan_out=plan_file)
    assert planned.exit_code == EXIT_OK and planned.summary["to_delete"] == 100
    with catalog.lock:  # between plan and apply: one item edited, one deleted by someone
        catalog.catalog.upsert("00007", {"title": "renamed since the plan"}, replace=False)
        catalog.catalog.remove("00008")
    saved = saved_plan.load(plan_file, saved_plan.signing_key(config.state_dir))
    lists_before = catalog.stats.list_requests
    applied = run(config, apply=saved)
    assert applied.exit_code == EXIT_OK, applied.message
    assert catalog.stats.get_requests == 0
    assert catalog.stats.list_requests - lists_before == applied.summary["inventory"]["requests"]
    assert applied.summary["skipped"] == {"already_gone": 1}
    assert applied.summary["backup"] == {"path": applied.summary["backup"]["path"],
                                         "records": 99, "read_back": 0}
    from reconciler.store.backups import read_records
    backup = {r["item_id"]: r["properties"]
              for r in read_records(Path(applied.summary["backup"]["path"]))}
    assert backup["00007"] == {"title": "renamed since the plan", "price": 7}
    assert backup["00009"] == ITEMS["00009"] and "00008" not in backup
    assert sorted(catalog.stats.deleted) == [i for i in ids[:100] if i != "00008"]
    assert not list((config.state_dir / "backups" / "products").glob("*.inventory.*"))


def test_restore_brings_back_every_deleted_item_with_its_properties(tmp_path, catalog):
    ids = sorted(ITEMS)
    config = make(tmp_path, catalog, ids[50:], grace_runs=1, grace_period="off")
    deleted = run(config)
    assert deleted.summary["deleted"] == 50
    assert deleted.summary["backup"]["records"] == 50
    restored = run_reconciler("--config", config.path, "restore", deleted.run_id)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.startswith(f"products: restored 50 of 50 items of run {deleted.run_id}")
    for item_id in ids[:50]:
        assert catalog.catalog.items[item_id] == ITEMS[item_id]
    some = write_csv(tmp_path / "some.csv", ["00001", "ghost"])
    partial = run_reconciler("--config", config.path, "restore", deleted.run_id, "--ids", some)
    assert partial.returncode == 0 and "restored 1 of 1 items" in partial.stdout


def test_purge_needs_the_exact_catalog_id_and_backs_up_first(tmp_path, catalog):
    config = make(tmp_path, catalog, sorted(ITEMS))
    wrong = run_reconciler("--config", config.path, "purge", "products", "--confirm", "yes")
    assert wrong.returncode == EXIT_CONFIG
    assert wrong.stderr == (
        "reconciler: purge refused: --confirm must repeat the catalog id of job 'products' "
        "exactly ('demo-catalog'); nothing was deleted\n")
    assert len(catalog.ids()) == 2000
    done = run_reconciler("--config", config.path, "purge", "products", "--confirm",
                          "demo-catalog")
    assert done.returncode == 0, done.stderr
    assert catalog.ids() == set()
    backup = next((config.state_dir / "backups" / "products").glob("*.jsonl.gz"))
    from reconciler.store.backups import read_records
    assert {r["item_id"] for r in read_records(backup)} == set(ITEMS)


def test_old_backups_are_pruned(tmp_path, catalog):
    config = make(tmp_path, catalog, sorted(ITEMS)[1:], grace_runs=1, grace_period="off",
                  backup_retention="1d")
    first = run(config)
    backup = config.state_dir / "backups" / "products" / f"{first.run_id}.jsonl.gz"
    assert backup.exists()
    old = time.time() - 2 * 86400
    os.utime(backup, (old, old))
    run(config, dry_run=True)
    assert not backup.exists()


def test_defaults_hold_without_a_safety_table(tmp_path, catalog):
    source = write_csv(tmp_path / "s.csv", sorted(ITEMS)[:1000])
    text = job_toml("products", catalog.base_url, source, emulator=catalog, safety={})
    config = load_config(write_config(tmp_path, text.replace("[jobs.products.safety]\n", "")))
    assert config.jobs["products"].safety.grace_runs == 2
    assert config.jobs["products"].safety.grace_period == 3600
    clock = wall_clock()
    assert run(config, clock=clock).summary["pending_grace"] == 1000
    clock.advance(3600)
    refused(run(config, clock=clock), "max_delete_fraction")  # half the catalog would go
    assert catalog.stats.bulk_delete_requests == 0


def test_purge_then_restore_returns_the_catalog_exactly_with_slash_ids(tmp_path,
                                                                        start_emulator):
    items = generate_items(300)
    emulator = start_emulator(items, bulk_requests_per_window=100)
    before = {i: dict(p) for i, p in emulator.catalog.items.items()}
    config = make(tmp_path, emulator, sorted(items))
    purged = run_reconciler("--config", config.path, "purge", "products", "--confirm",
                            "demo-catalog")
    assert purged.returncode == 0, purged.stderr
    assert emulator.ids() == {"SKU/with-slash"}  # no API edit can touch it: left in place
    summary = json.loads(next((config.state_dir / "reports" / "products").glob(
        "*/summary.json")).read_text())
    assert summary["action"] == "purge" and summary["skipped"] == {"unaddressable": 1}
    assert summary["backup"]["records"] == len(items)
    restored = run_reconciler("--config", config.path, "restore", summary["run_id"])
    assert restored.returncode == 0, restored.stderr
    assert emulator.catalog.items == before
    history = run_reconciler("--config", config.path, "history")
    assert "running" not in history.stdout


def saved_run(plan_file):
    return json.loads(plan_file.read_text())["run_id"]


def approved_run(result):
    return next(json.loads(line)["run_id"] for line in result.stderr.splitlines()
                if '"run.started"' in line)


def test_apply_and_purge_are_refused_for_a_job_set_dry_run(tmp_path, catalog):
    """A job with ``dry_run = true`` deletes nothing by any command. ``apply`` used to
    delete its plan anyway, journal the run as a dry one (so the history said nothing was
    deleted for real) and leave no claim on the catalog."""
    ids = sorted(ITEMS)
    source = write_csv(tmp_path / "exports" / "products.csv", ids[100:])
    job = job_toml("products", catalog.base_url, source, emulator=catalog,
                   safety={**DEFAULT_SAFETY, "grace_runs": 1, "grace_period": "off"})
    path = write_config(tmp_path, "[jobs.products]\ndry_run = true\n" + job)
    plan_file = tmp_path / "plan.json"
    planned = run_reconciler("--config", path, "plan", "--out", plan_file)
    assert planned.returncode == 0, planned.stderr
    applied = run_reconciler("--config", path, "apply", plan_file, "--approve",
                             "--reason", "try")
    assert applied.returncode == EXIT_REFUSED
    assert [line for line in applied.stderr.splitlines() if not line.startswith("{")] == [
        "products: job 'products' has dry_run = true in its config: it deletes nothing, "
        "and nothing was deleted; set dry_run = false to apply a plan"]
    assert catalog.stats.bulk_delete_requests == 0 and len(catalog.ids()) == len(ids)
    purged = run_reconciler("--config", path, "purge", "products", "--confirm", "demo-catalog")
    assert purged.returncode == EXIT_CONFIG
    assert purged.stderr == (
        "reconciler: purge refused: job 'products' has dry_run = true in its config: it "
        "deletes nothing, and nothing was deleted\n")
    assert len(catalog.ids()) == len(ids)
