"""Hostile QA, round 7: the STATE and CRASHES, with the default safety settings.

A journal that is not one, a backup damaged or gone before ``restore`` or before the resume
of a crashed run, ``kill -9`` during ``apply`` and during a resume, the plan-signing key
gone between ``plan --out`` and ``apply``, the wall clock set back a day under the daily cap.
Each runs the real ``reconciler`` where the user would, and checks that nothing is deleted
that should not be, that the user sees one line with the contract's exit code, and that no
id is lost from the journal's account.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.core.clock import FakeClock
from reconciler.core.errors import EXIT_CONFIG, EXIT_OK, EXIT_REFUSED
from reconciler.store.journal import Journal
from tests.helpers import emulator_config, run_reconciler, start_reconciler
from tests.hostile import configure, run

pytestmark = pytest.mark.integration

ITEMS = [f"sku-{n:04d}" for n in range(300)]
STALE = set(ITEMS[::10])  # 30 ids to delete, in batches of 10
LIMITS = {"max_batch_ids": 10, "requests_per_window": 1000}


def setup(tmp_path, start_emulator):
    emulator = start_emulator(ITEMS, bulk_requests_per_window=1000)
    config = emulator_config(tmp_path, emulator, [i for i in ITEMS if i not in STALE],
                             limits=LIMITS)
    return emulator, config


def cli(config, *args):
    return run_reconciler("--config", config.path, *args)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def killed_while_held(emulator, config, after, *args):
    """A real process killed (SIGKILL) with its request number ``after`` held in flight;
    the held request then completes on the server, its answer lost."""
    emulator.hold("bulk", after)
    process = start_reconciler("--config", config.path, *args)
    assert emulator.held.wait(60), "the process never reached the held request"
    process.kill()
    process.wait(30)
    emulator.release()


def backup_file(config, run_id):
    return config.state_dir / "backups" / "products" / f"{run_id}.jsonl.gz"


def outcomes(config, run_id):
    result = cli(config, "outcomes", run_id)
    assert result.returncode == EXIT_OK, result.stderr
    return {row["item_id"]: (row["outcome"], row["detail"])
            for row in csv.DictReader(io.StringIO(result.stdout))}


# -- 1. A journal that is not one -------------------------------------------------------------


def _not_sqlite(path):
    path.write_text("this is not a database\n" * 100, encoding="utf-8")


def _truncated(path):
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])


def _newer_schema(path):
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()


BROKEN_JOURNALS = {
    "not_sqlite": (_not_sqlite, "file is not a database"),
    "truncated": (_truncated, "database disk image is malformed"),
    "newer_schema": (_newer_schema, "schema version 99 is newer than this program knows "
                                    "(5); upgrade catalog-reconciler"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_JOURNALS))
def test_a_broken_journal_is_one_line_and_deletes_nothing(tmp_path, start_emulator, case):
    emulator, config = setup(tmp_path, start_emulator)
    assert cli(config, "plan").returncode == EXIT_OK  # a journal with a run in it
    journal = config.state_dir / "journal.sqlite3"
    damage, why = BROKEN_JOURNALS[case]
    damage(journal)
    line = f"{journal}: cannot open the journal: {why}"
    result = cli(config, "run")
    assert result.returncode == EXIT_CONFIG
    assert last_line(result.stderr) == f"products: {line}"
    assert "Traceback" not in result.stderr
    history = cli(config, "history")
    assert (history.returncode, history.stderr.strip()) == (EXIT_CONFIG, f"reconciler: {line}")
    assert emulator.ids() == set(ITEMS) and not emulator.stats.deleted


# -- 2. A backup damaged or gone before restore -----------------------------------------------


def _lines(path):
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)


DAMAGED_BACKUPS = {
    # A copy cut short by a full disk: the gzip stream ends early.
    "cut_short": (lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]),
                  "EOFError: Compressed file ended before the end-of-stream marker was "
                  "reached"),
    # Emptied (a log rotation or a clean-up script that truncates).
    "emptied": (lambda p: p.write_bytes(b""), "EOFError: the file is empty"),
    # Cut at a line boundary and compressed again: a whole-looking, smaller backup.
    "fewer_records": (lambda p: p.write_bytes(gzip.compress(b"".join(_lines(p)[:5]))),
                      "its run wrote 30"),
    "not_json": (lambda p: p.write_bytes(gzip.compress(b"".join(_lines(p)[:1]) + b"{oops\n")),
                 "JSONDecodeError: Expecting property name enclosed in double quotes: "
                 "line 1 column 2 (char 1)"),
    "not_records": (lambda p: p.write_bytes(gzip.compress(b"[1, 2]\n")),
                    "TypeError: list indices must be integers or slices, not str"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_BACKUPS))
def test_restore_of_a_damaged_backup_is_one_line_and_restores_nothing(
        tmp_path, start_emulator, case):
    emulator, config = setup(tmp_path, start_emulator)
    done = cli(config, "run")
    assert done.returncode == EXIT_OK
    run_id = done.stdout.split("/products/")[1].split()[0]
    path = backup_file(config, run_id)
    damage, why = DAMAGED_BACKUPS[case]
    damage(path)
    readable = {"cut_short": None, "emptied": 0, "fewer_records": 5, "not_json": 1,
                "not_records": 0}[case]
    result = cli(config, "restore", run_id)
    assert result.returncode == EXIT_CONFIG, result.stderr[-2000:]
    line = result.stderr.strip()
    assert "Traceback" not in line and len(line.splitlines()) == 1
    assert line.startswith(f"reconciler: {path}: the backup is damaged (")
    assert line.endswith(f"; {why}): nothing was restored")
    if readable is not None:
        assert f"({readable} readable records; " in line
    assert emulator.ids() == set(ITEMS) - STALE  # nothing restored, nothing else touched


def test_restore_of_a_whole_backup_still_restores_every_item(tmp_path, start_emulator):
    emulator, config = setup(tmp_path, start_emulator)
    done = cli(config, "run")
    run_id = done.stdout.split("/products/")[1].split()[0]
    result = cli(config, "restore", run_id)
    assert result.returncode == EXIT_OK, result.stderr[-2000:]
    assert f"restored 30 of 30 items of run {run_id}" in result.stdout
    assert emulator.ids() == set(ITEMS)


# -- 3. A crashed run's backup gone or damaged before its resume ------------------------------


LOST_BACKUPS = {
    "deleted": lambda config, path: path.unlink(),
    "emptied": lambda config, path: path.write_bytes(b""),
}


@pytest.mark.parametrize("case", sorted(LOST_BACKUPS))
def test_a_resume_does_not_delete_ids_whose_backup_is_gone(tmp_path, start_emulator, case):
    """No backup, no delete, also for a crashed run's plan: killed with its second batch in
    flight, its backup lost, the next run must not send the 10 ids still planned. Before
    the fix the resume deleted them with no backup to restore them from."""
    emulator, config = setup(tmp_path, start_emulator)
    killed_while_held(emulator, config, 1, "run")
    journal = Journal.in_state_dir(config.state_dir)
    crashed = journal.runs("products")[0].run_id
    planned = {i.item_id for i in journal.items(crashed, "planned")}
    journal.close()
    assert len(planned) == 10
    path = backup_file(config, crashed)
    LOST_BACKUPS[case](config, path)

    result = cli(config, "run")
    assert result.returncode == EXIT_OK, result.stderr[-2000:]
    problem = (f"the backup {path} is missing" if case != "emptied" else
               f"{path}: the backup is damaged (0 readable records; EOFError: the file is "
               "empty)")
    assert result.stdout.splitlines()[0] == (
        f"products: resumed {crashed}: 0 deleted, 0 not deleted; 20 skipped (no_backup): "
        f"{problem}; they were not deleted, and a fresh run backs them up again")
    assert planned.isdisjoint(emulator.stats.deleted)  # the held batch's 10 were sent before
    assert {i for i, (state, detail) in outcomes(config, crashed).items()
            if (state, detail) == ("skipped", "no_backup")} >= planned

    # The next run plans them afresh, backs them up and deletes them: nothing is lost.
    fresh = cli(config, "run")
    assert fresh.returncode == EXIT_OK, fresh.stderr[-2000:]
    assert "10 deleted, 0 not deleted" in fresh.stdout
    assert emulator.ids() == set(ITEMS) - STALE
    run_id = fresh.stdout.split("/products/")[1].split()[0]
    with gzip.open(backup_file(config, run_id), "rt") as lines:
        assert sum(1 for _ in lines) == 10


def test_a_plan_does_not_prune_the_backup_of_a_plan_waiting_to_be_resumed(
        tmp_path, start_emulator):
    """A crashed run's backup older than backup_retention (the job was down for a month):
    a dry ``plan`` before the next real run used to prune it, and the resume then deleted
    with no backup. Now the prune waits until the plan is finished."""
    emulator, config = setup(tmp_path, start_emulator)
    killed_while_held(emulator, config, 1, "run")
    journal = Journal.in_state_dir(config.state_dir)
    crashed = journal.runs("products")[0].run_id
    journal.close()
    path = backup_file(config, crashed)
    os.utime(path, (1, 1))
    assert cli(config, "plan").returncode == EXIT_OK
    assert path.exists()
    result = cli(config, "run")
    assert result.stdout.splitlines()[0] == (
        f"products: resumed {crashed}: 20 deleted, 0 not deleted")
    assert emulator.ids() == set(ITEMS) - STALE
    assert cli(config, "plan").returncode == EXIT_OK  # the plan is finished: pruned now
    assert not path.exists()


# -- 4. kill -9 during apply, and during a resume ---------------------------------------------


@pytest.mark.parametrize("after", [0, 2])
def test_sigkill_during_apply_then_run_accounts_for_every_id(tmp_path, start_emulator, after):
    """Killed after the plan was spent, with its first (0) or third (2) batch in flight:
    the next run finishes the applied plan, no id is deleted twice, the plan stays spent,
    and ``history``/``outcomes`` say what happened to each id."""
    emulator, config = setup(tmp_path, start_emulator)
    plan_file = tmp_path / "plan.json"
    assert cli(config, "plan", "products", "--out", plan_file).returncode == EXIT_OK
    killed_while_held(emulator, config, after, "apply", plan_file)

    finish = cli(config, "run")
    assert finish.returncode == EXIT_OK, finish.stderr[-2000:]
    journal = Journal.in_state_dir(config.state_dir)
    runs = journal.runs("products")
    journal.close()
    applied = runs[1]
    assert finish.stdout.splitlines()[0] == (
        f"products: resumed {applied.run_id}: {30 - 10 * after} deleted, 0 not deleted")
    assert sorted(emulator.stats.deleted) == sorted(STALE)  # each once, and only these
    assert (applied.status, runs[0].resumed_from) == ("resumed", applied.run_id)
    assert {s for s, _ in outcomes(config, applied.run_id).values()} == {"queued"}
    assert len(outcomes(config, applied.run_id)) == 30

    again = cli(config, "apply", plan_file)
    assert again.returncode == EXIT_REFUSED
    assert f"was already applied by run {applied.run_id}" in last_line(again.stderr)


def test_sigkill_during_a_resume_then_run_accounts_for_every_id(tmp_path, start_emulator):
    emulator, config = setup(tmp_path, start_emulator)
    killed_while_held(emulator, config, 1, "run")       # the run: batch 2 in flight
    killed_while_held(emulator, config, 0, "run")       # its resume: its first batch
    finish = cli(config, "run")
    assert finish.returncode == EXIT_OK, finish.stderr[-2000:]
    assert sorted(emulator.stats.deleted) == sorted(STALE)
    journal = Journal.in_state_dir(config.state_dir)
    newest, resume, first = journal.runs("products")
    assert (first.status, resume.status, newest.resumed_from) == (
        "resumed", "crashed", first.run_id)
    assert resume.resumed_from == first.run_id
    assert journal.state_counts(first.run_id) == {"queued": 30}
    journal.close()


# -- 5. The plan-signing key between plan --out and apply -------------------------------------


def test_a_signing_key_replaced_between_plan_and_apply_deletes_nothing(
        tmp_path, start_emulator):
    emulator, config = setup(tmp_path, start_emulator)
    plan_file = tmp_path / "plan.json"
    assert cli(config, "plan", "products", "--out", plan_file).returncode == EXIT_OK
    (config.state_dir / "plan.key").unlink()  # a fresh key is made on the next use
    result = cli(config, "apply", plan_file)
    assert result.returncode == EXIT_REFUSED
    assert result.stderr.strip() == (
        f"reconciler: {plan_file}: refused: the plan's signature does not match (the file "
        "was edited, or it was made with another state_dir); nothing was deleted: make a "
        "new one with 'reconciler plan JOB --out'")
    assert not emulator.stats.deleted


# -- 6. The wall clock set back a day under the daily cap -------------------------------------


def _daily_cap_of_40(tmp_path, start_emulator):
    """300 items, 25 missing from the export; default safety but for grace (one run, no
    period) and max_deletes_per_day = 40."""
    from reconciler.config import load_config

    items = {f"sku-{n:04d}": {"title": "t"} for n in range(300)}
    emulator = start_emulator(items, bulk_requests_per_window=100)
    first_gone = set(sorted(items)[:25])
    config = configure(tmp_path, emulator, sorted(set(items) - first_gone))
    text = config.path.read_text(encoding="utf-8").replace(
        "[jobs.products.safety]", "[jobs.products.safety]\ngrace_runs = 1\n"
        'grace_period = "off"\nmax_deletes_per_day = 40')
    config.path.write_text(text, encoding="utf-8")
    return items, emulator, first_gone, load_config(config.path)


def test_a_clock_set_back_a_day_does_not_reopen_the_daily_cap(tmp_path, start_emulator):
    """Default caps but for grace, and max_deletes_per_day = 40: 25 of 300 ids go at once;
    the clock is then set back a day and 25 more go missing: 50 in the same real day is
    over the cap, whatever the wall clock says."""
    items, emulator, first_gone, config = _daily_cap_of_40(tmp_path, start_emulator)
    real = datetime.now(UTC)
    source = config.jobs["products"].source.path
    stamp = (real - timedelta(hours=25)).timestamp()  # older than the set-back clock's now
    os.utime(source, (stamp, stamp))
    first = run(config, FakeClock(wall=real))
    assert (first.exit_code, first.summary.get("refused")) == (EXIT_OK, None)
    assert first.summary["deleted"] == 25

    second_gone = set(sorted(items)[25:50])
    source.write_text("item_id\n" + "".join(f"{i}\n" for i in sorted(
        set(items) - first_gone - second_gone)), encoding="utf-8")
    stamp = (real - timedelta(hours=24)).timestamp()
    os.utime(source, (stamp, stamp))
    set_back = run(config, FakeClock(wall=real - timedelta(days=1) + timedelta(minutes=5)))
    assert set_back.exit_code == EXIT_REFUSED
    assert set_back.summary["refused"].startswith(
        "max_deletes_per_day: 25 deleted in the last 24 h plus 25 now; the daily budget is 40")
    assert second_gone <= emulator.ids()


# -- 7. The journal or state_dir removed while a run deletes ----------------------------------


def _report_of(stdout):
    import json
    from pathlib import Path

    folder = Path(stdout.split("products: report ")[1].split()[0])
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    with (folder / "outcomes.csv").open(encoding="utf-8") as rows:
        states = [row["outcome"] for row in csv.DictReader(rows)]
    return summary, {s: states.count(s) for s in set(states)}


def _removed_during_the_run(emulator, config, remove):
    emulator.hold("bulk", 1)  # batch 1 answered, batch 2 held in flight
    process = start_reconciler("--config", config.path, "run")
    assert emulator.held.wait(60), "the run never reached the held request"
    remove()
    emulator.release()
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_a_journal_deleted_under_a_running_run_stops_it_and_the_report_says_what_went(
        tmp_path, start_emulator):
    """SQLite keeps writing to a deleted file without an error: before the fix the run
    finished 'exit 0, 30 deleted' into a journal nobody would read again (no history, no
    daily total, no plan to resume). Now it stops at its next journal write (nothing more
    is sent) and its report counts what the server was asked."""
    emulator, config = setup(tmp_path, start_emulator)
    journal = config.state_dir / "journal.sqlite3"
    assert cli(config, "plan").returncode == EXIT_OK

    def remove():
        for path in config.state_dir.glob("journal.sqlite3*"):
            path.unlink()

    code, out, err = _removed_during_the_run(emulator, config, remove)
    assert code == 1
    assert last_line(err) == (
        "products: stopped: the journal was removed or replaced while this run used it; "
        f"nothing more was sent, and this run's report lists what it deleted ({journal})")
    assert "Traceback" not in err
    assert len(emulator.stats.deleted) == 20  # the held batch reached the server
    summary, states = _report_of(out)
    assert (summary["deleted"], summary["not_sent"], summary["exit_code"]) == (20, 10, 1)
    assert states == {"queued": 20, "not_sent": 10}


def test_a_state_dir_removed_under_a_running_run_reports_the_lost_answer_as_unknown(
        tmp_path, start_emulator):
    import shutil

    emulator, config = setup(tmp_path, start_emulator)
    code, out, err = _removed_during_the_run(
        emulator, config, lambda: shutil.rmtree(config.state_dir))
    assert code == 1
    assert last_line(err).startswith("products: stopped: No such file or directory (")
    assert "Traceback" not in err
    summary, states = _report_of(out)
    # Batch 1 answered; batch 2 reached the server but its answer could not be recorded
    # (unknown, not "not sent"); batch 3 never went.
    assert (summary["deleted"], summary["unknown"], summary["not_sent"]) == (10, 10, 10)
    assert states == {"queued": 10, "unknown": 10, "not_sent": 10}
    assert len(emulator.stats.deleted) == 20


def test_a_full_disk_under_the_journal_mid_run_is_one_line_and_counts_what_went(
        tmp_path, start_emulator, monkeypatch):
    """SQLite's 'database or disk is full' while the answer of the second batch is
    written: the run stops (exit 1, one line), nothing more is sent, the report counts the
    second batch as deleted (the server answered), and the next run resumes the plan."""
    from reconciler.core.errors import EXIT_UNEXPECTED
    from reconciler.runs.runner import RunRequest, run_job

    emulator, config = setup(tmp_path, start_emulator)
    real = Journal.record_outcomes
    calls = []

    def full_disk(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Journal, "record_outcomes", full_disk)
    result = run_job(config, config.jobs["products"], RunRequest(dry_run=False))
    assert result.exit_code == EXIT_UNEXPECTED
    assert result.message == "stopped: OperationalError: database or disk is full"
    assert (result.summary["deleted"], result.summary["not_sent"]) == (20, 10)
    assert len(emulator.stats.deleted) == 20
    monkeypatch.setattr(Journal, "record_outcomes", real)

    finish = cli(config, "run")
    assert finish.returncode == EXIT_OK, finish.stderr[-2000:]
    # Stopped while sending, the run's plan is resumed (before, a 'failed' run's plan was
    # left half done in the journal, its sent ids never read back).
    assert finish.stdout.splitlines()[0] == (
        f"products: resumed {result.run_id}: 20 deleted, 0 not deleted")
    assert sorted(emulator.stats.deleted) == sorted(STALE)
    journal = Journal.in_state_dir(config.state_dir)
    assert journal.state_counts(result.run_id) == {"queued": 30}
    assert journal.runs("products")[1].status == "resumed"
    journal.close()


def test_a_clock_days_behind_then_corrected_does_not_reopen_the_daily_cap(
        tmp_path, start_emulator):
    """One host, one boot: its clock ran two days behind when 25 ids went, NTP then put it
    right, and 5 minutes later 25 more are due. Before the fix the first 25 were stamped
    'two days ago' and the daily cap (40) let the second 25 go: 50 in five minutes."""
    items, emulator, first_gone, config = _daily_cap_of_40(tmp_path, start_emulator)
    real = datetime.now(UTC)
    source = config.jobs["products"].source.path
    stamp = (real - timedelta(days=2, hours=1)).timestamp()
    os.utime(source, (stamp, stamp))
    behind = run(config, FakeClock(start=1000, wall=real - timedelta(days=2), boot_id="boot"))
    assert (behind.exit_code, behind.summary["deleted"]) == (EXIT_OK, 25)

    second_gone = set(sorted(items)[25:50])
    source.write_text("item_id\n" + "".join(f"{i}\n" for i in sorted(
        set(items) - first_gone - second_gone)), encoding="utf-8")
    corrected = run(config, FakeClock(start=1300, wall=real, boot_id="boot"))
    assert corrected.exit_code == EXIT_REFUSED
    assert corrected.summary["refused"].startswith(
        "max_deletes_per_day: 25 deleted in the last 24 h plus 25 now; the daily budget is 40")
    assert second_gone <= emulator.ids()

    # A day later on the boot clock too, the budget is back.
    later = run(config, FakeClock(start=1300 + 86400, wall=real + timedelta(days=1),
                                  boot_id="boot"))
    assert (later.exit_code, later.summary["deleted"]) == (EXIT_OK, 25)
