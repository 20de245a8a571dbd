"""Whole runs (runner in this process) against the emulator over real sockets on 127.0.0.1."""

from __future__ import annotations

import csv
import json

import pytest

from reconciler.config import load_config
from reconciler.core.errors import (
    EXIT_CONFIG,
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNEXPECTED,
)
from reconciler.emulator import generate_items
from reconciler.runs.runner import RunRequest, run_job
from tests.helpers import emulator_config, job_toml, write_config, write_csv, write_parquet

pytestmark = pytest.mark.integration

AWKWARD_STALE = ["SKU/with-slash", "ünïcødé-☃", "comma,id", "with space", "00123", "NA"]


def run(config, dry_run=False, **kw):
    job = next(iter(config.jobs.values()))
    return run_job(config, job, RunRequest(dry_run=dry_run, **kw))


def read_csv(path):
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_large_catalog_enumerated_through_the_window_and_deleted_exactly(tmp_path,
                                                                           start_emulator):
    items = generate_items(52_000)  # plus the awkward ids
    stale = set(list(items)[::25]) | set(AWKWARD_STALE)
    source = [i for i in items if i not in stale] + ["NEW-1", "NEW-2"]
    emulator = start_emulator(items, bulk_requests_per_window=50)
    config = emulator_config(tmp_path, emulator, source, limits={"requests_per_window": 50})

    result = run(config)

    summary = result.summary
    assert result.exit_code == EXIT_OK, result.message
    assert summary["inventory_complete"] is True
    assert summary["inventory"]["found"] == summary["inventory"]["expected"] == len(items)
    assert summary["remote_ids"] == len(items)
    assert summary["source_ids"] == len(source)
    assert summary["skipped"] == {"unaddressable": 1}
    expected_deleted = stale - {"SKU/with-slash"}
    # The exact set deleted equals remote - source - skipped, each id once.
    assert sorted(emulator.stats.deleted) == sorted(expected_deleted)
    assert emulator.stats.bulk_delete_entries == len(expected_deleted)
    assert emulator.ids() == set(items) - expected_deleted
    assert {r["item_id"] for r in read_csv(result.report_dir / "deletes.csv")} == expected_deleted
    assert read_csv(result.report_dir / "skipped.csv") == [
        {"item_id": "SKU/with-slash", "reason": "unaddressable"}
    ]
    outcomes = read_csv(result.report_dir / "outcomes.csv")
    assert len(outcomes) == len(stale)
    assert {o["outcome"] for o in outcomes} == {"queued", "skipped"}
    assert summary["deleted"] == len(expected_deleted) and summary["failed"] == 0


def test_plan_never_sends_a_delete(tmp_path, start_emulator):
    items = generate_items(3000)
    emulator = start_emulator(items)
    config = emulator_config(tmp_path, emulator, list(items)[:2000])
    result = run(config, dry_run=True)
    assert result.exit_code == EXIT_OK
    assert emulator.stats.bulk_delete_requests == 0
    assert emulator.ids() == set(items)
    assert result.summary["dry_run"] is True
    assert result.summary["to_delete"] == 1000 + 5  # the awkward ids but the slash one
    planned = read_csv(result.report_dir / "outcomes.csv")
    assert {o["outcome"] for o in planned} == {"planned", "skipped"}


def test_batches_split_by_count_and_by_bytes(tmp_path, start_emulator):
    long_ids = [f"{n:03d}-" + "x" * 200 for n in range(40)]
    emulator = start_emulator([*long_ids, "keep"], bulk_requests_per_window=100)
    limits = {"max_batch_ids": 7, "max_batch_bytes": 1000, "requests_per_window": 100}
    config = emulator_config(tmp_path, emulator, ["keep"], limits=limits)
    result = run(config)
    assert result.exit_code == EXIT_OK
    assert emulator.ids() == {"keep"}
    sizes, sizes_bytes = emulator.stats.batch_sizes, emulator.stats.batch_bytes
    assert sum(sizes) == 40 and max(sizes) <= 7 and max(sizes_bytes) <= 1000
    assert max(sizes) == 4  # bytes, not the count, bound these batches: 4 x 207 + 5 = 833

    short_ids = [f"id{n:03d}" for n in range(40)]
    emulator = start_emulator([*short_ids, "keep"], bulk_requests_per_window=100)
    config = emulator_config(tmp_path / "count", emulator, ["keep"], limits=limits)
    assert run(config).exit_code == EXIT_OK
    assert emulator.stats.batch_sizes == [7, 7, 7, 7, 7, 5]


def test_429_storm_with_retry_after_loses_and_repeats_nothing(tmp_path, start_emulator):
    ids = [f"id{n:04d}" for n in range(60)]
    # The server admits 1 request per 0.3 s; the client believes 50 per 0.3 s.
    emulator = start_emulator([*ids, "keep"], bulk_requests_per_window=1,
                              bulk_window_seconds=0.3)
    limits = {"max_batch_ids": 10, "requests_per_window": 50, "window_seconds": 0.3}
    config = emulator_config(tmp_path, emulator, ["keep"], limits=limits)
    result = run(config)
    assert result.exit_code == EXIT_OK
    assert emulator.stats.throttled > 0
    assert result.summary["throttled"] == emulator.stats.throttled
    assert sorted(emulator.stats.deleted) == ids  # each once, none lost
    assert emulator.stats.bulk_delete_entries == 60


