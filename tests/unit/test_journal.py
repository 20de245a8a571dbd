"""What only the SQLite journal does (schema in PRAGMA user_version, WAL, range updates over
its ordered primary key, migrations of old files) and the file lock; the behaviour every
store shares is in tests/store/test_store_contract.py, run over SQLite and PostgreSQL."""

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
