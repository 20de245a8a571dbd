"""A hostile environment: faulty answers and broken surroundings, each ending in one line.

Every case runs a real ``reconciler`` process and asserts what the user sees: no
traceback, the contract's exit code, every planned id in exactly one final state, and
nothing deleted that was not planned.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from reconciler.emulator import generate_items
from tests.helpers import job_toml, run_reconciler, write_config, write_csv

pytestmark = pytest.mark.integration

FINAL = {"queued", "failed", "unknown", "not_sent", "skipped"}


@pytest.fixture
def hostile(tmp_path, start_emulator):
    items = generate_items(120)
    emulator = start_emulator(items)
    keep = list(items)[:100]
    source = write_csv(tmp_path / "exports" / "products.csv", keep)
    config = write_config(tmp_path, job_toml("products", emulator.base_url, source,
                                             emulator=emulator))
    return emulator, config, items, set(keep)


def report_of(result, tmp_path: Path) -> Path:
    line = next(x for x in result.stdout.splitlines() if x.startswith("products: report "))
    return tmp_path / line.removeprefix("products: report ")


def assert_accounted(result, tmp_path: Path, emulator, keep: set[str]) -> dict[str, str]:
    """No traceback; every planned id in exactly one final state; nothing else deleted."""
    assert "Traceback" not in result.stderr + result.stdout
    folder = report_of(result, tmp_path)
    with (folder / "outcomes.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    states: dict[str, str] = {}
    for row in rows:
        assert row["item_id"] not in states, f"{row['item_id']} has two final states"
        assert row["outcome"] in FINAL
        states[row["item_id"]] = row["outcome"]
    assert not set(emulator.stats.deleted) & keep  # nothing deleted that was not planned
    assert set(emulator.stats.deleted) <= {i for i, s in states.items()
                                           if s in ("queued", "unknown", "failed")}
    return states


def http_date(seconds: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


@pytest.mark.parametrize("retry_after", ["86400", http_date(86400)], ids=["seconds", "date"])
def test_a_day_long_retry_after_fails_the_batch_resumably(hostile, tmp_path, retry_after):
    emulator, config, _items, keep = hostile
    emulator.queue_faults("bulk", [{"status": 429, "headers": {"Retry-After": retry_after},
                                    "body": {"success": False, "error": "slow down"}}])
    ran = run_reconciler("--config", config, "run", timeout=60)
    assert ran.returncode == 4, ran.stderr
    summary = json.loads((report_of(ran, tmp_path) / "summary.json").read_text())
    assert ran.stdout.splitlines()[0] == f"products: 0 deleted, {summary['to_delete']} not deleted"
    states = assert_accounted(ran, tmp_path, emulator, keep)
    assert {s for s in states.values() if s != "skipped"} == {"not_sent"}
    assert summary["error"].startswith("stopped: the server asked to wait 86")
    assert "longer than retry_deadline_seconds (600 s); the next run resumes" in summary["error"]
    # The next run is not held by a stored day-long pause: it resumes and finishes.
    again = run_reconciler("--config", config, "run", timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0].startswith("products: resumed ")
    assert len(emulator.ids()) == 100 + sum(summary["skipped"].values())


def test_a_state_dir_that_is_a_file_is_refused_before_any_delete(hostile, tmp_path):
    emulator, config, _items, _keep = hostile
    (tmp_path / "state").write_text("not a folder")
    ran = run_reconciler("--config", config, "run")
    assert ran.returncode == 3
    assert "Traceback" not in ran.stderr
    line = ran.stderr.splitlines()[-1]
    state = tmp_path / "state"
    folder = re.escape(str(state / "reports" / "products")) + r"/\d{8}T\d{6}Z-[0-9a-f]{6}"
    assert re.fullmatch(f"products: state_dir {re.escape(str(state))} is not a folder; "
                        f"no report written: ({folder}): Not a directory \\(\\1\\)", line), line
    assert emulator.stats.bulk_delete_requests == 0


def test_an_unusable_report_dir_is_found_before_any_delete(hostile, tmp_path):
    emulator, config, _items, _keep = hostile
    blocker = tmp_path / "reports-file"
    blocker.write_text("")
    ran = run_reconciler("--config", config, "run", "--report-dir", blocker)
    assert ran.returncode == 3 and "Traceback" not in ran.stderr
    first = next(x for x in ran.stderr.splitlines() if x.startswith("products: "))
    bad = re.escape(str(blocker / "products"))
    fallback = re.escape(str(tmp_path / "state" / "reports" / "products"))
    assert re.fullmatch(f"products: report folder {bad} cannot be created: Not a directory "
                        f"\\({bad}\\) \\(report folder unusable, written to "
                        f"{fallback}/\\d{{8}}T\\d{{6}}Z-[0-9a-f]{{6}}\\)", first), first
    assert emulator.stats.bulk_delete_requests == 0
    summary = json.loads((report_of(ran, tmp_path) / "summary.json").read_text())
    assert summary["exit_code"] == 3 and summary["refused"].startswith("report folder")
    history = run_reconciler("--config", config, "history")
    assert " refused " in history.stdout or "refused" in history.stdout


def test_a_disk_that_fills_up_mid_run_ends_in_one_line(hostile, tmp_path):
    """RLIMIT_FSIZE stands in for a full disk: every write past it fails with EFBIG."""
    import resource
    import signal
    import subprocess

    from tests.helpers import reconciler_command

    emulator, config, _items, _keep = hostile
    assert run_reconciler("--config", config, "plan").returncode == 0  # the journal exists

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        size = (tmp_path / "state" / "journal.sqlite3").stat().st_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 4096, size + 4096))

    ran = subprocess.run(reconciler_command("--config", config, "run"), capture_output=True,
                         text=True, timeout=60, preexec_fn=small_disk)
    assert "Traceback" not in ran.stderr + ran.stdout
    assert ran.returncode in (1, 3), ran.stderr
    line = next(x for x in ran.stderr.splitlines() if x.startswith("products: "))
    assert "File too large" in line or "disk" in line, line
    # Nothing deleted that was not planned; the next run (with room) finishes the work.
    again = run_reconciler("--config", config, "run")
    assert again.returncode == 0, again.stderr
    assert not set(emulator.stats.deleted) & _keep


def test_state_journal_backups_and_reports_are_private(hostile, tmp_path):
    _emulator, config, _items, _keep = hostile
    ran = run_reconciler("--config", config, "run")
    assert ran.returncode == 0, ran.stderr
    state = tmp_path / "state"
    paths = [state, *state.rglob("*")]
    assert any(p.name.endswith(".jsonl.gz") for p in paths)  # a backup was written
    assert any(p.name == "journal.sqlite3" for p in paths)
    open_to_others = [f"{p} {p.stat().st_mode & 0o777:o}" for p in paths
                      if p.stat().st_mode & 0o077]
    assert open_to_others == []


SECRET = 'pa/ss+w "rd\u00e9'


def test_credentials_echoed_by_the_server_are_redacted_everywhere(tmp_path, start_emulator):
    import base64
    import sqlite3
    from urllib.parse import quote, quote_plus

    items = generate_items(60)
    emulator = start_emulator(items, api_key_id="key-id-123", api_secret=SECRET)
    keep = set(list(items)[:50])
    source = write_csv(tmp_path / "exports" / "products.csv", sorted(keep))
    config = write_config(tmp_path, job_toml("products", emulator.base_url, source,
                                             emulator=emulator, limits={"max_attempts": 2}))
    pair = base64.b64encode(f"key-id-123:{SECRET}".encode()).decode()
    emulator.queue_faults("bulk", ["echo", "echo"])  # both attempts of the first batch
    ran = run_reconciler("--config", config, "run")
    assert ran.returncode == 4, ran.stderr
    folder = report_of(ran, tmp_path)
    outcomes = (folder / "outcomes.csv").read_text(encoding="utf-8")
    assert "bad request from" in outcomes and "***" in outcomes  # the server's text, masked
    with sqlite3.connect(tmp_path / "state" / "journal.sqlite3") as db:
        journal = "\n".join(str(row) for row in db.execute("SELECT * FROM items")) + "\n".join(
            str(row) for row in db.execute("SELECT summary FROM runs"))
    everything = "\n".join([ran.stdout, ran.stderr, outcomes, journal,
                            *(p.read_text(encoding="utf-8", errors="replace")
                              for p in folder.iterdir())])
    for form in (SECRET, quote(SECRET, safe=""), quote_plus(SECRET), pair,
                 json.dumps(SECRET)[1:-1], "key-id-123"):
        assert form not in everything, form
    assert_accounted(ran, tmp_path, emulator, keep)


def test_old_report_folders_are_pruned_and_no_empty_backup_is_written(hostile, tmp_path):
    import os
    import time

    _emulator, config, _items, _keep = hostile
    first = run_reconciler("--config", config, "run")
    assert first.returncode == 0, first.stderr
    old = report_of(first, tmp_path)
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    backups = tmp_path / "state" / "backups" / "products"
    before = sorted(p.name for p in backups.iterdir())
    second = run_reconciler("--config", config, "run")  # nothing left to delete
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[0] == "products: 0 deleted, 0 not deleted"
    assert not old.exists() and report_of(second, tmp_path).is_dir()  # report_retention 30d
    assert sorted(p.name for p in backups.iterdir()) == before  # no empty backup, no leftovers


NOT_JSON = {"status": 200, "raw": "{\"success\": tru"}
SWEEP = [
    # (name, route, faults, exit code, what the first line of the run says)
    ("bulk-bad-json", "bulk", [NOT_JSON] * 2, 4, "not deleted"),
    ("bulk-not-a-list", "bulk", [{"body": {"success": True}}], 4, "not deleted"),
    ("bulk-short", "bulk", ["short"], 4, "not deleted"),
    ("bulk-wrong-entry", "bulk", [{"body": [{"success": "yes"}] * 5}], 4, "not deleted"),
    ("bulk-null-entries", "bulk", [{"body": [None] * 5}], 4, "not deleted"),
    ("bulk-500s", "bulk", [500, 500], 4, "not deleted"),
    ("bulk-reset", "bulk", ["reset"], 0, " 0 not deleted"),
    ("bulk-reset-after", "bulk", ["reset-after"], 0, " 0 not deleted"),
    ("bulk-echo", "bulk", ["echo"], 0, " 0 not deleted"),
    ("bulk-400-once", "bulk", [{"status": 400, "body": {"error": "Invalid JSON"}}], 0,
     " 0 not deleted"),
    ("bulk-400-always", "bulk", [{"status": 400, "body": {"error": "Invalid JSON"}}] * 3, 4,
     "not deleted"),
    ("bulk-huge-retry-after", "bulk",
     [{"status": 429, "headers": {"Retry-After": "99999999"}}], 4, "not deleted"),
    ("bulk-bad-retry-after", "bulk",
     [{"status": 429, "headers": {"Retry-After": "soon"}}], 0, " 0 not deleted"),
    ("list-total-null", "list", [{"body": {"success": True, "data": [], "matched": 0,
                                          "total": None}}], 1,
     "list items: answer field 'total' is null, expected a count"),
    ("list-data-not-list", "list", [{"body": {"success": True, "data": "x", "total": 1}}], 1,
     "list items: answer has no 'data' list"),
    ("list-bad-json", "list", [NOT_JSON] * 2, 1, "malformed JSON in the answer"),
    ("list-500s", "list", [503, 503], 1, "list items: HTTP 503"),
    ("list-403", "list", [{"status": 403, "body": {"errors": ["invalid secret"]}}], 2,
     "list items: HTTP 403: invalid secret"),
    ("list-null-ids", "list", [{"body": {"success": True, "matched": 2, "total": 2, "data": [
        {"item_id": None}, {"item_id": 5}]}}], 0, "0 deleted, 0 not deleted"),
]


@pytest.mark.parametrize(("route", "faults", "code", "says"),
                         [case[1:] for case in SWEEP], ids=[case[0] for case in SWEEP])
def test_sweep_of_faulty_answers(tmp_path, start_emulator, route, faults, code, says):
    items = generate_items(60)
    emulator = start_emulator(items)
    keep = set(list(items)[:40])
    source = write_csv(tmp_path / "exports" / "products.csv", sorted(keep))
    config = write_config(tmp_path, job_toml(
        "products", emulator.base_url, source, emulator=emulator,
        limits={"max_attempts": 2, "max_batch_ids": 5}))
    emulator.queue_faults(route, faults)
    ran = run_reconciler("--config", config, "run", timeout=90)
    assert ran.returncode == code, ran.stderr[-2000:]
    output = ran.stdout if code in (0, 4) else ran.stderr
    first = next(x for x in output.splitlines() if x.startswith("products: "))
    assert says in first, first
    assert len([x for x in ran.stderr.splitlines() if not x.startswith("{")]) <= 1  # one line
    assert "None" not in (report_of(ran, tmp_path) / "outcomes.csv").read_text()
    states = assert_accounted(ran, tmp_path, emulator, keep)
    summary = json.loads((report_of(ran, tmp_path) / "summary.json").read_text())
    assert len([s for s in states.values() if s != "skipped"]) == summary["to_delete"]
    if code == 0:
        assert summary["deleted"] == summary["to_delete"]
    if route == "list" and code != 0:
        assert emulator.stats.bulk_delete_requests == 0  # nothing deleted on a bad listing
