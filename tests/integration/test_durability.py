"""Nothing is lost when the process, the network or the API fails (issue: durable journal).

Real ``reconciler run`` processes are killed with SIGKILL while a request is provably in
flight (the emulator holds it), then the next run must finish the stored plan so that the
ids deleted are exactly the plan: none lost, none deleted that were not planned.
"""

from __future__ import annotations

import csv
import io
import json
import signal

import pytest

from reconciler.config import load_config
from reconciler.core.errors import EXIT_ITEMS_FAILED, EXIT_OK, EXIT_REFUSED
from reconciler.runs.runner import RunRequest, run_job
from reconciler.store.journal import Journal
from tests.helpers import emulator_config, run_reconciler, start_reconciler

pytestmark = pytest.mark.integration

ITEMS = [f"sku-{n:05d}" for n in range(3000)]
STALE = set(ITEMS[::3])  # 1000 ids to delete, in batches of 100
LIMITS = {"max_batch_ids": 100, "requests_per_window": 1000}


def setup(tmp_path, start_emulator, **settings):
    emulator = start_emulator(ITEMS, bulk_requests_per_window=1000, **settings)
    source = [i for i in ITEMS if i not in STALE]
    config = emulator_config(tmp_path, emulator, source, limits=LIMITS)
    return emulator, config


def journal_of(config):
    return Journal.in_state_dir(config.state_dir)


@pytest.mark.parametrize(("route", "after"), [
    ("list", 1),   # killed while listing: nothing planned yet
    ("bulk", 0),   # killed with the first delete in flight
    ("bulk", 4),   # killed mid-way, four batches answered, the fifth in flight
    ("bulk", 9),   # killed with the last batch in flight
])
def test_sigkill_then_the_next_run_finishes_exactly_the_plan(tmp_path, start_emulator,
                                                             route, after):
    emulator, config = setup(tmp_path, start_emulator)
    emulator.hold(route, after)
    process = start_reconciler("--config", config.path, "run")
    assert emulator.held.wait(60), "the run never reached the held request"
    process.kill()
    process.wait(30)
    emulator.release()  # the held request now completes on the server, answer lost

    finish = run_reconciler("--config", config.path, "run")
    assert finish.returncode == 0, finish.stderr[-2000:]
    # The union of deleted ids equals the plan exactly, whatever the kill point.
    assert set(emulator.stats.deleted) == STALE
    assert len(emulator.stats.deleted) == len(STALE)  # no id deleted twice
    assert emulator.ids() == set(ITEMS) - STALE
    again = run_reconciler("--config", config.path, "run")
    assert again.returncode == 0 and "0 deleted, 0 not deleted" in again.stdout

    journal = journal_of(config)
    runs = journal.runs("products")
    if route == "bulk":
        resumed = runs[1]
        assert resumed.resumed_from == runs[2].run_id
        assert resumed.summary["resumed_at"].get("queued", 0) == after * 100
        # The third run read the catalog back: every id of the plan is confirmed gone.
        assert journal.state_counts(runs[2].run_id) == {"verified_gone": 1000}
        assert runs[2].status == "resumed"
    journal.close()


def test_a_second_process_is_refused_while_the_first_works(tmp_path, start_emulator):
    emulator, config = setup(tmp_path, start_emulator)
    emulator.hold("bulk", 2)
    first = start_reconciler("--config", config.path, "run")
    try:
        assert emulator.held.wait(60)
        second = run_reconciler("--config", config.path, "run")
        assert second.returncode == EXIT_REFUSED
        assert f"job 'products' is already being run by process {first.pid}" in second.stderr
    finally:
        emulator.release()
        first.wait(60)
    assert first.returncode == EXIT_OK
    assert set(emulator.stats.deleted) == STALE


def test_sigterm_stops_gracefully_and_the_next_run_resumes(tmp_path, start_emulator):
    emulator, config = setup(tmp_path, start_emulator)
    emulator.hold("bulk", 3)
    process = start_reconciler("--config", config.path, "run")
    assert emulator.held.wait(60)
    process.send_signal(signal.SIGTERM)
    emulator.release()  # the in-flight request is answered and recorded
    out, err = process.communicate(timeout=30)
    assert process.returncode == EXIT_ITEMS_FAILED, err[-2000:]
    assert "400 deleted, 600 not deleted" in out
    report = out.splitlines()[-1].removeprefix("products: report ")
    summary = json.loads((config.path.parent / report / "summary.json").read_text())
    assert summary["error"].startswith("stopped on request")
    assert (summary["deleted"], summary["not_sent"]) == (400, 600)

    finish = run_reconciler("--config", config.path, "run")
    assert finish.returncode == 0
    assert "resumed" in finish.stdout and "600 deleted" in finish.stdout
    assert set(emulator.stats.deleted) == STALE


def test_a_resumed_plan_skips_ids_back_in_the_source(tmp_path, start_emulator):
    emulator, config = setup(tmp_path, start_emulator)
    emulator.hold("bulk", 1)
    process = start_reconciler("--config", config.path, "run")
    assert emulator.held.wait(60)
    process.kill()
    process.wait(30)
    emulator.release()
    # Meanwhile the export changed: every still-planned stale id is back but one.
    back = sorted(STALE)[200:-1]
    source_path = config.jobs["products"].source.path
    with source_path.open("a", encoding="utf-8") as out:
        out.writelines(f"{i},again\n" for i in back)
    finish = run_job(config, config.jobs["products"], RunRequest(dry_run=False))
    assert finish.exit_code == EXIT_OK
    assert finish.summary["skipped"] == {"back_in_source": len(back)}
    assert set(back).isdisjoint(emulator.stats.deleted)
    assert set(emulator.stats.deleted) == STALE - set(back)