def test_429_without_retry_after_backs_off(tmp_path, start_emulator):
    ids = [f"id{n:04d}" for n in range(30)]
    emulator = start_emulator(ids, bulk_requests_per_window=1, bulk_window_seconds=0.2,
                              send_retry_after=False)
    limits = {"max_batch_ids": 10, "requests_per_window": 50, "window_seconds": 0.2,
              "backoff_initial_seconds": 0.1, "max_attempts": 10}
    config = emulator_config(tmp_path, emulator, [], limits=limits)
    result = run(config)
    assert result.exit_code == EXIT_OK
    assert emulator.stats.throttled > 0
    assert sorted(emulator.stats.deleted) == ids


def test_a_lone_writer_within_the_budget_is_never_throttled(tmp_path, start_emulator):
    ids = [f"id{n:04d}" for n in range(60)]
    emulator = start_emulator(ids, bulk_requests_per_window=5, bulk_window_seconds=0.2)
    limits = {"max_batch_ids": 5, "requests_per_window": 5, "window_seconds": 0.2}
    result = run(emulator_config(tmp_path, emulator, [], limits=limits))
    assert result.exit_code == EXIT_OK
    assert emulator.stats.bulk_delete_requests == 12
    assert emulator.stats.throttled == 0


def test_listing_failure_aborts_before_any_delete(tmp_path, start_emulator):
    emulator = start_emulator(generate_items(100))
    emulator.queue_faults("list", [503] * 3)
    config = emulator_config(tmp_path, emulator, [], limits={"max_attempts": 3})
    result = run(config)
    assert result.exit_code == EXIT_UNEXPECTED
    assert result.summary["error"] == "list items: HTTP 503: Service Unavailable"
    assert emulator.stats.bulk_delete_requests == 0
    assert json.loads((result.report_dir / "summary.json").read_text())["exit_code"] == 1


def test_listing_recovers_from_resets_and_truncated_bodies(tmp_path, start_emulator):
    items = generate_items(2500)
    emulator = start_emulator(items)
    emulator.queue_faults("list", ["reset", 502, "truncated"])
    result = run(emulator_config(tmp_path, emulator, list(items)), dry_run=True)
    assert result.exit_code == EXIT_OK
    assert result.summary["inventory_complete"] is True and result.summary["to_delete"] == 0


def test_wrong_secret_is_a_config_error_and_deletes_nothing(tmp_path, start_emulator,
                                                            log_stream):
    emulator = start_emulator(generate_items(10))
    config = emulator_config(tmp_path, emulator, [], api_secret="wrong-secret-value")
    result = run(config)
    assert result.exit_code == EXIT_CONFIG
    assert result.message == (
        "list items: HTTP 403: invalid secret; the API key needs the permission "
        "'Catalogs > View catalog items' (or check target.api_secret)"
    )
    assert emulator.stats.bulk_delete_requests == 0


def test_missing_delete_permission_stops_the_run(tmp_path, start_emulator):
    emulator = start_emulator(generate_items(10), permissions=("list", "get"))
    result = run(emulator_config(tmp_path, emulator, []))
    assert result.exit_code == EXIT_ITEMS_FAILED
    assert result.summary["not_sent"] == result.summary["to_delete"] == 15
    assert result.summary["deleted"] == 0 and emulator.stats.bulk_delete_requests == 0
    outcomes = read_csv(result.report_dir / "outcomes.csv")
    sent = [o for o in outcomes if o["outcome"] != "skipped"]
    assert {o["outcome"] for o in sent} == {"not_sent"}
    assert sent[0]["detail"] == (
        "stopped: bulk delete: HTTP 403: Missing permission: catalogs.delete_catalog_item; "
        "the API key needs the permission 'Catalogs > Delete catalog item "
        "(catalogs.delete_catalog_item)' (or check target.api_secret)"
    )


def test_per_item_failures_and_unmatched_answers_are_reported(tmp_path, start_emulator):
    ids = [f"id{n:03d}" for n in range(20)]
    emulator = start_emulator(ids, reject_ids=frozenset({"id003"}),
                              bulk_requests_per_window=100)
    emulator.queue_faults("bulk", ["short"])
    limits = {"max_batch_ids": 10, "requests_per_window": 100}
    result = run(emulator_config(tmp_path, emulator, [], limits=limits))
    assert result.exit_code == EXIT_ITEMS_FAILED
    outcomes = {o["item_id"]: o for o in read_csv(result.report_dir / "outcomes.csv")}
    # The first batch was answered one entry short: its ids are unknown, never "deleted".
    assert {outcomes[f"id{n:03d}"]["outcome"] for n in range(10)} == {"unknown"}
    assert outcomes["id013"]["outcome"] == "queued"
    assert result.summary["unknown"] == 10 and result.summary["deleted"] == 10
    deletes = {r["item_id"] for r in read_csv(result.report_dir / "deletes.csv")}
    assert deletes == {f"id{n:03d}" for n in range(10, 20)}


