"""One contract over every store: the SQLite journal and PostgreSQL behave alike."""

from __future__ import annotations

import os
import socket

import psycopg
import pytest

from reconciler.store import STORE_ERRORS, open_store
from reconciler.store.journal import CRASHED


def test_migrating_twice_is_a_no_op(store, store_config):
    version = store.schema_version
    assert version >= 3
    again = open_store(store_config)
    assert again.schema_version == version
    again.close()


def test_item_lifecycle_and_resendable(store):
    store.start_run("r1", "job", False, "t0", target="T")
    store.store_plan("r1", ["a", "b", "c", "d"], [("x/y", "unaddressable")])
    store.mark_sent("r1", "r1", 1, ["a", "b"], 10.0)
    assert store.state_counts("r1") == {"sent": 2, "planned": 2, "skipped": 1}
    store.record_outcomes("r1", "r1", 1, [("a", "queued", ""), ("b", "unknown", "short")], 11.0)
    assert [i.item_id for i in store.resendable("r1")] == ["b", "c", "d"]
    assert store.interrupted_run("job", "T").run_id == "r1"
    assert store.queued_before("job", "r2", "T") == [("r1", "a", 11.0, 1)]
    assert [(i.item_id, i.state, i.detail, i.sends) for i in store.items("r1", "unknown")] \
        == [("b", "unknown", "short", 1)]


def test_finished_runs_are_not_resumed_and_dry_runs_never(store):
    store.start_run("dry", "job", True, "t0", target="T")
    store.store_plan("dry", ["a"], [])
    store.finish_run("dry", "dry", 0, "t1", {})
    assert store.interrupted_run("job", "T") is None
    store.start_run("real", "job", False, "t2", target="T")
    store.store_plan("real", ["a"], [])
    store.record_outcomes("real", "real", None, [("a", "queued", "")], 1.0)
    store.finish_run("real", "finished", 0, "t3", {"deleted": 1, "é": "☃"})
    assert store.interrupted_run("job", "T") is None
    assert [r.run_id for r in store.runs("job")] == ["real", "dry"]
    assert [r.run_id for r in store.runs(None, 1)] == ["real"]
    real = store.run("real")
    assert real.summary == {"deleted": 1, "é": "☃"} and real.exit_code == 0
    assert real.replica == f"{socket.gethostname()}:{os.getpid()}"
    assert store.run("nope") is None


def test_a_failed_transaction_leaves_nothing(store):
    store.start_run("r1", "job", False, "t0", target="T")
    with pytest.raises(STORE_ERRORS):
        store.store_plan("r1", ["a", "a"], [])  # the same id twice violates the key
    assert store.state_counts("r1") == {}


def test_batches_of_any_shape_are_marked(store):
    store.start_run("r1", "job", False, "t0", target="T")
    store.store_plan("r1", ["a", "b", "c", "d", "e"], [])
    store.mark_sent("r1", "r1", 1, ["a", "b"], 1.0)
    store.mark_sent("r1", "r1", 2, ["c", "e"], 1.0)  # "d" lies between
    states = {i.item_id: i.state for i in store.items("r1")}
    assert states == {"a": "sent", "b": "sent", "c": "sent", "d": "planned", "e": "sent"}
    assert store.next_batch_seq("r1") == 3


def test_mixed_outcomes_are_each_recorded(store):
    store.start_run("r1", "job", False, "t0", target="T")
    ids = [f"i{n}" for n in range(6)]
    store.store_plan("r1", ids, [])
    store.mark_sent("r1", "r1", 1, ids, 1.0)
    store.record_outcomes("r1", "r1", 1, [
        ("i0", "queued", ""), ("i1", "failed", "no"), ("i2", "queued", ""),
        ("i3", "queued", ""), ("i4", "queued", ""), ("i5", "unknown", "lost"),
    ], 2.0)
    rows = {i.item_id: (i.state, i.detail) for i in store.items("r1")}
    assert rows == {"i0": ("queued", ""), "i1": ("failed", "no"), "i2": ("queued", ""),
                    "i3": ("queued", ""), "i4": ("queued", ""), "i5": ("unknown", "lost")}
    store.start_run("r2", "job", False, "t1", resumed_from="r1", target="T")
    store.mark_sent("r2", "r1", 2, ["i5"], 3.0)
    store.record_outcomes("r2", "r1", 2, [("i5", "queued", "")], 4.0)
    assert store.state_counts("r1") == {"queued": 5, "failed": 1}
    assert store.run("r2").resumed_from == "r1"
    assert {i.item_id: i.sends for i in store.items("r1")}["i5"] == 2
    store.mark_verified([("r1", "i0", "verified_gone", ""), ("r1", "i2", "still_present", "x")])
    assert store.state_counts("r1") == {"queued": 3, "failed": 1, "verified_gone": 1,
                                        "still_present": 1}


