from __future__ import annotations

import gzip

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reconciler.core.errors import EXIT_REFUSED, SourceError
from reconciler.core.settings import IdFile
from reconciler.sources.reader import read_ids, read_source
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
    assert source_error(path) == (f"{path}: cannot read: row 2: the id is not valid UTF-8 "
                                  "text (is the export Latin-1 or Windows-1252, or cut short?)")


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
    assert source_error(fake) == (
        f"{fake}: cannot read: not a Parquet file (or cut short: its footer is missing)")


def test_float_ids_are_refused(tmp_path):
    path = write_parquet(tmp_path / "f.parquet", [1.5, 100000.0])
    assert source_error(path) == (
        f"{path}: column 'item_id' has type double; ids must be strings or integers"
    )


def test_ragged_csv_is_a_source_error(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("item_id,title\na,1\nb,2,3\n", encoding="utf-8")
    assert source_error(path).startswith(f"{path}: cannot read: CSV parse error")


# -- strict reads: every misread that could make live ids look missing is refused ----------

REFUSED_CSV = [
    ("stray_quote_one_column", b'item_id\na\n"b\nc\nd\n',
     "row 3: a quoted value is never closed (unbalanced '\"'); it would swallow every row "
     "after it"),
    ("stray_quote_closed_later", b'item_id\na\n"b\nc\nd"\ne\n',
     "row 3: the id 'b\\nc\\nd' contains a line break (an unbalanced quote?); ids cannot "
     "hold one"),
    ("stray_quote_in_last_column", b'item_id,title\n1,x\n2,"Big\n3,y\n4,z\n',
     "the row starting '2,\"Big': a quoted value is never closed (unbalanced '\"'); it "
     "would swallow every row after it"),
    ("stray_quote_no_final_newline", b'item_id,title\n1,x\n2,"Big\n3,y\n4,z',
     "the row starting '2,\"Big': a quoted value is never closed (unbalanced '\"'); it "
     "would swallow every row after it"),
    ("stray_quote_in_middle_column", b'item_id,title,p\n1,x,1\n2,"Big,1\n3,y,1\n',
     "the row starting '2,\"Big,1': a quoted value is never closed (unbalanced '\"'); it "
     "would swallow every row after it"),
    ("carriage_return_in_id", b'item_id,title\r\n1,x\r\n"2\r",y\r\n',
     "row 3: the id '2\\r' contains a carriage return (an unbalanced quote?); ids cannot "
     "hold one"),
    ("nul_in_id", b"item_id,title\n1\x00,x\n2,y\n",
     "row 2: the id '1\\x00' contains a NUL character; ids cannot hold one"),
    ("duplicated_id_column", b"item_id,title,item_id\n1,2,3\n",
     "the header names column 'item_id' 2 times (columns 1, 3); which one holds the ids is "
     "ambiguous"),
    ("latin1", "item_id\ncaf\u00e9\n".encode("latin-1"),
     "cannot read: row 2: the id is not valid UTF-8 text (is the export Latin-1 or "
     "Windows-1252, or cut short?)"),
    ("utf16", "item_id\nabc\n".encode("utf-16"),
     "cannot read: not CSV text but UTF-16 text (export it as UTF-8)"),
    ("ragged", b"item_id,title\na,1\nb,2,3\n",
     "cannot read: CSV parse error: Expected 2 columns, got 3: b,2,3"),
    ("semicolons", b"item_id;title\na;1\n", "no column 'item_id' (columns: item_id;title)"),
    ("header_repeated_mid_file", b"item_id\na\nitem_id\nb\n",
     "row 3: the id 'item_id' is a column name: the header repeated mid-file (two exports "
     "concatenated?); column 'item_id' would not hold the ids after it"),
    ("header_repeated_in_another_order", b"item_id,title\na,x\ntitle,item_id\ny,b\n",
     "row 3: the id 'title' is a column name: the header repeated mid-file (two exports "
     "concatenated?); column 'item_id' would not hold the ids after it"),
    # Two exports saved with a BOM and concatenated: the second header keeps its BOM.
    ("header_repeated_with_a_bom", b"item_id,title\na,x\n\xef\xbb\xbftitle,item_id\ny,b\n",
     "row 3: the id '\\ufefftitle' is a column name: the header repeated mid-file (two "
     "exports concatenated?); column 'item_id' would not hold the ids after it"),
    ("header_repeated_quoted_with_a_bom",
     b'item_id,title\na,x\n\xef\xbb\xbf"title","item_id"\ny,b\n',
     "row 3: the id '\\ufeff\"title\"' is a column name: the header repeated mid-file (two "
     "exports concatenated?); column 'item_id' would not hold the ids after it"),
    ("latin1_row_named", "item_id\na\nb\ncaf\u00e9\nd\n".encode("latin-1"),
     "cannot read: row 4: the id is not valid UTF-8 text (is the export Latin-1 or "
     "Windows-1252, or cut short?)"),
    ("utf16_without_bom", "item_id\nabc\n".encode("utf-16-le"),
     "cannot read: not valid UTF-8 text: it holds NUL bytes (UTF-16?) (in the header row)"),
    ("gzip_named_csv", gzip.compress(b"item_id\na\n", mtime=0),
     "cannot read: not CSV text but a gzip file (a .csv.gz name would read it)"),
    ("zip_named_csv", b"PK\x03\x04\x14\x00\x00\x00\x00\x00products.csvitem_id\na\n",
     "cannot read: not CSV text but a zip archive (a zipped export or an .xlsx workbook)"),
    # A stray quote in a title closed by one rows later; a backslash-escaped quote (\\").
    ("stray_quote_in_title_closed_later", b'item_id,title\na,"12 inch\nb,x\nc,24"\nd,y\n',
     "row 2: column 'title' holds 2 line(s) that look like rows (the first: 'b,x'); a stray "
     "quote swallowed them? Their ids would look missing"),
    ("backslash_escaped_quote", b'item_id,title\na,"12\\""\nb,x\nc,"24\\" TV"\nd,y\n',
     "row 2: column 'title' holds 2 line(s) that look like rows (the first: 'b,x'); a stray "
     "quote swallowed them? Their ids would look missing"),
    ("stray_quote_in_title_cr_only_lines", b'item_id,title\r1,"x\r2,y\r3,z"\r4,w\r',
     "row 2: column 'title' holds 2 line(s) that look like rows (the first: '2,y'); a stray "
     "quote swallowed them? Their ids would look missing"),
    ("stray_quote_before_the_id_column", b'title,item_id\n"x,1\ny,2\nz",3\nw,4\n',
     "row 2: column 'title' holds 1 line(s) that look like rows (the first: 'y,2'); a stray "
     "quote swallowed them? Their ids would look missing"),
    ("error_page_after_the_rows",
     b"item_id\na\nb\n<!DOCTYPE html>\n<html><body>500</body></html>\n",
     "row 4: the id '<!DOCTYPE html>' is HTML or XML: an error page written into the export? "
     "The rows it replaced would look missing"),
    # A quote closed in the wrong place (a quote then more text): Python's csv with
    # strict=True says "',' expected after '\"'"; Arrow takes the next row into the title.
    ("quote_closed_in_the_wrong_place", b'item_id,title\nid1,plain\nid2,"open\nid3,"q""q"\n'
     b"id4,x\n",
     "row 3: column 'title' holds 1 line(s) that look like rows (the first: 'id3,q\"\"q\"'); "
     "a stray quote swallowed them? Their ids would look missing"),
    ("parquet_named_csv", b"PAR1\x15\x04\x15\x00item_id\x00\n",
     "cannot read: not CSV text but a Parquet file (a .parquet name would read it)"),
]


@pytest.mark.parametrize(("name", "data", "message"), REFUSED_CSV,
                         ids=[c[0] for c in REFUSED_CSV])
def test_hostile_csv_is_refused_with_one_line(tmp_path, name, data, message):
    path = tmp_path / f"{name}.csv"
    path.write_bytes(data)
    error = source_error(path)
    assert error == f"{path}: {message}"
    assert "\n" not in error


ACCEPTED_CSV = [
    ("crlf", b"item_id,title\r\n1,x\r\n2,y\r\n", ["1", "2"], True),
    ("bare_cr", b"item_id\r1\r2\r", ["1", "2"], True),
    ("bom_crlf", b"\xef\xbb\xbfitem_id\r\n1\r\n", ["1"], True),
    ("quoted_comma_and_escaped_quotes", b'item_id,title\n"a""b","x,y"\n"c,d",x\n',
     ['a"b', "c,d"], True),
    ("multiline_title", b'item_id,title\n1,"a\nb"\n2,x\n', ["1", "2"], True),
    ("inch_mark_in_unquoted_title", b'item_id,title\n1,12" TV\n2,x\n', ["1", "2"], True),
    ("id_column_second", b'title,item_id\nx,1\n"y\nz",2\n', ["1", "2"], True),
    ("latin1_title_only", "item_id,t\n1,caf\u00e9\n".encode("latin-1"), ["1"], True),
    ("blank_lines", b"item_id\n1\n\n2\n\n", ["1", "2"], True),
    ("header_only", b"item_id,title\n", [], True),
    ("header_only_no_newline", b"item_id", [], False),
    ("last_row_without_newline", b"item_id,title\n1,x\n2,y", ["1", "2"], False),
    ("quoted_header_spanning_lines", b'"ti\ntle",item_id\nx,a\ny,b\n', ["a", "b"], True),
    ("header_starting_with_par1", b"PAR1,item_id\nx,a\n", ["a"], True),
    ("multiline_description_with_commas",
     b'item_id,title,desc\n1,x,"Soft cotton,\nmachine washable, 30C"\n2,y,"a\r\nb"\n',
     ["1", "2"], True),
]


@pytest.mark.parametrize(("name", "data", "ids", "final_newline"), ACCEPTED_CSV,
                         ids=[c[0] for c in ACCEPTED_CSV])
def test_awkward_but_valid_csv_is_read_exactly(tmp_path, name, data, ids, final_newline):
    path = tmp_path / f"{name}.csv"
    path.write_bytes(data)
    read = read_source(IdFile(path))
    assert read.ids.to_pylist() == ids
    assert read.final_newline is final_newline


def test_large_csv_crosses_blocks_and_keeps_every_row(tmp_path):
    ids = [f"SKU-{n:07d}" for n in range(150_000)]
    path = write_csv(tmp_path / "big.csv", ids)  # ~2.5 MB: several 1 MiB blocks
    assert read(path) == ids
    gz = write_csv(tmp_path / "big.csv.gz", ids, gz=True)
    assert read(gz) == ids


def test_truncated_gzip_is_refused(tmp_path):
    data = gzip.compress(b"item_id\n" + b"".join(b"id%06d\n" % i for i in range(100_000)))
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    assert source_error(path) == (
        f"{path}: cannot read: the gzip stream is cut short (truncated file)")


def test_truncated_parquet_is_refused(tmp_path):
    full = write_parquet(tmp_path / "full.parquet", [f"id{n}" for n in range(1000)])
    path = tmp_path / "cut.parquet"
    path.write_bytes(full.read_bytes()[:-100])
    assert source_error(path) == (
        f"{path}: cannot read: not a Parquet file (or cut short: its footer is missing)")


def test_parquet_with_a_duplicated_id_column_is_refused(tmp_path):
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])],
                                        names=["item_id", "item_id"]), path)
    assert source_error(path) == (
        f"{path}: the schema names column 'item_id' 2 times (columns 1, 2); which one holds "
        "the ids is ambiguous")


