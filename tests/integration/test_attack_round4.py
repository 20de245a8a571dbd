"""Hostile QA of issue 9, round 4: grace's own clock, claims across configs that share one
state, single-use saved plans, ``source_not_older`` and look-alike letters, with the DEFAULT
safety settings (an empty ``[safety]`` table).

Every test asserts the correct behaviour: none may delete an id that a person would say is
still in the source, and a healthy run must not be refused. Those marked
``xfail(strict=True)`` reproduce a finding that fails on the code as it is.

The usual shape: a catalog of 2,000 ids, of which 100 (5%, under every cap) are the ones an
accident makes look missing; runs an hour apart (past ``grace_runs`` 2 and ``grace_period``
1h) must not delete them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.core.clock import FakeClock
from reconciler.core.errors import EXIT_CONFIG, EXIT_OK, EXIT_REFUSED
from reconciler.store import plan_key, saved_plan
from tests.helpers import Started, run_reconciler
from tests.hostile import (
    DASHED,
    PLAIN,
    UPPER,
    assert_none_deleted,
    configure,
    run,
    runs_an_hour_apart,
    set_mtime,
    stopped_before_sending,
    write_lines,
)

pytestmark = pytest.mark.integration

# -- 1. Grace's own clock ---------------------------------------------------------------------


def test_a_replica_whose_clock_runs_behind_does_not_serve_grace_in_minutes(
        tmp_path, start_emulator):
    """Found in round 4 (fixed): host A (right clock) runs, replica B (wall clock 5 h slow,
    another boot) a minute later, A again a minute after that. B's run set the grace mark's
    wall clock 5 h back, so A's second run counted 5 h 1 min: three runs in two minutes
    over one bad export served grace_runs 2 and grace_period 1h, and 100 live ids went."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))  # a bad export: no ab-* ids
    real = datetime.now(UTC)
    set_mtime(config.jobs["products"].source.path, real - timedelta(hours=5))  # B's clock
    host_a = FakeClock(start=100, wall=real, boot_id="host-a")
    host_b = FakeClock(start=100, wall=real - timedelta(hours=5), boot_id="host-b")
    results = [run(config, host_a)]
    host_b.advance(60)
    results.append(run(config, host_b))
    host_a.advance(120)
    results.append(run(config, host_a))
    assert_none_deleted(emulator, DASHED, results)
    assert [r.exit_code for r in results] == [EXIT_OK] * 3
    assert [r.summary["pending_grace"] for r in results] == [100, 100, 100]
    assert results[2].summary["grace"]["clock"]["since_last_run_counted_seconds"] == 120.0


