from __future__ import annotations

import gzip

import pyarrow as pa
import pytest

from reconciler.config import IdFile
from reconciler.errors import EXIT_REFUSED, SourceError
from reconciler.source import read_ids
from tests.helpers import write_csv, write_parquet

AWKWARD = ["00123", "1e5", "NA", "null", "nan", "N/A", " padded ", "comma,id", "ünïcødé", "a\"q"]


def read(path, column="item_id"):
    return read_ids(IdFile(path, column)).to_pylist()


def source_error(path, column="item_id") -> str:
    with pytest.raises(SourceError) as caught:
        read_ids(IdFile(path, column))
    assert caught.value.exit_code == EXIT_REFUSED
    return str(caught.value)


def test_csv_ids_are_exact_strings(tmp_path):
    assert read(write_csv(tmp_path / "s.csv", AWKWARD)) == AWKWARD


def test_gzipped_csv(tmp_path):
    assert read(write_csv(tmp_path / "s.csv.gz", AWKWARD, gz=True)) == AWKWARD


def test_bom_is_ignored_and_empty_cells_are_empty_ids(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffitem_id,x\n00123,1\n,2\nNA,3\n".encode())
    assert read(path) == ["00123", "", "NA"]


def test_other_id_column(tmp_path):
    assert read(write_csv(tmp_path / "s.csv", ["a"], column="sku"), "sku") == ["a"]


def test_parquet_strings_nulls_dictionaries_and_integers(tmp_path):
    assert read(write_parquet(tmp_path / "a.parquet", ["00123", None, "NA"])) == ["00123", "", "NA"]
    dictionary = pa.array(["x", "y", "x"]).dictionary_encode()
    assert read(write_parquet(tmp_path / "d.parquet", dictionary)) == ["x", "y", "x"]
    assert read(write_parquet(tmp_path / "i.parquet", [123, 7])) == ["123", "7"]


def test_missing_file(tmp_path):
    path = tmp_path / "gone.csv"
    assert source_error(path) == f"{path}: file not found"


def test_missing_column_names_the_columns(tmp_path):
    csv_path = write_csv(tmp_path / "s.csv", ["a"])
    assert source_error(csv_path, "sku") == f"{csv_path}: no column 'sku' (columns: item_id, title)"
    pq_path = write_parquet(tmp_path / "s.parquet", ["a"])
    assert source_error(pq_path, "sku") == f"{pq_path}: no column 'sku' (columns: item_id)"


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("item_id\ncaf\u00e9\n".encode("latin-1"))
    assert source_error(path) == f"{path}: cannot read: not valid UTF-8 text"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert source_error(path) == f"{path}: cannot read: the file is empty (no header row)"


def test_corrupt_gzip_and_parquet(tmp_path):
    gz = tmp_path / "bad.csv.gz"
    gz.write_bytes(gzip.compress(b"item_id\na\n")[:12])
    assert source_error(gz).startswith(f"{gz}: cannot read: ")
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(b"item_id\na\n")
    assert source_error(fake) == f"{fake}: cannot read: not a Parquet file"


def test_float_ids_are_refused(tmp_path):
    path = write_parquet(tmp_path / "f.parquet", [1.5, 100000.0])
    assert source_error(path) == (
        f"{path}: column 'item_id' has type double; ids must be strings or integers"
    )


def test_ragged_csv_is_a_source_error(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("item_id,title\na,1\nb,2,3\n", encoding="utf-8")
    assert source_error(path).startswith(f"{path}: cannot read: CSV parse error")