def test_parquet_id_with_a_line_break_is_refused(tmp_path):
    path = write_parquet(tmp_path / "nl.parquet", ["a", "b\nc"])
    assert source_error(path) == (
        f"{path}: row 2: the id 'b\\nc' contains a line break; ids cannot hold one")


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_file_rewritten_while_it_is_read_is_refused(tmp_path, monkeypatch, kind):
    import reconciler.sources.csvfile as csv_source
    import reconciler.sources.parquetfile as parquet_source

    path = (write_csv(tmp_path / "s.csv", ["a", "b"]) if kind == "csv"
            else write_parquet(tmp_path / "s.parquet", ["a", "b"]))
    real = csv_source.pacsv.read_csv if kind == "csv" else parquet_source.pq.read_table
    target = "reconciler.sources.csvfile.pacsv.read_csv" if kind == "csv" else \
        "reconciler.sources.parquetfile.pq.read_table"

    def rewritten_meanwhile(*args, **kwargs):
        table = real(*args, **kwargs)
        with path.open("ab") as out:
            out.write(b"more\n")
        return table

    monkeypatch.setattr(target, rewritten_meanwhile)
    assert source_error(path) == (
        f"{path}: the file changed while it was read (size, mtime or inode differ before and "
        "after); is the export still being written? Nothing was deleted")