def test_failed_items_carry_the_server_text(tmp_path, start_emulator):
    emulator = start_emulator(["a", "b"], reject_ids=frozenset({"b"}))
    result = run(emulator_config(tmp_path, emulator, []))
    assert result.exit_code == EXIT_ITEMS_FAILED
    outcomes = {o["item_id"]: o for o in read_csv(result.report_dir / "outcomes.csv")}
    assert outcomes["b"] == {"item_id": "b", "outcome": "failed",
                             "detail": "_global: Validation error: rejected by the emulator"}
    assert outcomes["a"]["outcome"] == "queued"


def test_bad_source_is_refused_and_nothing_is_deleted(tmp_path, start_emulator):
    emulator = start_emulator(generate_items(10))
    config = emulator_config(tmp_path, emulator, [])
    job = config.jobs["products"]
    job.source.path.write_bytes(b"")
    result = run(config)
    assert result.exit_code == EXIT_REFUSED
    assert result.summary["refused"] == (
        f"{job.source.path}: cannot read: the file is empty (no header row)"
    )
    assert emulator.stats.bulk_delete_requests == emulator.stats.list_requests == 0


def test_export_inventory_gives_the_same_plan_as_listing(tmp_path, start_emulator):
    items = generate_items(4000)
    emulator = start_emulator(items)
    source = list(items)[::2]
    listed = run(emulator_config(tmp_path / "a", emulator, source), dry_run=True)
    export = write_parquet(tmp_path / "remote.parquet", sorted(items))
    via_export = run(emulator_config(tmp_path / "b", emulator, source, inventory=export),
                     dry_run=True)
    assert (listed.report_dir / "deletes.csv").read_bytes() == \
        (via_export.report_dir / "deletes.csv").read_bytes()
    assert via_export.summary["inventory"]["source"] == "export"
    assert emulator.stats.list_requests == listed.summary["inventory"]["requests"]


def test_item_events_and_no_secret_anywhere(tmp_path, start_emulator, log_stream):
    emulator = start_emulator(["gone-1", "gone/2", "kept"], api_secret="hunter2-secret")
    config = emulator_config(tmp_path, emulator, ["kept"])
    from reconciler.logging import configure
    configure("info", "json", config.secrets, stream=log_stream)
    result = run(config)
    assert result.exit_code == EXIT_OK
    events = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    items = [e for e in events if e["event"] == "item"]
    assert {(e["item_id"], e["outcome"]) for e in items} == {
        ("gone-1", "queued"), ("gone/2", "skipped")
    }
    assert all(e["job"] == "products" and e["run_id"] == result.run_id for e in items)
    assert [e["event"] for e in events].count("batch") == 1
    assert [e["event"] for e in events].count("run.finished") == 1
    everything = log_stream.getvalue() + "".join(
        p.read_text(encoding="utf-8") for p in result.report_dir.iterdir()
    )
    assert "hunter2-secret" not in everything


def test_report_dir_option(tmp_path, start_emulator):
    emulator = start_emulator(["a"])
    config = emulator_config(tmp_path, emulator, ["a"])
    result = run(config, dry_run=True, report_root=tmp_path / "out")
    assert result.report_dir == tmp_path / "out" / "products"
    summary = json.loads((result.report_dir / "summary.json").read_text())
    for key in ("job", "run_id", "dry_run", "source_ids", "remote_ids", "inventory_complete",
                "to_delete", "skipped", "deleted", "failed", "started_at", "finished_at"):
        assert key in summary


def test_two_jobs_one_config(tmp_path, start_emulator):
    first, second = start_emulator(["a", "b"]), start_emulator(["c", "d"])
    source_a = write_csv(tmp_path / "a.csv", ["a"])
    source_b = write_csv(tmp_path / "b.csv", ["c"])
    path = write_config(tmp_path, job_toml("one", first.base_url, source_a, emulator=first),
                        job_toml("two", second.base_url, source_b, emulator=second))
    config = load_config(path)
    for job in config.jobs.values():
        assert run_job(config, job, RunRequest(dry_run=False)).exit_code == EXIT_OK
    assert first.ids() == {"a"} and second.ids() == {"c"}


def test_incomplete_listing_is_reported_and_deletes_only_ids_seen(tmp_path, start_emulator):
    # "Q" ids hide between the first and last pages and "Q" is not in the alphabet.
    ids = [f"{c}{n:03d}" for c in "AQZ" for n in range(30)]
    emulator = start_emulator(ids, list_window=20)
    limits = {"list_window": 20, "list_page_size": 10}
    config = emulator_config(tmp_path, emulator, ["A000"], limits=limits,
                             target_extra={"prefix_alphabet": "AZ0123456789"})
    result = run(config)
    assert result.exit_code == EXIT_OK
    summary = result.summary
    assert summary["inventory_complete"] is False
    assert (summary["inventory"]["found"], summary["inventory"]["expected"]) == (60, 90)
    assert "Inventory incomplete" in (result.report_dir / "report.md").read_text()
    assert emulator.ids() == {"A000"} | {f"Q{n:03d}" for n in range(30)}
