"""Hostile QA of issue 9, pure functions: see tests/integration/test_attack_issue9.py."""

from __future__ import annotations

import pytest

from reconciler.config import IdFile
from reconciler.source import read_source


@pytest.mark.xfail(strict=True, reason="the header is split at its first line break, so a "
                   "quoted header spanning lines is refused as \"no column 'item_id' "
                   "(columns: ti)\" although the column is there")
def test_a_quoted_header_spanning_lines_is_read_as_any_csv_reader_would(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b'"ti\ntle",item_id\nx,a\ny,b\n')
    assert read_source(IdFile(path)).ids.to_pylist() == ["a", "b"]