def test_ids_keep_code_point_order(store):
    ids = sorted(["a", "z", "é", "☃", "😀", "A", "0", "a b", "a-b", "_"])
    store.start_run("r1", "job", False, "t0", target="T")
    store.store_plan("r1", reversed(ids), [])
    assert [i.item_id for i in store.resendable("r1")] == ids
    store.mark_sent("r1", "r1", 1, ids[2:5], 1.0)
    assert [i.item_id for i in store.items("r1", "sent")] == ids[2:5]
    store.update_ledger("job", "T", reversed(ids), [])
    assert store.ledger("job", "T") == ids


def test_shrink_baseline_and_daily_count(store):
    store.start_run("r1", "job", False, "t0", target="T")
    store.store_plan("r1", ["a", "b"], [])
    store.record_outcomes("r1", "r1", None, [("a", "queued", ""), ("b", "queued", "")], 50.0)
    store.finish_run("r1", "finished", 0, "t1", {"source_ids": 1200})
    store.start_run("r2", "job", True, "t2", target="T")
    store.finish_run("r2", "dry", 0, "t3", {"source_ids": 5})
    store.start_run("r3", "job", False, "t4", target="T")
    store.finish_run("r3", "finished", 0, "t5", {"source_ids": 0})
    assert store.last_source_ids("job", "T") == 1200
    assert store.queued_since(40.0, "T") == 2
    assert store.queued_since(60.0, "T") == 0
    assert store.last_source_ids("other", "T") is None
    # The daily total belongs to the catalog: another job's deletes on T count, U's do not.
    store.start_run("r4", "renamed", False, "t6", target="T")
    store.store_plan("r4", ["c"], [])
    store.record_outcomes("r4", "r4", None, [("c", "queued", "")], 70.0)
    store.start_run("r5", "job", False, "t7", target="U")
    store.store_plan("r5", ["d"], [])
    store.record_outcomes("r5", "r5", None, [("d", "queued", "")], 70.0)
    assert store.queued_since(40.0, "T") == 3
    assert store.queued_since(60.0, "T") == 1
    assert sorted(store.queued_ids_since(40.0, "T")) == ["a", "b", "c"]
    assert store.queued_ids_since(60.0, "U") == ["d"]


def test_each_target_keeps_its_own_state(store):
    store.start_run("r1", "job", False, "t0", target="A")
    store.store_plan("r1", ["a"], [])
    store.replace_absences("job", "A", {"x": (1, 1.0)})
    store.replace_absences("job", "B", {"y": (1, 2.0)})
    store.update_ledger("job", "A", ["l1", "l2", "l1"], [])
    store.update_ledger("job", "A", ["l3"], ["l2"])
    assert store.interrupted_run("job", "A").run_id == "r1"
    assert store.interrupted_run("job", "B") is None
    assert store.absences("job", "A") == {"x": (1, 1.0)}
    assert store.absences("job", "B") == {"y": (1, 2.0)}
    store.replace_absences("job", "A", {"z": (2, 3.5)})
    assert store.absences("job", "A") == {"z": (2, 3.5)}
    assert store.ledger("job", "B") == [] and store.ledger("job", "A") == ["l1", "l3"]
    assert store.last_target("job", "r2") == (True, "A")
    assert store.last_target("other", "r2") == (False, None)
    assert store.queued_before("job", "r2", "B") == []


