"""Reading a backup whole or not at all (``backups.backed_up``): restore and resume trust
only what it returns."""

from __future__ import annotations

import gzip
import json

import pytest

from reconciler.store import backups


def _write(path, lines: bytes) -> None:
    path.write_bytes(gzip.compress(lines))


def test_a_whole_backup_gives_each_id_once_with_its_properties(tmp_path):
    path = tmp_path / "b.jsonl.gz"
    _write(path, b"".join(json.dumps(r).encode() + b"\n" for r in [
        {"item_id": "a", "properties": {"t": 1}}, {"item_id": "b", "properties": None},
        {"item_id": "a", "properties": {"t": 2}}]))
    found = backups.backed_up(backups.read_records(path), str(path), expected=3)
    assert found == {"a": {"t": 1}, "b": {}}


@pytest.mark.parametrize(("data", "readable", "why"), [
    (b"", 0, "EOFError: the file is empty"),
    (gzip.compress(b'{"item_id": "a"}\n')[:-6], 1, "EOFError: Compressed file ended"),
    (b"not gzip at all", 0, "BadGzipFile: Not a gzipped file"),
    (gzip.compress(b'{"item_id": "a"}\n{"no_id": 1}\n'), 1, "KeyError: 'item_id'"),
    (gzip.compress(b'{"item_id": "a"}\n\xff\xfe\n'), 0, "UnicodeDecodeError"),
    (gzip.compress(b'"text"\n'), 0, "TypeError"),
], ids=["empty", "cut_short", "not_gzip", "no_id", "not_utf8", "not_a_record"])
def test_a_damaged_backup_says_where_and_how_much_was_readable(tmp_path, data, readable, why):
    path = tmp_path / "b.jsonl.gz"
    path.write_bytes(data)
    with pytest.raises(backups.BackupDamaged) as caught:
        backups.backed_up(backups.read_records(path), str(path))
    assert str(caught.value).startswith(
        f"{path}: the backup is damaged ({readable} readable records; {why}")
    assert len(caught.value.found) == readable


def test_fewer_records_than_its_run_wrote_is_damaged(tmp_path):
    path = tmp_path / "b.jsonl.gz"
    _write(path, b'{"item_id": "a"}\n')
    with pytest.raises(backups.BackupDamaged, match=r"\(1 readable records; its run wrote 2\)"):
        backups.backed_up(backups.read_records(path), str(path), expected=2)
