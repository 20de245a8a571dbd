"""``reconciler check --probe``: confirms the emulator's default semantics, reports the
others contradicted (exit 1), as a table or as JSON."""

from __future__ import annotations

import json

import pytest

from reconciler.emulator import generate_items
from reconciler.emulator.adobe_target import AdobeTargetEmulator, AdobeTargetSettings
from tests.helpers import job_toml, run_reconciler, toml_value, write_config, write_csv

pytestmark = pytest.mark.integration


def config_for(tmp_path, emulator):
    source = write_csv(tmp_path / "s.csv", ["SKU-000001"])
    return write_config(tmp_path, job_toml("products", emulator.base_url, source,
                                           emulator=emulator))


def test_probe_confirms_the_default_semantics(tmp_path, start_emulator):
    emulator = start_emulator(generate_items(1500))
    result = run_reconciler("--config", config_for(tmp_path, emulator), "check", "--probe",
                            "--format", "json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)["jobs"]["products"]["assumptions"]
    status = {a["name"]: a["status"] for a in found}
    assert status == {
        "prefix_query_is_case_sensitive_prefix": "confirmed",
        "item_id_order_is_codepoint": "confirmed",
        "matched_and_total_counts_agree": "confirmed",
        "bulk_delete_body_is_array_of_ids": "unknown",
    }
    assert all(a["evidence"] for a in found)
    assert emulator.stats.bulk_delete_requests == 0 and emulator.stats.list_requests <= 4


@pytest.mark.parametrize("semantics", ["prefix-ci", "substring"])
def test_probe_reports_other_semantics_contradicted(tmp_path, start_emulator, semantics):
    emulator = start_emulator(generate_items(1500), query_semantics=semantics)
    config = config_for(tmp_path, emulator)
    result = run_reconciler("--config", config, "check", "--probe", "--format", "json")
    assert result.returncode == 1, result.stderr
    found = json.loads(result.stdout)["jobs"]["products"]["assumptions"]
    prefix = next(a for a in found if a["name"] == "prefix_query_is_case_sensitive_prefix")
    assert prefix["status"] == "contradicted"
    assert "returned" in prefix["evidence"]
    text = run_reconciler("--config", config, "check", "--probe")
    assert text.returncode == 1
    row = next(line for line in text.stdout.splitlines()
               if "prefix_query_is_case_sensitive_prefix" in line)
    assert "contradicted" in row
    assert emulator.stats.bulk_delete_requests == 0


def test_probe_adobe_target(tmp_path, serve):
    emulator = serve(AdobeTargetEmulator({1: [f"e{n:03d}" for n in range(10)]},
                                         AdobeTargetSettings(window_seconds=1.0)))
    s = emulator.settings
    source = write_csv(tmp_path / "s.csv", ["e001"])
    target = {"backend": "adobe-target", "base_url": emulator.base_url, "tenant": s.tenant,
              "environment": 1, "api_key": s.api_key, "token": s.token}
    text = (f"[jobs.recs.source]\npath = {toml_value(source)}\n[jobs.recs.target]\n"
            + "".join(f"{k} = {toml_value(v)}\n" for k, v in target.items()))
    result = run_reconciler("--config", write_config(tmp_path, text), "check", "--probe",
                            "--format", "json")
    assert result.returncode == 0, result.stderr
    status = {a["name"]: a["status"]
              for a in json.loads(result.stdout)["jobs"]["recs"]["assumptions"]}
    assert status["catalogsearch_start_is_one_based"] == "confirmed"
    assert status["catalogsearch_hits_carry_id"] == "confirmed"
    assert emulator.stats.delete_requests == 0
