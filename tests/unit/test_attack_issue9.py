"""Hostile QA of issue 9, pure functions: see tests/integration/test_attack_issue9.py."""

from __future__ import annotations

from reconciler.config import IdFile
from reconciler.sources.reader import read_source


def test_a_quoted_header_spanning_lines_is_read_as_any_csv_reader_would(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b'"ti\ntle",item_id\nx,a\ny,b\n')
    assert read_source(IdFile(path)).ids.to_pylist() == ["a", "b"]


def test_the_way_past_a_near_match_refusal_names_a_real_key():
    from reconciler.cli.console import refusal_lines

    summary = {"gates": [{"gate": "near_match", "passed": False, "detail": "50 ids ...",
                          "near_matches": 50, "max_near_match_share": 0.001}]}
    way_past = refusal_lines(summary, "products", None)[-1]
    assert "max_near_match_share" in way_past
    assert "change near_match " not in way_past