def test_rows_of_dead_processes_become_crashed_and_stay_resumable(store):
    store.start_run("r1", "job", False, "2026-01-01T00:00:00Z", target="T")
    store.store_plan("r1", ["a", "b"], [])
    _set_pid(store, "r1", 2147483646)  # no such pid on this host
    store.start_run("r2", "other", False, "2026-01-01T00:00:01Z", target="T")
    assert store.mark_crashed() == ["r1"]
    assert store.run("r1").status == CRASHED and store.run("r2").status == "running"
    assert store.interrupted_run("job", "T").run_id == "r1"
    assert store.mark_crashed("other", holding_lock=True) == ["r2"]
    store.set_status("r2", "stopped")
    assert store.run("r2").status == "stopped"


def _set_pid(store, run_id, pid):
    if hasattr(store, "_db"):
        store._db.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (pid, run_id))
        return
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        conn.execute("UPDATE runs SET pid = %s WHERE run_id = %s", (pid, run_id))


def test_the_plan_signing_key_is_made_once_and_kept(store_config):
    from reconciler.store import plan_key

    first = plan_key(store_config)
    assert len(first) >= 64 and plan_key(store_config) == first


def test_the_grace_clock_is_kept_per_job_and_target(store):
    from reconciler.core.gracetime import GraceMark
    assert store.grace_mark("job", "T") is None
    store.set_grace_mark("job", "T", GraceMark(100.0, 200.0, "boot-1", 30.5))
    store.set_grace_mark("job", "T", GraceMark(150.0, 260.0, "boot-1", 80.5))
    store.set_grace_mark("job", "U", GraceMark(1.0, 2.0, "", 0.0))
    assert store.grace_mark("job", "T") == GraceMark(150.0, 260.0, "boot-1", 80.5)
    assert store.grace_mark("job", "U") == GraceMark(1.0, 2.0, "", 0.0)
    assert store.grace_mark("other", "T") is None


def test_claims_are_per_catalog_and_refreshed(store):
    from reconciler.core.ownership import Claim
    store.claim("T", Claim("a", "/a.csv", "/a.toml", (), 10.0))
    store.claim("T", Claim("b", "/b.csv", "/b.toml", ("ab-*",), 11.0))
    store.claim("T", Claim("a", "/a.csv", "/moved/a.toml", ("sku-*",), 12.0))
    store.claim("U", Claim("c", "/c.csv", "/c.toml", (), 13.0))
    assert store.claims("T") == [Claim("a", "/a.csv", "/moved/a.toml", ("sku-*",), 12.0),
                                 Claim("b", "/b.csv", "/b.toml", ("ab-*",), 11.0)]
    assert store.claims("V") == []


def test_a_saved_plan_is_spent_once(store):
    assert store.plan_spent_by("p1") is None
    assert store.spend_plan("p1", "apply-1", 5.0) is None
    assert store.spend_plan("p1", "apply-2", 6.0) == "apply-1"
    assert store.plan_spent_by("p1") == "apply-1"
    assert store.spend_plan("p2", "apply-2", 6.0) is None


def test_the_last_source_mtime_is_the_newest_finished_real_runs_that_read_one(store):
    assert store.last_source_mtime("job", "T") is None
    store.start_run("r1", "job", False, "t0", target="T")
    store.finish_run("r1", "finished", 0, "t1", {"source": {"mtime": 100.5}})
    store.start_run("r2", "job", False, "t2", target="T")
    store.finish_run("r2", "finished", 0, "t3", {"applied_plan": "p"})  # read no export
    store.start_run("r3", "job", False, "t4", target="T")
    store.finish_run("r3", "refused", 3, "t5", {"source": {"mtime": 50.0}})
    store.start_run("r4", "job", True, "t6", target="T")
    store.finish_run("r4", "dry", 0, "t7", {"source": {"mtime": 10.0}})
    assert store.last_source_mtime("job", "T") == 100.5
    assert store.last_source_mtime("job", "U") is None
    assert store.last_source_mtime("other", "T") is None
