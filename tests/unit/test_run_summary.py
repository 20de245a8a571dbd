"""summary.json, typed: assembled once at the edge, the same keys, values and order."""

from __future__ import annotations

import pytest

from reconciler.runs.summary import RunSummary

RECORDED = {
    "job": "products", "run_id": "20260101T000000Z-abcdef", "dry_run": False,
    "backend": "bloomreach", "catalog_id": "c", "target": "0123456789ab", "source_ids": 9,
    "remote_ids": 10, "inventory_complete": True, "to_delete": 1, "skipped": {"protected": 1},
    "deleted": 1, "failed": 0, "unknown": 0, "not_sent": 0,
    "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01Z",
    "exit_code": 0, "action": "run", "inventory": {"source": "api", "requests": 1},
    "backup": {"path": "b.jsonl.gz", "records": 1, "read_back": 0}, "run_seconds": 1.0,
}


def test_the_summary_holds_what_was_recorded_in_its_order() -> None:
    summary = RunSummary.assemble(RECORDED)
    assert summary.deleted == 1 and summary.action == "run" and summary.exit_code == 0
    assert summary.details["backup"]["read_back"] == 0
    assert list(summary.as_json().items()) == list(RECORDED.items())


@pytest.mark.parametrize(("key", "value", "line"), [
    ("exit_code", None, "summary.json: 'exit_code' is NoneType, not int"),
    ("deleted", True, "summary.json: 'deleted' is bool, not int"),
    ("dry_run", 0, "summary.json: 'dry_run' is int, not bool"),
    ("skipped", [], "summary.json: 'skipped' is list, not dict"),
])
def test_a_contract_key_of_the_wrong_type_is_a_bug_named_by_its_key(key, value, line) -> None:
    with pytest.raises(TypeError) as caught:
        RunSummary.assemble({**RECORDED, key: value})
    assert str(caught.value) == line


def test_a_missing_contract_key_is_named() -> None:
    recorded = {k: v for k, v in RECORDED.items() if k != "finished_at"}
    with pytest.raises(TypeError) as caught:
        RunSummary.assemble(recorded)
    assert str(caught.value) == "summary.json: 'finished_at' missing"