def test_identity_is_taken_before_the_read(tmp_path):
    path = write_csv(tmp_path / "s.csv", ["a"])
    stat = path.stat()
    identity = read_source(IdFile(path)).identity
    assert (identity.size, identity.mtime_ns, identity.inode, identity.device) == (
        stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev)


def test_concatenated_gzip_members_are_all_read_and_garbage_is_refused(tmp_path):
    path = tmp_path / "multi.csv.gz"
    path.write_bytes(gzip.compress(b"item_id\na\nb\n") + gzip.compress(b"c\nd\n"))
    assert read(path) == ["a", "b", "c", "d"]
    plain = tmp_path / "plain.csv.gz"
    plain.write_bytes(b"item_id\na\n")
    assert source_error(plain) == (
        f"{plain}: cannot read: not a valid gzip file (corrupt, or not compressed)")


@pytest.mark.parametrize(("data", "other_columns_read"), [
    (b"item_id,t\n1,x\n2,y\n", False),
    (b"item_id,t\n1,x\n2,y\n\n\n", False),  # blank lines at the end: the usual export pays nothing
    (b"item_id,t\r\n1,x\r\n\r\n", False),
    (b"item_id,t\n1,x\n\n2,y\n", True),  # a blank line inside, or a value spanning lines
    (b'item_id,t\n1,"a\nb"\n', True),
    (b"item_id\n1\n\n2\n", False),  # one column: nothing else to hide rows in
])
def test_other_columns_are_read_only_when_the_line_breaks_call_for_it(
        tmp_path, monkeypatch, data, other_columns_read):
    import reconciler.sources.csvfile as csvfile

    calls = []
    monkeypatch.setattr(csvfile, "refuse_hidden_rows", lambda *args: calls.append(args))
    path = tmp_path / "s.csv"
    path.write_bytes(data)
    read_source(IdFile(path))
    assert bool(calls) is other_columns_read
