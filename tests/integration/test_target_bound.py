"""Issue 9, second half: state bound to the target, signed plans, ownership, grace by time,
caps on what a run would delete, and a way past a cap that works under the defaults.

Each test is a real run (or real ``reconciler`` process) against the emulator, and checks
the exact line a user sees.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.config import load_config
from reconciler.core.clock import FakeClock
from reconciler.core.errors import EXIT_CONFIG, EXIT_OK, EXIT_REFUSED
from reconciler.core.fingerprint import short, target_fingerprint
from reconciler.runs.runner import RunRequest, run_job
from reconciler.runs.signals import StopFlag
from reconciler.store import saved_plan
from reconciler.store.journal import Journal
from tests.helpers import emulator_config, job_toml, run_reconciler, write_config, write_csv

pytestmark = pytest.mark.integration

ITEMS = {f"{n:05d}": {"title": f"Item {n}"} for n in range(2000)}
IDS = sorted(ITEMS)
SIGNATURE_LINE = ("refused: the plan's signature does not match (the file was edited, or it "
                  "was made with another state_dir); nothing was deleted: make a new one with "
                  "'reconciler plan JOB --out'")


def run(config, job="products", clock=None, stop=None, **kw):
    request = RunRequest(dry_run=kw.pop("dry_run", False), **kw)
    return run_job(config, config.jobs[job], request, clock=clock, stop=stop)


def wall_clock(hours_ago=0.0):
    return FakeClock(wall=datetime.now(UTC) - timedelta(hours=hours_ago))


def events(log_stream, name):
    return [e for e in map(json.loads, log_stream.getvalue().splitlines())
            if e.get("event") == name]


@pytest.fixture
def catalog(start_emulator):
    return start_emulator(ITEMS, bulk_requests_per_window=100)


# -- class 4: a plan never outlives its target -------------------------------------------

GRACE_TWO_RUNS = {"grace_runs": 2, "grace_period": "off", "min_ids": 0,
                  "max_delete_fraction": 1.0, "max_deletes_per_day": "off"}


def _interrupted_plan(tmp_path, old):
    """Job 'products' on ``old`` with a stored plan of 100 ids, stopped before any send."""
    config = emulator_config(tmp_path, old, IDS[100:], safety=GRACE_TWO_RUNS)
    assert run(config).summary["pending_grace"] == 100
    stop = StopFlag()
    stop.request("test")
    stopped = run(config, stop=stop)
    assert stopped.summary["not_sent"] == 100 and old.stats.bulk_delete_requests == 0
    return config, stopped.run_id


@pytest.mark.parametrize("how", ["repointed", "second_config"])
def test_a_job_pointed_at_another_catalog_never_sends_the_old_plan(
        tmp_path, start_emulator, log_stream, how):
    old = start_emulator(ITEMS, bulk_requests_per_window=100)
    new = start_emulator(ITEMS, bulk_requests_per_window=100, catalog_id="other-catalog",
                         project_token="other-project")
    config, interrupted = _interrupted_plan(tmp_path, old)
    source = config.jobs["products"].source.path
    text = job_toml("products", new.base_url, source, emulator=new, safety=GRACE_TWO_RUNS)
    if how == "repointed":
        moved = load_config(write_config(tmp_path, text))
    else:  # a second config in another folder, sharing the first one's state_dir
        other = tmp_path / "second"
        other.mkdir()
        path = write_config(other, text)
        path.write_text(path.read_text().replace('state_dir = "state"',
                                                 f'state_dir = "{config.state_dir}"'))
        moved = load_config(path)
    assert moved.state_dir == config.state_dir
    result = run(moved)
    assert result.exit_code == EXIT_OK, result.summary
    assert new.stats.bulk_delete_requests == 0 and len(new.ids()) == 2000
    assert "resumed_from" not in result.summary
    assert result.summary["pending_grace"] == 100  # grace starts from zero
    was, now = (short(target_fingerprint(c.jobs["products"].target)) for c in (config, moved))
    assert result.summary["target_changed"] == {"from": was, "to": now}
    assert f"**Target changed** since the last run (`{was}` -> `{now}`)" in (
        result.report_dir / "report.md").read_text()
    (event,) = events(log_stream, "run.target_changed")
    assert event["left_alone"] == interrupted and event["level"] == "warning"
    # Pointed back, the job finds its own plan again and finishes it on its own catalog.
    back = run(config)
    assert back.summary["resumed_from"] == interrupted and back.summary["deleted"] == 100
    assert set(old.stats.deleted) == set(IDS[:100]) and new.stats.bulk_delete_requests == 0


def test_a_repointed_job_has_no_shrink_baseline_or_daily_total_of_the_old_catalog(
        tmp_path, start_emulator):
    old = start_emulator(ITEMS, bulk_requests_per_window=100)
    new = start_emulator({i: ITEMS[i] for i in IDS[:1000]}, bulk_requests_per_window=100,
                         catalog_id="other-catalog")
    rules = {"grace_runs": 1, "grace_period": "off", "max_deletes_per_day": 150,
             "max_delete_fraction": 1.0}
    config = emulator_config(tmp_path, old, IDS[100:], safety=rules)
    assert run(config).summary["deleted"] == 100  # 100 of today's 150; baseline 1900 ids
    source = write_csv(tmp_path / "new.csv", IDS[:900])  # the new catalog's smaller export
    moved = load_config(write_config(tmp_path, job_toml("products", new.base_url, source,
                                                        emulator=new, safety=rules)))
    result = run(moved)
    assert result.exit_code == EXIT_OK, result.summary.get("refused")
    gates = {g["gate"]: g for g in result.summary["gates"]}
    assert "max_shrink" not in gates  # 1900 -> 900 would have been refused
    assert gates["max_deletes_per_day"]["deleted_last_24h"] == 0
    assert result.summary["deleted"] == 100


# -- class 5: saved plans are signed and every cap is judged again -----------------------

def _saved(tmp_path, catalog, source=None, **safety):
    rules = {"grace_runs": 1, "grace_period": "off", **safety}
    config = emulator_config(tmp_path, catalog, source or IDS[150:], safety=rules)
    plan_file = tmp_path / "plan.json"
    made = run_reconciler("--config", config.path, "plan", "products", "--out", plan_file)
    assert made.returncode == EXIT_OK, made.stderr
    return config, plan_file


@pytest.mark.parametrize("edit", [
    lambda p: p["to_delete"].append("01999"),
    lambda p: p["to_delete"].pop(),
    lambda p: p["inventory"].update(remote_ids=10**9),
    lambda p: p.update(caps_refusal="max_delete_fraction: approved by finance"),
    lambda p: p.update(target="0" * 64),
    lambda p: p.update(created_at=p["created_at"] + 3600),
    lambda p: p.pop("mac"),
    lambda p: p.update(mac="0" * 64),
])
def test_an_edited_plan_is_refused_with_one_line(tmp_path, catalog, edit):
    config, plan_file = _saved(tmp_path, catalog)
    data = json.loads(plan_file.read_text())
    edit(data)
    plan_file.write_text(json.dumps(data))
    for extra in ([], ["--approve", "--reason", "x"]):
        applied = run_reconciler("--config", config.path, "apply", plan_file, *extra)
        assert applied.returncode == EXIT_REFUSED
        assert applied.stderr == f"reconciler: {plan_file}: {SIGNATURE_LINE}\n"
    assert catalog.stats.bulk_delete_requests == 0


def test_a_plan_from_another_state_dir_is_refused(tmp_path, catalog):
    config, plan_file = _saved(tmp_path, catalog)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(config.path, other / "reconciler.toml")
    applied = run_reconciler("--config", other / "reconciler.toml", "apply", plan_file)
    assert applied.returncode == EXIT_REFUSED
    assert applied.stderr == f"reconciler: {plan_file}: {SIGNATURE_LINE}\n"
    key = config.state_dir / saved_plan.KEY_NAME
    assert key.stat().st_mode & 0o777 == 0o600
    assert catalog.stats.bulk_delete_requests == 0


def test_a_plan_for_another_target_is_refused(tmp_path, catalog, start_emulator):
    config, plan_file = _saved(tmp_path, catalog)
    new = start_emulator(ITEMS, catalog_id="other-catalog")
    source = config.jobs["products"].source.path
    moved = write_config(tmp_path, job_toml("products", new.base_url, source, emulator=new,
                                            safety={"grace_runs": 1, "grace_period": "off"}))
    applied = run_reconciler("--config", moved, "apply", plan_file, "--approve",
                             "--reason", "x")
    was = short(target_fingerprint(config.jobs["products"].target))
    now = short(target_fingerprint(load_config(moved).jobs["products"].target))
    assert applied.returncode == EXIT_REFUSED
    assert (f"products: the plan was made for target {was}, but job 'products' now targets "
            f"{now}: nothing was deleted; make a new plan") in applied.stderr.splitlines()
    assert new.stats.bulk_delete_requests == 0 and catalog.stats.bulk_delete_requests == 0


def test_apply_judges_the_caps_on_the_catalog_as_it_is_now(tmp_path, catalog):
    config, plan_file = _saved(tmp_path, catalog)  # 150 of 2000 (7.5%): under the 10% cap
    for item_id in IDS[1300:]:  # someone else removes 700 other items meanwhile
        catalog.catalog.remove(item_id)
    applied = run_reconciler("--config", config.path, "apply", plan_file)
    assert applied.returncode == EXIT_REFUSED
    assert ("products: max_delete_fraction: 150 of 1300 remote ids (11.5%) to delete; "
            "max_delete_fraction is 10%; 'apply --approve --reason TEXT' goes past it"
            ) in applied.stderr.splitlines()
    assert catalog.stats.bulk_delete_requests == 0
    approved = run_reconciler("--config", config.path, "apply", plan_file, "--approve",
                              "--reason", "checked")
    assert approved.returncode == EXIT_OK, approved.stderr
    assert sorted(catalog.stats.deleted) == IDS[:150]


# -- class 7: one catalog, one owner per id ----------------------------------------------

def _two_jobs(tmp_path, catalog, scope_a=None, scope_b=None):
    source = write_csv(tmp_path / "a.csv", [i for i in IDS if i not in
                                            {*IDS[:10], "00150", "01500"}])
    other = write_csv(tmp_path / "b.csv", IDS)
    texts = []
    for name, path, scope in (("a", source, scope_a), ("b", other, scope_b)):
        text = job_toml(name, catalog.base_url, path, emulator=catalog)
        if scope is not None:
            text = text.replace(f"[jobs.{name}.source]",
                                f"[jobs.{name}]\nscope = {json.dumps(scope)}\n"
                                f"[jobs.{name}.source]")
        texts.append(text)
    return write_config(tmp_path, *texts)


def test_two_jobs_on_one_catalog_are_refused_without_disjoint_scopes(tmp_path, catalog):
    path = _two_jobs(tmp_path, catalog)
    line = ("jobs 'a' and 'b' target the same catalog: declare a disjoint 'scope' in each "
            "(an id may belong to one job only)")
    checked = run_reconciler("--config", path, "check")
    assert checked.returncode == EXIT_CONFIG
    assert checked.stderr.splitlines() == [f"a: FAILED: {line}", f"b: FAILED: {line}"]
    ran = run_reconciler("--config", path, "run", "a")
    assert ran.returncode == EXIT_CONFIG
    assert f"a: {path}: {line}" in ran.stderr.splitlines()
    assert catalog.stats.bulk_delete_requests == 0
    overlapping = _two_jobs(tmp_path, catalog, ["00"], ["001"])
    checked = run_reconciler("--config", overlapping, "check")
    assert checked.returncode == EXIT_CONFIG
    assert ("a: FAILED: jobs 'a' and 'b' target the same catalog: their scopes are not "
            "provably disjoint (an id may belong to one job only)"
            ) in checked.stderr.splitlines()


def test_disjoint_scopes_share_a_catalog_and_keep_to_their_own_ids(tmp_path, catalog):
    path = _two_jobs(tmp_path, catalog, ["000"], ["001", "B-*"])
    checked = run_reconciler("--config", path, "check")
    assert checked.returncode == EXIT_OK, checked.stderr
    config = load_config(path)
    result = run(config, "a")
    assert result.exit_code == EXIT_OK, result.summary
    assert result.summary["skipped"] == {"out_of_scope": 2}  # 00150 (b's) and 01500 (nobody's)
    assert sorted(catalog.stats.deleted) == IDS[:10]
    skipped = (result.report_dir / "skipped.csv").read_text().splitlines()
    assert skipped[1:] == ['"00150","out_of_scope"', '"01500","out_of_scope"']


def test_a_scoped_job_cannot_purge_the_shared_catalog(tmp_path, catalog):
    path = _two_jobs(tmp_path, catalog, ["000"], ["001"])
    purged = run_reconciler("--config", path, "purge", "a", "--confirm", "demo-catalog")
    assert purged.returncode == EXIT_CONFIG
    assert purged.stderr == ("reconciler: purge refused: job 'a' owns only its scope of "
                             "catalog 'demo-catalog' and purge deletes every item; nothing "
                             "was deleted\n")
    assert len(catalog.ids()) == 2000


# -- class 8: grace by runs and by time --------------------------------------------------

def test_two_runs_minutes_apart_over_one_bad_export_delete_nothing(tmp_path, catalog):
    config = emulator_config(tmp_path, catalog, [i for i in IDS if i != "00042"], safety={})
    clock = wall_clock()
    assert run(config, clock=clock).summary["pending_grace"] == 1
    clock.advance(300)
    second = run(config, clock=clock)
    assert second.exit_code == EXIT_OK and second.summary["deleted"] == 0
    (grace,) = [g for g in second.summary["gates"] if g["gate"] == "grace"]
    assert grace["detail"] == "0 ids due, 1 pending grace (grace_runs 2 and grace_period 1 h)"
    assert second.summary["grace"] == {
        "runs": 2, "period_seconds": 3600.0, "due": 0, "pending": 1,
        "clock": {"since_last_run_wall_seconds": 300.0,
                  "since_last_run_counted_seconds": 300.0, "clocks_disagree": False}}
    assert catalog.stats.bulk_delete_requests == 0
    clock.advance(3300)  # an hour after it was first missed
    third = run(config, clock=clock)
    assert third.summary["deleted"] == 1 and "00042" not in catalog.ids()


# -- class 9: caps judge what this run would delete --------------------------------------

def test_after_a_large_approved_apply_a_run_with_nothing_to_delete_passes(tmp_path, catalog):
    config = emulator_config(tmp_path, catalog, IDS[500:],
                             safety={"grace_runs": 1, "grace_period": "off"})
    plan_file = tmp_path / "plan.json"
    planned = run_reconciler("--config", config.path, "plan", "products", "--out", plan_file)
    assert planned.returncode == EXIT_REFUSED
    approved = run_reconciler("--config", config.path, "apply", plan_file, "--approve",
                              "--reason", "clean-up")
    assert approved.returncode == EXIT_OK and len(catalog.stats.deleted) == 500
    after = run_reconciler("--config", config.path, "run", "products")
    assert after.returncode == EXIT_OK, after.stderr
    assert after.stdout.splitlines()[0] == "products: 0 deleted, 0 not deleted"


# -- class 10: the way past a cap works under the defaults -------------------------------

def test_over_cap_path_with_default_settings(tmp_path, catalog):
    config = emulator_config(tmp_path, catalog, IDS[500:], safety={})  # every default
    start = datetime.now(UTC) - timedelta(hours=2)
    clock = FakeClock(wall=start)
    os.utime(config.jobs["products"].source.path, (start.timestamp() - 60,) * 2)
    first = run(config, clock=clock)  # 500 ids (25%) first seen missing: pending
    assert first.exit_code == EXIT_OK and first.summary["pending_grace"] == 500
    clock.advance(3601)
    for _ in range(2):  # due now, over the 10% cap: refused, yet absences are recorded
        refused = run(config, clock=clock)
        assert refused.exit_code == EXIT_REFUSED
        assert refused.summary["refused"] == (
            "max_delete_fraction: 500 of 2000 remote ids (25.0%) to delete; "
            "max_delete_fraction is 10%; max_deletes_per_day: 0 deleted in the last 24 h "
            "plus 500 now; the daily budget is 400")
        clock.advance(60)
    journal = Journal.in_state_dir(config.state_dir)
    target = target_fingerprint(config.jobs["products"].target)
    assert {runs for runs, _ in journal.absences("products", target).values()} == {3}
    journal.close()
    plan_file = tmp_path / "plan.json"
    saved = run(config, clock=clock, dry_run=True, plan_out=plan_file)
    assert saved.exit_code == EXIT_REFUSED
    assert saved.summary["refused"].endswith(
        f"the plan is saved in {plan_file}: 'reconciler apply PLAN --approve --reason TEXT' "
        "goes past the cap")
    assert sorted(json.loads(plan_file.read_text())["to_delete"]) == IDS[:500]
    blocked = run_reconciler("--config", config.path, "apply", plan_file)
    assert blocked.returncode == EXIT_REFUSED
    assert ("products: max_delete_fraction: 500 of 2000 remote ids (25.0%) to delete; "
            "max_delete_fraction is 10%; max_deletes_per_day: 0 deleted in the last 24 h plus "
            "500 now; the daily budget is 400; 'apply --approve --reason TEXT' goes past it"
            ) in blocked.stderr.splitlines()
    assert catalog.stats.bulk_delete_requests == 0
    approved = run_reconciler("--config", config.path, "apply", plan_file, "--approve",
                              "--reason", "discontinued range, ticket 7")
    assert approved.returncode == EXIT_OK, approved.stderr
    assert sorted(catalog.stats.deleted) == IDS[:500]


def test_a_refused_source_records_no_absence(tmp_path, catalog):
    config = emulator_config(tmp_path, catalog, IDS[1:], safety={"canary_ids": ["01999"]})
    write_csv(config.jobs["products"].source.path, IDS[1:-1])  # the canary is missing
    assert run(config).exit_code == EXIT_REFUSED
    journal = Journal.in_state_dir(config.state_dir)
    target = target_fingerprint(config.jobs["products"].target)
    assert journal.absences("products", target) == {}
    journal.close()


def test_a_plan_from_the_future_is_refused(tmp_path, catalog):
    """A plan made while a clock ran ahead would escape max_plan_age: it is refused."""
    config = emulator_config(tmp_path, catalog, IDS[150:],
                             safety={"grace_runs": 1, "grace_period": "off", "max_age": "off"})
    plan_file = tmp_path / "plan.json"
    ahead = wall_clock(hours_ago=-48)
    assert run(config, clock=ahead, dry_run=True, plan_out=plan_file).exit_code == EXIT_OK
    key = saved_plan.signing_key(config.state_dir)
    applied = run(config, apply=saved_plan.load(plan_file, key), approve=True, reason="x")
    assert applied.exit_code == EXIT_REFUSED
    assert applied.summary["refused"] == ("the plan was made 48.0 h in the future (a clock "
                                          "was wrong): nothing was deleted; make a new one")
    assert catalog.stats.bulk_delete_requests == 0


def test_an_interrupted_plan_resumes_only_within_todays_scope(tmp_path, catalog):
    config, interrupted = _interrupted_plan(tmp_path, catalog)
    text = config.path.read_text().replace("[jobs.products.source]",
                                           '[jobs.products]\nscope = ["0005"]\n'
                                           "[jobs.products.source]")
    config.path.write_text(text)
    resumed = run(load_config(config.path))
    assert resumed.summary["resumed_from"] == interrupted
    assert resumed.summary["skipped"] == {"out_of_scope": 90}
    assert sorted(catalog.stats.deleted) == IDS[50:60]