def test_read_back_verifies_earlier_deletes(tmp_path, start_emulator):
    lost = frozenset(sorted(STALE)[:5])
    emulator, config = setup(tmp_path, start_emulator, lose_ids=lost)
    config = emulator_config(tmp_path, emulator, [i for i in ITEMS if i not in STALE],
                             limits={**LIMITS, "verify_after_seconds": 0.001})
    first = run_job(config, config.jobs["products"], RunRequest(dry_run=False))
    assert first.summary["deleted"] == 1000  # the server said queued for all of them
    verify = run_job(config, config.jobs["products"],
                     RunRequest(dry_run=True, verify_only=True))
    assert verify.summary["verified"] == {"verified_gone": 995, "still_present": 5, "pending": 0}
    assert emulator.stats.bulk_delete_requests == 10  # --verify deletes nothing
    assert verify.summary["action"] == "verify"
    assert verify.message == "verified: 995 gone, 5 still listed (resent by the next run), " \
        "0 too recent to judge"
    assert "| verified_gone | 995 |" in (verify.report_dir / "report.md").read_text()
    journal = journal_of(config)
    still = journal.items(first.run_id, "still_present")
    assert {i.item_id for i in still} == lost
    journal.close()
    # The next real run resends the ids still present (they are still remote - source).
    again = run_job(config, config.jobs["products"], RunRequest(dry_run=False))
    assert again.summary["to_delete"] == 5 and again.summary["deleted"] == 5


def test_history_and_outcomes(tmp_path, start_emulator):
    _, config = setup(tmp_path, start_emulator, reject_ids=frozenset({"sku-00003"}))
    planned = run_reconciler("--config", config.path, "plan")
    ran = run_reconciler("--config", config.path, "run")
    assert (planned.returncode, ran.returncode) == (0, EXIT_ITEMS_FAILED)

    history = run_reconciler("--config", config.path, "history", "products")
    assert history.returncode == 0
    lines = history.stdout.splitlines()
    assert lines[0].split()[:6] == ["run_id", "job", "started_at", "finished_at", "mode",
                                    "status"]
    assert lines[1].split()[4:8] == ["real", "finished", "4", "1000"]
    assert lines[2].split()[4:7] == ["dry", "dry", "0"]
    run_id = lines[1].split()[0]

    failed = run_reconciler("--config", config.path, "outcomes", run_id, "--outcome", "failed")
    assert failed.returncode == 0
    assert list(csv.reader(io.StringIO(failed.stdout))) == [
        ["item_id", "outcome", "detail"],
        ["sku-00003", "failed", "_global: Validation error: rejected by the emulator"],
    ]
    everything = run_reconciler("--config", config.path, "outcomes", run_id, "--format", "json")
    rows = [json.loads(line) for line in everything.stdout.splitlines()]
    assert len(rows) == 1000 and {r["outcome"] for r in rows} == {"queued", "failed"}
    missing = run_reconciler("--config", config.path, "outcomes", "nope")
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr


@pytest.mark.parametrize("kinds", [
    ("500", "503", "reset", "reset-after", "truncated", "slow"),
    ("slow",),
])
def test_fault_storm_ends_with_every_item_final_and_right(tmp_path, start_emulator, kinds):
    slow_beyond_timeout = kinds == ("slow",)
    emulator = start_emulator(ITEMS, bulk_requests_per_window=1000, fault_rate=0.3,
                              fault_kinds=kinds, seed=7,
                              slow_seconds=0.6 if slow_beyond_timeout else 0.02)
    limits = {**LIMITS, "max_attempts": 30, "timeout_seconds": 0.3 if slow_beyond_timeout
              else 5}
    config = emulator_config(tmp_path, emulator, [i for i in ITEMS if i not in STALE],
                             limits=limits)
    result = run_job(config, config.jobs["products"], RunRequest(dry_run=False))
    assert result.exit_code == EXIT_OK, result.summary
    assert result.summary["retries"] > 0
    assert {o.outcome for o in result.outcomes} == {"queued"}
    assert set(emulator.stats.deleted) == STALE
    journal = journal_of(config)
    assert journal.state_counts(result.run_id) == {"queued": 1000}
    journal.close()


def test_a_429_storm_is_recorded_per_item(tmp_path, start_emulator):
    emulator = start_emulator(ITEMS, bulk_requests_per_window=2, bulk_window_seconds=0.2)
    config = emulator_config(tmp_path, emulator, [i for i in ITEMS if i not in STALE],
                             limits={**LIMITS, "max_batch_ids": 250, "max_attempts": 20})
    result = run_job(config, config.jobs["products"], RunRequest(dry_run=False))
    assert result.exit_code == EXIT_OK
    assert result.summary["throttled"] == emulator.stats.throttled > 0
    assert set(emulator.stats.deleted) == STALE


def test_config_loaded_from_disk_is_the_same(tmp_path, start_emulator):
    _, config = setup(tmp_path, start_emulator)
    assert load_config(config.path).jobs["products"].limits.max_batch_ids == 100
