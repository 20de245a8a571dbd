"""The listing walk through the emulator under each query semantics: exact, or reported
incomplete, and never a delete of an id the source holds or the catalog lacks."""

from __future__ import annotations

import json

import pytest

from reconciler.core.errors import EXIT_OK
from reconciler.runs.runner import RunRequest, run_job
from tests.helpers import emulator_config

pytestmark = pytest.mark.integration

IDS = [f"{c}{n:03d}" for c in "aAbBcC" for n in range(45)] + ["a", "A", "ab", "abc"]


@pytest.mark.parametrize("semantics", ["prefix", "prefix-ci", "substring"])
def test_run_under_each_query_semantics(tmp_path, start_emulator, semantics):
    emulator = start_emulator(IDS, list_window=20, query_semantics=semantics,
                              bulk_requests_per_window=50)
    source = [i for i in IDS if not i.endswith("7")]
    config = emulator_config(
        tmp_path, emulator, source, limits={"list_window": 20, "list_page_size": 20},
        target_extra={"prefix_alphabet": "abcABC0123456789"},
    )
    job = next(iter(config.jobs.values()))
    result = run_job(config, job, RunRequest(dry_run=False))
    assert result.exit_code == EXIT_OK, result.message
    summary = json.loads((result.report_dir / "summary.json").read_text())
    verdicts = {a["name"]: a for a in summary["assumptions"]}
    prefix = verdicts["prefix_query_is_case_sensitive_prefix"]
    deleted = set(emulator.stats.deleted)
    assert deleted <= set(IDS) - set(source)  # never an id the source holds
    if semantics == "prefix":
        assert {a["status"] for a in summary["assumptions"]} == {"confirmed"}
        assert summary["inventory_complete"] is True
    else:
        assert prefix["status"] == "contradicted"
        assert "not starting with it" in prefix["evidence"]
    if summary["inventory_complete"]:
        assert summary["inventory"]["found"] == len(IDS)
        assert deleted == set(IDS) - set(source)
