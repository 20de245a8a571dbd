from __future__ import annotations

import sqlite3

import pytest

from reconciler.core.errors import ConfigError
from reconciler.store.journal import Journal
from reconciler.store.locks import JobBusy, JobLock


@pytest.fixture
def journal(tmp_path):
    j = Journal.in_state_dir(tmp_path)
    yield j
    j.close()


def test_schema_is_versioned_and_wal(journal, tmp_path):
    assert journal.schema_version == 5
    mode = sqlite3.connect(tmp_path / "journal.sqlite3").execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)
    Journal.in_state_dir(tmp_path).close()  # migrating twice is a no-op


def test_a_newer_schema_is_refused(tmp_path):
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(ConfigError, match="schema version 99 is newer than this program knows"):
        Journal.in_state_dir(tmp_path)


def test_item_lifecycle_and_resendable(journal):
    journal.start_run("r1", "job", False, "t0", target="T")
    journal.store_plan("r1", ["a", "b", "c", "d"], [("x/y", "unaddressable")])
    journal.mark_sent("r1", "r1", 1, ["a", "b"], 10.0)
    assert journal.state_counts("r1") == {"sent": 2, "planned": 2, "skipped": 1}
    journal.record_outcomes("r1", "r1", 1, [("a", "queued", ""), ("b", "unknown", "short")], 11.0)
    assert [i.item_id for i in journal.resendable("r1")] == ["b", "c", "d"]
    assert journal.interrupted_run("job", "T").run_id == "r1"
    assert journal.queued_before("job", "r2", "T") == [("r1", "a", 11.0, 1)]


def test_finished_runs_are_not_resumed_and_dry_runs_never(journal):
    journal.start_run("dry", "job", True, "t0", target="T")
    journal.store_plan("dry", ["a"], [])
    journal.finish_run("dry", "dry", 0, "t1", {})
    assert journal.interrupted_run("job", "T") is None
    journal.start_run("real", "job", False, "t2", target="T")
    journal.store_plan("real", ["a"], [])
    journal.record_outcomes("real", "real", None, [("a", "queued", "")], 1.0)
    journal.finish_run("real", "finished", 0, "t3", {"deleted": 1})
    assert journal.interrupted_run("job", "T") is None
    assert [r.run_id for r in journal.runs("job")] == ["real", "dry"]
    assert journal.run("real").summary == {"deleted": 1}


def test_a_failed_transaction_leaves_nothing(journal):
    journal.start_run("r1", "job", False, "t0", target="T")
    with pytest.raises(sqlite3.IntegrityError):
        journal.store_plan("r1", ["a", "a"], [])  # the same id twice violates the key
    assert journal.state_counts("r1") == {}


def test_job_lock_is_exclusive_and_released(tmp_path):
    with JobLock(tmp_path, "job"):
        with pytest.raises(JobBusy) as caught:
            JobLock(tmp_path, "job").acquire()
        assert str(caught.value).startswith("job 'job' is already being run by process ")
        JobLock(tmp_path, "other").acquire().release()
    JobLock(tmp_path, "job").acquire().release()


def test_contiguous_batches_are_marked_by_range_and_others_one_by_one(journal):
    journal.start_run("r1", "job", False, "t0", target="T")
    journal.store_plan("r1", ["a", "b", "c", "d", "e"], [])
    journal.mark_sent("r1", "r1", 1, ["a", "b"], 1.0)  # contiguous: the range path
    journal.mark_sent("r1", "r1", 2, ["c", "e"], 1.0)  # "d" lies between: one by one
    states = {i.item_id: i.state for i in journal.items("r1")}
    assert states == {"a": "sent", "b": "sent", "c": "sent", "d": "planned", "e": "sent"}
    assert journal.next_batch_seq("r1") == 3


def test_mixed_outcomes_are_each_recorded(journal):
    journal.start_run("r1", "job", False, "t0", target="T")
    journal.store_plan("r1", [f"i{n}" for n in range(6)], [])
    ids = [f"i{n}" for n in range(6)]
    journal.mark_sent("r1", "r1", 1, ids, 1.0)
    journal.record_outcomes("r1", "r1", 1, [
        ("i0", "queued", ""), ("i1", "failed", "no"), ("i2", "queued", ""),
        ("i3", "queued", ""), ("i4", "queued", ""), ("i5", "unknown", "lost"),
    ], 2.0)
    rows = {i.item_id: (i.state, i.detail) for i in journal.items("r1")}
    assert rows == {"i0": ("queued", ""), "i1": ("failed", "no"), "i2": ("queued", ""),
                    "i3": ("queued", ""), "i4": ("queued", ""), "i5": ("unknown", "lost")}
    # A later run's batch of the same plan never touches rows of batch 1.
    journal.start_run("r2", "job", False, "t1", resumed_from="r1", target="T")
    journal.mark_sent("r2", "r1", 2, ["i5"], 3.0)
    journal.record_outcomes("r2", "r1", 2, [("i5", "queued", "")], 4.0)
    assert journal.state_counts("r1") == {"queued": 5, "failed": 1}