def test_a_host_clock_set_back_then_a_reboot_and_ntp_does_not_serve_grace(
        tmp_path, start_emulator):
    """One host: its clock is set back 5 h by hand, it reboots, NTP puts it right. Before
    the fix the set-back run lowered the mark, and the run after the reboot (no boot clock
    to witness) counted the 5 h."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    real = datetime.now(UTC)
    set_mtime(config.jobs["products"].source.path, real - timedelta(hours=5))
    first = FakeClock(start=1000, wall=real, boot_id="boot-1")
    results = [run(config, first)]
    set_back = FakeClock(start=1060, wall=real - timedelta(hours=5) + timedelta(seconds=60),
                         boot_id="boot-1")
    results.append(run(config, set_back))
    assert results[1].summary["grace"]["clock"]["since_last_run_counted_seconds"] == 60.0
    rebooted = FakeClock(start=30, wall=real + timedelta(seconds=180), boot_id="boot-2")
    results.append(run(config, rebooted))
    assert_none_deleted(emulator, DASHED, results)
    assert results[2].summary["grace"]["clock"]["since_last_run_counted_seconds"] == 120.0


def test_dry_runs_with_a_wrong_clock_in_between_move_nothing(tmp_path, start_emulator):
    """Dry runs (a plan, a daemon's preview) record no absence and no grace mark, whatever
    their clock says."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    real = datetime.now(UTC)
    clock = FakeClock(wall=real, boot_id="host")
    results = [run(config, clock)]
    for hours in (-5, 30):
        results.append(run(config, FakeClock(wall=real + timedelta(hours=hours)),
                           dry_run=True))
    clock.advance(600)
    results.append(run(config, clock))
    assert_none_deleted(emulator, DASHED, results)
    assert results[-1].summary["grace"]["clock"]["since_last_run_counted_seconds"] == 600.0


def test_grace_still_serves_on_one_host_after_its_clock_was_ahead_and_corrected(
        tmp_path, start_emulator):
    """No false stall: a clock 3 h ahead, put right, and the boot clock still counts the
    hours that pass on that boot, so a healthy daemon deletes what is gone."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    real = datetime.now(UTC)
    set_mtime(config.jobs["products"].source.path, real - timedelta(minutes=5))
    results = [run(config, FakeClock(start=1000, wall=real + timedelta(hours=3),
                                     boot_id="host"))]
    fixed = FakeClock(start=1600, wall=real + timedelta(minutes=10), boot_id="host")
    results.append(run(config, fixed))
    fixed.advance(3601)
    set_mtime(config.jobs["products"].source.path, real + timedelta(minutes=60))
    results.append(run(config, fixed))
    assert results[-1].exit_code == EXIT_OK, results[-1].summary
    assert results[-1].summary["deleted"] == 100 and not set(DASHED) & emulator.ids()


def test_a_journal_from_before_the_grace_clock_keeps_its_absences(tmp_path, start_emulator):
    """A journal of schema 4 (absences on the wall clock, no grace clock) migrated to 5:
    grace's first reading is the wall clock, so the absences keep their age: ten minutes
    later nothing is due, an hour later the 100 ids are."""
    import sqlite3

    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    clock = FakeClock(wall=datetime.now(UTC), boot_id="host")
    assert run(config, clock).summary["pending_grace"] == 100
    db = sqlite3.connect(config.state_dir / "journal.sqlite3")
    db.executescript("DROP TABLE grace_clock; DROP TABLE claims; DROP TABLE spent_plans;"
                     " PRAGMA user_version=4;")
    db.close()
    clock.advance(600)
    early = run(config, clock)
    assert early.exit_code == EXIT_OK and early.summary["pending_grace"] == 100
    assert early.summary["grace"]["clock"]["since_last_run_counted_seconds"] is None
    clock.advance(3000)
    due = run(config, clock)
    assert due.summary["deleted"] == 100, due.summary.get("refused")


# -- 2. Claims across configs sharing one state ----------------------------------------------


def two_teams(tmp_path, emulator):
    """team-a (export: the sku-* ids) and team-b (export: the ab-* ids), each in its own
    folder as ``reconciler.toml``, sharing one absolute state_dir."""
    state = tmp_path / "shared-state"
    configs = {}
    for name, ids in (("team-a", sorted(PLAIN)), ("team-b", sorted(DASHED))):
        configs[name] = configure(tmp_path / name, emulator, ids, name=name, state=state)
    return configs


def test_two_configs_both_named_reconciler_toml_and_run_from_their_folders_are_refused(
        tmp_path, start_emulator, monkeypatch):
    """Found in round 4 (fixed): each team runs ``reconciler run`` in its own folder with
    the default ``./reconciler.toml``. Both claims named the config ``reconciler.toml``,
    so each took the other's claim for its own config's and ignored it: the two jobs
    deleted each other's ids."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    two_teams(tmp_path, emulator)
    clock = FakeClock(wall=datetime.now(UTC))
    results = []
    for _ in range(3):
        for name in ("team-a", "team-b"):
            monkeypatch.chdir(tmp_path / name)
            config = load_config(Path("reconciler.toml"))
            results.append(run(config, clock, name))
        clock.advance(3601)
    assert_none_deleted(emulator, {**PLAIN, **DASHED}, results)
    assert [r.exit_code for r in results] == [EXIT_OK] + [EXIT_CONFIG] * 5
    assert results[1].summary["error"].startswith(
        "reconciler.toml: job 'team-b' and job 'team-a' of "
        f"{tmp_path / 'team-a' / 'reconciler.toml'} (export ")


def test_two_configs_at_one_path_on_two_hosts_sharing_state_are_refused(
        tmp_path, start_emulator, monkeypatch):
    import socket

    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    state = tmp_path / "shared-state"
    exports = {"team-a": sorted(PLAIN), "team-b": sorted(DASHED)}
    clock = FakeClock(wall=datetime.now(UTC))
    results = []
    for _ in range(3):
        for team, ids in exports.items():
            # This host's /app/reconciler.toml is its team's (the path is the same on both).
            monkeypatch.setattr(socket, "gethostname", lambda team=team: f"host-{team}")
            config = configure(tmp_path / "app", emulator, ids, name=team, state=state)
            deployed = (clock.utcnow() - timedelta(days=1)).timestamp()  # each host's file
            os.utime(config.path, (deployed, deployed))  # was written once, at deploy
            results.append(run(config, clock, team))
        clock.advance(3601)
    assert_none_deleted(emulator, {**PLAIN, **DASHED}, results)
    assert [r.exit_code for r in results] == [EXIT_OK] + [EXIT_CONFIG] * 5


@pytest.mark.parametrize("via", ["symlink", "relative"])
def test_a_renamed_job_of_one_config_reached_by_two_paths_is_not_refused(
        tmp_path, start_emulator, monkeypatch, via):
    """Found in round 4 (fixed): the daemon runs the config through a symlink (or by a
    relative path), a person renames the job and runs it by the real path. The old name's
    claim looked like another config's, and the renamed job was refused for 7 days."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path / "etc", emulator, sorted({**PLAIN, **DASHED}))
    if via == "symlink":
        (tmp_path / "link").symlink_to(tmp_path / "etc")
        other = tmp_path / "link" / "reconciler.toml"
    else:
        monkeypatch.chdir(tmp_path)
        other = Path("etc/reconciler.toml")
    clock = FakeClock(wall=datetime.now(UTC))
    first = run(load_config(other), clock)
    assert first.exit_code == EXIT_OK, first.summary
    config.path.write_text(config.path.read_text().replace("jobs.products", "jobs.catalog"))
    clock.advance(3601)
    renamed = run(load_config(config.path.resolve()), clock, "catalog")
    assert renamed.exit_code == EXIT_OK, renamed.summary.get("error")


def test_a_plan_from_a_scratch_config_leaves_no_claim(tmp_path, start_emulator):
    """``plan`` from a scratch config on the production catalog is refused while the
    production claim stands, and leaves nothing that would refuse production."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    state = tmp_path / "shared-state"
    prod = configure(tmp_path / "prod", emulator, sorted({**PLAIN, **DASHED}), state=state)
    scratch = configure(tmp_path / "scratch", emulator, sorted(PLAIN), name="try",
                        state=state)
    clock = FakeClock(wall=datetime.now(UTC))
    assert run(prod, clock).exit_code == EXIT_OK
    planned = run(scratch, clock, "try", dry_run=True)
    assert planned.exit_code == EXIT_CONFIG
    assert planned.summary["error"].startswith(f"{scratch.path}: job 'try' and job 'products'")
    clock.advance(3601)
    assert run(prod, clock).exit_code == EXIT_OK


def test_a_claim_lapses_after_seven_days_and_not_before(tmp_path, start_emulator):
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    configs = two_teams(tmp_path, emulator)
    clock = FakeClock(wall=datetime.now(UTC))
    assert run(configs["team-a"], clock, "team-a").exit_code == EXIT_OK
    clock.advance(7 * 86400 - 60)
    assert run(configs["team-b"], clock, "team-b").exit_code == EXIT_CONFIG
    clock.advance(120)
    # team-a's claim lapsed, but team-b's refused run left its own claim: team-a is the
    # one refused now, and nothing of either is deleted.
    assert run(configs["team-a"], clock, "team-a").exit_code == EXIT_CONFIG
    assert emulator.ids() == set(PLAIN) | set(DASHED)


def test_a_purge_from_another_config_sharing_the_state_is_refused(tmp_path, start_emulator):
    """Found in round 4 (fixed): team-b's config, sharing team-a's state, types ``purge
    team-b --confirm CATALOG`` while team-a's claim on the catalog stands. Within one
    config two jobs on one catalog cannot purge it; across configs purge looked at no
    claim and deleted all 2,000 ids, team-a's included. Now refused with one line (exit 2,
    as ``run`` is), before any backup or delete."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    configs = two_teams(tmp_path, emulator)
    a, b = configs["team-a"], configs["team-b"]
    assert run(a, FakeClock(wall=datetime.now(UTC)), "team-a").exit_code == EXIT_OK
    purged = run_reconciler("--config", b.path, "purge", "team-b", "--confirm",
                            b.jobs["team-b"].target.catalog_id)
    assert purged.returncode == EXIT_CONFIG, purged.stderr
    said = purged.stderr.strip().splitlines()[-1]
    assert said.startswith(f"reconciler: purge refused: {b.path}: job 'team-b' and job 'team-a' of "
                           f"{a.path} (export {a.jobs['team-a'].source.path}, last run ")
    assert "nothing was deleted" in said
    assert emulator.ids() == set(PLAIN) | set(DASHED)


def test_the_same_job_name_in_two_configs_with_other_exports_is_refused(
        tmp_path, start_emulator):
    """Two configs, one job name ``products``, two exports, one catalog and one state: they
    would share grace records too. The second is refused, and from then on both."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    state = tmp_path / "shared-state"
    one = configure(tmp_path / "one", emulator, sorted(PLAIN), state=state, export="a.csv")
    two = configure(tmp_path / "two", emulator, sorted(DASHED), state=state, export="b.csv")
    clock = FakeClock(wall=datetime.now(UTC))
    results = []
    for _ in range(3):
        results += [run(one, clock), run(two, clock)]
        clock.advance(3601)
    assert_none_deleted(emulator, {**PLAIN, **DASHED}, results)
    assert [r.exit_code for r in results] == [EXIT_OK] + [EXIT_CONFIG] * 5
    assert results[1].summary["error"].startswith(
        f"{two.path}: job 'products' and job 'products' of {one.path} (export "
        f"{one.jobs['products'].source.path}, last run ")


def test_scopes_that_overlap_in_part_across_configs_are_refused(tmp_path, start_emulator):
    """``sku-`` and ``sku-00*`` share ids: not provably disjoint, both refused."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    state = tmp_path / "shared-state"
    wide = configure(tmp_path / "wide", emulator, sorted(PLAIN)[100:], name="wide",
                     state=state, scope=["sku-", "ab-"])
    narrow = configure(tmp_path / "narrow", emulator, sorted(PLAIN)[:50], name="narrow",
                       state=state, scope=["sku-00*"])
    clock = FakeClock(wall=datetime.now(UTC))
    results = []
    for _ in range(3):
        results += [run(wide, clock, "wide"), run(narrow, clock, "narrow")]
        clock.advance(3601)
    assert_none_deleted(emulator, {**PLAIN, **DASHED}, results)
    assert [r.exit_code for r in results] == [EXIT_OK] + [EXIT_CONFIG] * 5
    assert results[1].summary["error"].endswith(
        "delete from the same catalog and share this state: their scopes are not provably "
        "disjoint (an id may belong to one job only); nothing was deleted. A job that no "
        "longer runs stops counting 7 days after its last run ("
        + results[1].summary["error"][-21:])


# -- 3. Single-use saved plans ---------------------------------------------------------------


def test_a_saved_plan_on_postgresql_state_is_applied_once_from_any_replica(
        tmp_path, start_emulator, postgres_dsn):
    """Two replicas (two folders, one PostgreSQL state): a plan saved on one is applied on
    the other, once; the first replica's apply of a copy is refused with one line."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    first = configure(tmp_path / "replica-1", emulator, sorted(PLAIN), state=postgres_dsn)
    copy = tmp_path / "replica-2" / "reconciler.toml"  # the same config on another host
    copy.parent.mkdir()
    copy.write_text(first.path.read_text())
    replicas = [first, load_config(copy)]
    assert replicas[1].jobs["products"].source.path == first.jobs["products"].source.path
    real = datetime.now(UTC)
    set_mtime(first.jobs["products"].source.path, real - timedelta(hours=2))
    clock = FakeClock(wall=real - timedelta(hours=2))
    assert run(replicas[0], clock).exit_code == EXIT_OK
    clock.advance(3601)
    plan_file = tmp_path / "plan.json"
    assert run(replicas[0], clock, dry_run=True, plan_out=plan_file).summary["to_delete"] == 100
    clock.advance(60)
    applied = run(replicas[1], clock,
                  apply=saved_plan.load(plan_file, plan_key(replicas[1])))
    assert applied.exit_code == EXIT_OK, applied.summary
    assert not set(DASHED) & emulator.ids()
    again = run(replicas[0], clock, apply=saved_plan.load(plan_file, plan_key(replicas[0])))
    assert again.exit_code == EXIT_REFUSED
    assert again.summary["refused"] == (
        f"the plan made by run {applied.summary['applied_plan']} was already applied by run "
        f"{applied.run_id} (a saved plan is applied once): nothing was deleted; make a new "
        "plan")


def test_two_applies_of_one_plan_racing_delete_once(tmp_path, start_emulator):
    """Two real processes apply the same saved plan at once: one deletes, the other says
    the plan was already applied (or that the job is running), with one line each."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    real = datetime.now(UTC)
    set_mtime(config.jobs["products"].source.path, real - timedelta(hours=2))
    clock = FakeClock(wall=real - timedelta(hours=2))
    run(config, clock)
    clock.advance(3601)
    plan_file = tmp_path / "plan.json"
    planned = run(config, clock, dry_run=True, plan_out=plan_file)
    assert planned.exit_code == EXIT_OK and planned.summary["to_delete"] == 100
    copy = tmp_path / "copy.json"
    copy.write_bytes(plan_file.read_bytes())
    procs = [Started("--config", config.path, "apply", path) for path in (plan_file, copy)]
    outcomes = sorted((p.wait(120), *p.communicate(1)) for p in procs)
    codes = [code for code, _, _ in outcomes]
    assert codes[0] == EXIT_OK and codes[1] != EXIT_OK, outcomes
    assert not set(DASHED) & emulator.ids()
    said = outcomes[1][2].strip().splitlines()[-1]  # after the JSON log lines
    assert said.endswith("(a saved plan is applied once): nothing was deleted; make a new "
                         "plan") or said.startswith(
        "products: job 'products' is already being run by process "), said


def test_a_resume_skips_ids_back_in_the_source_under_another_spelling(
        tmp_path, start_emulator):
    """Found in round 4 (fixed): a run stopped before it sent its 100 deletes; by the
    resume the export has the ids back, spelled in upper case (``AB-000`` for ``ab-000``).
    ``apply`` skips such ids as ``near_match``; the resume only skipped exact matches and
    deleted all 100."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    clock = FakeClock(wall=datetime.now(UTC))
    stopped = stopped_before_sending(config, clock)
    write_lines(config.jobs["products"].source.path,
                ["item_id", *sorted(PLAIN), *(i.upper() for i in sorted(DASHED))])
    clock.advance(600)
    resumed = run(config, clock)
    assert resumed.summary["resumed_from"] == stopped.run_id
    assert_none_deleted(emulator, DASHED, [resumed])
    assert resumed.summary["skipped"] == {"near_match": 100}


# -- 4. The daily cap per catalog --------------------------------------------------------------


def test_a_small_scope_is_not_refused_by_the_daily_deletes_of_a_large_one(
        tmp_path, start_emulator):
    """Found in round 4 (fixed): two jobs of one config share a catalog with disjoint
    scopes: ``skus`` (1,900 ids) and ``abs`` (100). ``skus`` deletes 150 of its ids (7.9%:
    under every cap of its own); ``abs`` then has 5 of its 100 to delete (5%). The daily
    total counted every job's deletes on the catalog (150) against ``abs``'s budget of 20%
    of its own scope (20): refused ("150 deleted in the last 24 h plus 5 now; the daily
    budget is 20"), and refused again every day ``skus`` deleted 16 or more."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    skus = sorted(PLAIN)[150:]
    abs_ = sorted(DASHED)[5:]
    config = configure(tmp_path, emulator, skus, name="skus", scope=["sku-"])
    extra = configure(tmp_path / "other", emulator, abs_, name="abs", scope=["ab-"])
    config.path.write_text(config.path.read_text() + extra.path.read_text().split(
        'format = "json"\n', 1)[1])
    config = load_config(config.path)
    clock = FakeClock(wall=datetime.now(UTC))
    for _ in range(2):
        first = run(config, clock, "skus")
        second = run(config, clock, "abs")
        clock.advance(3601)
    assert first.summary["deleted"] == 150, first.summary.get("refused")
    assert second.exit_code == EXIT_OK, second.summary.get("refused")
    assert emulator.ids() == set(skus) | set(abs_)


# -- 5. source_not_older ---------------------------------------------------------------------


def test_an_export_whose_mtime_moves_back_within_a_second_is_not_refused(
        tmp_path, start_emulator):
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted({**PLAIN, **DASHED}))
    source = config.jobs["products"].source.path
    real = datetime.now(UTC)
    clock = FakeClock(wall=real)
    set_mtime(source, real - timedelta(minutes=10))
    assert run(config, clock).exit_code == EXIT_OK
    clock.advance(3601)
    set_mtime(source, real - timedelta(minutes=10, seconds=1.5))  # a coarser filesystem
    assert run(config, clock).exit_code == EXIT_OK
    clock.advance(3601)
    set_mtime(source, real - timedelta(hours=1, minutes=10))  # touch -d "1 hour ago"
    refused = run(config, clock)
    assert refused.exit_code == EXIT_REFUSED
    assert refused.summary["refused"] == (
        "source_not_older: the source file's mtime is 1.0 h older than the export the last "
        "successful run read (an older export copied back?)")


def test_a_refused_newer_export_does_not_become_the_baseline(tmp_path, start_emulator):
    """A newer export refused by another gate (shrunk by half) is no baseline: the good
    export put back after it (older than the refused one, newer than the last good one)
    runs."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    ids = sorted({**PLAIN, **DASHED})
    config = configure(tmp_path, emulator, ids)
    source = config.jobs["products"].source.path
    real = datetime.now(UTC)
    clock = FakeClock(wall=real)
    set_mtime(source, real - timedelta(minutes=30))
    assert run(config, clock).exit_code == EXIT_OK
    write_lines(source, ["item_id", *ids[:1000]])
    set_mtime(source, real + timedelta(minutes=50))
    clock.advance(3600)
    shrunk = run(config, clock)
    assert shrunk.exit_code == EXIT_REFUSED and shrunk.summary["refused"].startswith(
        "max_shrink: ")
    write_lines(source, ["item_id", *ids])
    set_mtime(source, real + timedelta(minutes=40))
    clock.advance(600)
    back = run(config, clock)
    assert back.exit_code == EXIT_OK, back.summary.get("refused")


def test_allow_older_source_false_refuses_a_copy_back_every_run_until_a_new_export(
        tmp_path, start_emulator):
    """Yesterday's export copied back with ``cp -p`` (fresh enough for max_age): refused on
    every run, so its missing ids are never deleted; the next real export runs again."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted({**PLAIN, **DASHED}))
    source = config.jobs["products"].source.path
    real = datetime.now(UTC)
    clock = FakeClock(wall=real)
    set_mtime(source, real - timedelta(minutes=5))
    results = [run(config, clock)]
    write_lines(source, ["item_id", *sorted(PLAIN)])  # yesterday's: no ab-* yet
    set_mtime(source, real - timedelta(hours=20))
    for _ in range(3):
        clock.advance(3601)
        results.append(run(config, clock))
    assert_none_deleted(emulator, DASHED, results)
    assert all(r.summary["refused"].startswith("source_not_older: ") for r in results[1:])


# -- 6. Look-alike letters -------------------------------------------------------------------


@pytest.mark.parametrize("script", ["cyrillic", "greek"])
def test_ids_typed_entirely_in_look_alike_letters_delete_nothing(
        tmp_path, start_emulator, script):
    """Found in round 4 (fixed): the export spells ``AB-001`` with a Cyrillic (or Greek) A
    and B (another keyboard layout). No Latin letter is left, so the id was not "mixed",
    was not folded, and the 100 catalog ids looked missing: deleted after grace."""
    emulator = start_emulator({**PLAIN, **UPPER}, bulk_requests_per_window=100)
    a, b = ("\u0410", "\u0412") if script == "cyrillic" else ("\u0391", "\u0392")
    ids = [i.replace("A", a).replace("B", b) if i in UPPER else i
           for i in sorted({**PLAIN, **UPPER})]
    config = configure(tmp_path, emulator, ids)
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, UPPER, results)
    assert all(r.summary["refused"].startswith("near_match: 100 ids") for r in results)


def test_a_catalog_in_cyrillic_and_greek_is_not_refused(tmp_path, start_emulator):
    """No false refusal: ids in Cyrillic and Greek (some made only of letters drawn like
    Latin ones, such as ``\u0421\u041e\u041a``) reconcile as any other; the 50 ids gone
    are deleted."""
    russian = {f"\u0442\u043e\u0432\u0430\u0440-{n:04d}": {} for n in range(1700)}
    greek = {f"\u03c0\u03c1\u03bf\u03ca\u03cc\u03bd-{n:03d}": {} for n in range(200)}
    caps = {f"\u0421\u041e\u041a-{n:03d}": {} for n in range(50)}  # all look-alikes
    mixed = {f"SKU-\u0441\u043e\u043a-{n:03d}": {} for n in range(50)}  # Latin and Cyrillic
    items = {**russian, **greek, **caps, **mixed}
    emulator = start_emulator(items, bulk_requests_per_window=100)
    gone = set(sorted(russian)[:20]) | set(sorted(caps)[:15]) | set(sorted(mixed)[:15])
    config = configure(tmp_path, emulator, sorted(set(items) - gone))
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)), times=2)
    assert [r.exit_code for r in results] == [EXIT_OK, EXIT_OK], results[-1].summary
    assert results[-1].summary["deleted"] == 50
    assert emulator.ids() == set(items) - gone
