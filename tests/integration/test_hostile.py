"""A hostile environment: faulty answers and broken surroundings, each ending in one line.

Every case runs a real ``reconciler`` process and asserts what the user sees: no
traceback, the contract's exit code, every planned id in exactly one final state, and
nothing deleted that was not planned.
"""

from __future__ import annotations

import csv
import json
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