def test_unicode_ids_keep_their_order_in_range_updates(journal):
    ids = sorted(["a", "z", "é", "☃", "😀", "A", "0"])
    journal.start_run("r1", "job", False, "t0", target="T")
    journal.store_plan("r1", ids, [])
    journal.mark_sent("r1", "r1", 1, ids[2:5], 1.0)
    assert [i.item_id for i in journal.items("r1", "sent")] == ids[2:5]


def test_migrating_a_version_1_journal_keeps_its_runs(tmp_path):
    from reconciler.store import journal as journal_module

    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    db.executescript(journal_module._MIGRATIONS[0])
    db.execute("PRAGMA user_version=1")
    db.execute("INSERT INTO runs (run_id, job, dry_run, status, started_at) VALUES"
               " ('old', 'job', 0, 'finished', 't0')")
    db.commit()
    db.close()
    upgraded = Journal.in_state_dir(tmp_path)
    assert upgraded.schema_version == 5
    assert [r.run_id for r in upgraded.runs("job")] == ["old"]
    upgraded.replace_absences("job", "T", {"a": (1, 5.0)})
    assert upgraded.absences("job", "T") == {"a": (1, 5.0)}
    upgraded.close()


def test_shrink_baseline_and_daily_count(journal):
    journal.start_run("r1", "job", False, "t0", target="T")
    journal.store_plan("r1", ["a", "b"], [])
    journal.record_outcomes("r1", "r1", None, [("a", "queued", ""), ("b", "queued", "")], 50.0)
    journal.finish_run("r1", "finished", 0, "t1", {"source_ids": 1200})
    journal.start_run("r2", "job", True, "t2", target="T")
    journal.finish_run("r2", "dry", 0, "t3", {"source_ids": 5})
    assert journal.last_source_ids("job", "T") == 1200
    assert journal.queued_since(40.0, "T") == 2
    assert journal.queued_since(60.0, "T") == 0
    assert journal.last_source_ids("other", "T") is None


def test_state_from_before_fingerprints_never_counts_for_a_target(tmp_path):
    """Version 3 rows carry no fingerprint: after the upgrade no plan is resumed, no grace,
    ledger, baseline or daily total is found for any target (the job starts fresh)."""
    from reconciler.store import journal as journal_module

    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    for script in journal_module._MIGRATIONS[:3]:
        db.executescript(script)
    db.execute("PRAGMA user_version=3")
    db.execute("INSERT INTO runs (run_id, job, dry_run, status, started_at, summary) VALUES"
               " ('old', 'job', 0, 'running', 't0', '{\"source_ids\": 100}')")
    db.execute("INSERT INTO items (plan_run, item_id, state, queued_at) VALUES"
               " ('old', 'a', 'planned', NULL), ('old', 'b', 'queued', 1e12)")
    db.execute("INSERT INTO absences VALUES ('job', 'a', 5, 1.0)")
    db.execute("INSERT INTO ledger VALUES ('job', 'a')")
    db.commit()
    db.close()
    journal = Journal.in_state_dir(tmp_path)
    assert journal.interrupted_run("job", "T") is None
    assert journal.absences("job", "T") == {} and journal.ledger("job", "T") == []
    assert journal.queued_since(0.0, "T") == 0
    assert journal.queued_before("job", "new", "T") == []
    assert journal.last_target("job", "new") == (True, None)
    journal.close()


def test_each_target_keeps_its_own_state(journal):
    journal.start_run("r1", "job", False, "t0", target="A")
    journal.store_plan("r1", ["a"], [])
    journal.replace_absences("job", "A", {"x": (1, 1.0)})
    journal.replace_absences("job", "B", {"y": (1, 2.0)})
    journal.update_ledger("job", "A", ["l1"], [])
    assert journal.interrupted_run("job", "A").run_id == "r1"
    assert journal.interrupted_run("job", "B") is None
    assert journal.absences("job", "A") == {"x": (1, 1.0)}
    assert journal.absences("job", "B") == {"y": (1, 2.0)}
    assert journal.ledger("job", "B") == [] and journal.ledger("job", "A") == ["l1"]
    assert journal.last_target("job", "r2") == (True, "A")
    assert journal.last_target("other", "r2") == (False, None)

def test_rows_of_dead_processes_become_crashed_and_stay_resumable(tmp_path):
    from reconciler.store.journal import CRASHED, Journal

    journal = Journal.in_state_dir(tmp_path)
    journal.start_run("r1", "job", False, "2026-01-01T00:00:00Z", target="T")
    journal.store_plan("r1", ["a", "b"], [])
    journal._db.execute("UPDATE runs SET pid = 2147483646 WHERE run_id = 'r1'")  # no such pid
    journal.start_run("r2", "other", False, "2026-01-01T00:00:01Z", target="T")  # this live process
    assert journal.mark_crashed() == ["r1"]
    assert journal.run("r1").status == CRASHED and journal.run("r2").status == "running"
    assert journal.interrupted_run("job", "T").run_id == "r1"
    assert journal.mark_crashed("other", holding_lock=True) == ["r2"]
