"""Round 6 of the hostile QA of issue 9, as unit tests: the spellings a lossy re-encoding
or an escaping feed makes of an id (see tests/integration/test_attack_round6.py)."""

from __future__ import annotations

import pytest

from tests.unit.test_near_match import near


@pytest.mark.parametrize(("to_delete", "source", "ids", "kinds"), [
    # Letters a decoder could not read, replaced by U+FFFD (per byte, or per sequence).
    (["caf\u00e9-1"], ["caf\ufffd-1"], ["caf\u00e9-1"], {"encoding": 1}),
    (["caf\u00e9-1"], ["caf\ufffd\ufffd-1"], ["caf\u00e9-1"], {"encoding": 1}),
    # A charset that cannot hold them: "?" per letter, or per UTF-8 byte.
    (["caf\u00e9-1", "\u65e5\u672c-1"], ["caf?-1", "??-1"], ["caf\u00e9-1", "\u65e5\u672c-1"],
     {"encoding": 2}),
    (["caf\u00e9-1"], ["caf??-1"], ["caf\u00e9-1"], {"encoding": 1}),
    # UTF-8 read as Windows-1252 twice; accents stripped; XML and HTML escapes.
    (["caf\u00e9-1"], ["caf\u00c3\u0192\u00c2\u00a9-1"], ["caf\u00e9-1"], {"encoding": 1}),
    (["Caf\u00e9-1"], ["Cafe-1"], ["Caf\u00e9-1"], {"encoding": 1}),
    (["at&t-1", "a<b>-1", "o'neil-1"], ["at&amp;t-1", "a&lt;b&gt;-1", "o&#x27;neil-1"],
     ["a<b>-1", "at&t-1", "o'neil-1"], {"encoding": 3}),
    (["caf\u00e9-1", "caf\u00e9&co"], ["caf&#233;-1", "caf\u00e9&amp;co"],
     ["caf\u00e9&co", "caf\u00e9-1"], {"encoding": 2}),
    # Taken from a URL: percent-encoded (or a space as "+").
    (["caf\u00e9-1", "ab 001", "ab 002"], ["caf%C3%A9-1", "ab%20001", "ab+002"],
     ["ab 001", "ab 002", "caf\u00e9-1"], {"encoding": 3}),
    # A decimal id read as a number and written back: its trailing zeros dropped.
    (["100.10", "7.50", "3.10"], ["100.1", "7.5", "3.1000"], ["100.10", "3.10", "7.50"],
     {"number": 3}),
    # Ids a spreadsheet read as dates (month-day or day-month; a month's name and a day).
    (["3-12", "4/7", "MAR1", "SEPT2", "10-30"], ["12-Mar", "04-Jul", "1-Mar", "2-Sep",
                                                "Oct-30"],
     ["10-30", "3-12", "4/7", "MAR1", "SEPT2"], {"spreadsheet": 5}),
    (["13-40", "sku-1", "0-0"], ["13-40x", "1-Sku", "0-Jan"], [], {}),
    # Not lossy spellings: other ids, and a no-break space is whitespace only.
    (["cafe-1", "caf\u00e9-2", "at&t-2", "ab\u00a0001"], ["caf\u00e9-1", "caf-2", "att-2",
                                                         "ab 001"],
     ["ab\u00a0001"], {"whitespace": 1}),
])
def test_lossy_and_escaped_spellings_are_near_matches(to_delete, source, ids, kinds):
    found, counted = near(to_delete, source)
    assert (sorted(found), counted) == (ids, kinds)


def test_the_last_look_finds_ids_in_a_parquet_files_lists_and_integers(tmp_path):
    """A ``variant_ids`` list column, an int ``parent_id`` and a padded ``replaced_by``
    hold ids to delete; a float column and the id column itself are not looked at."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reconciler.core.settings import IdFile
    from reconciler.sources.lastlook import in_other_columns
    from reconciler.sources.reader import read_source

    path = tmp_path / "products.parquet"
    pq.write_table(pa.table({
        "item_id": ["a", "b"],
        "variant_ids": pa.array([["v-1", "v-2"], None], pa.large_list(pa.string())),
        "parent_id": pa.array([7, None], pa.int32()),
        "replaced_by": [" r-1\u200b", ""],
        "price": [8.0, 9.5],
        "variants": pa.array([[{"item_id": "s-1", "size": 1.0}], [{"item_id": "s-2",
                                                                   "size": 2.0}]]),
        "brand": pa.array([{"id": 42, "name": "b-1"}, None]),
    }), path)
    spec = IdFile(path=path, id_column="item_id")
    wanted = pa.array(["v-2", "7", "r-1", "8", "9.5", "a", "x", "s-2", "42", "b-1", "2"],
                      pa.string())
    found = in_other_columns(spec, read_source(spec), wanted)
    assert found.to_pylist() == ["v-2", "7", "r-1", "s-2", "42", "b-1"]


def test_windows_1252_cells_in_other_columns_are_read_with_replacement(tmp_path):
    """Titles in Windows-1252 beside ASCII ids: the last look reads them (an id found
    whole elsewhere, none in a cell with a byte that is not UTF-8), and rows a stray quote
    swallowed into such a title are still refused, naming the row and column."""
    import pyarrow as pa

    from reconciler.core.errors import SourceError
    from reconciler.core.settings import IdFile
    from reconciler.sources.lastlook import in_other_columns
    from reconciler.sources.reader import read_source

    path = tmp_path / "products.csv"
    path.write_bytes(b"item_id,title,replaced_by\na,caf\xe9,r-1\nb,x-2\xe9,\n")
    spec = IdFile(path=path, id_column="item_id")
    found = in_other_columns(spec, read_source(spec), pa.array(["r-1", "x-2", "caf"]))
    assert found.to_pylist() == ["r-1"]
    path.write_bytes(b'item_id,title\na,"caf\xe9\nb,x\nc,y"\nd,ok\n')
    with pytest.raises(SourceError) as refused:
        read_source(spec)
    assert str(refused.value) == (
        f"{path}: row 2: column 'title' holds 2 line(s) that look like rows (the first: "
        "'b,x'); a stray quote swallowed them? Their ids would look missing")


def test_placeholders_for_a_missing_id_are_counted_apart_from_empty_ids():
    import pyarrow as pa

    from reconciler.core.safety import placeholder_ids

    ids = ["#N/A", " nan ", "", "   ", "\u00a0", "NULL", "None", None, "<NA>", "NaT",
           "#VALUE!", "n/a", "(null)", " " * 30, "-", "?", "\u2014",
           # Ids, not placeholders: a word that starts like one, a country code, a long id.
           "Nancy", "NA", "nullable-1", "none-such-item-x", "sku-1", "nul", "-1", "?x"]
    assert placeholder_ids(pa.array(ids, pa.string())) == (15, "#N/A")
    assert placeholder_ids(pa.array(ids, pa.large_string()).slice(17)) == (0, None)
    assert placeholder_ids(pa.array(["x"] * 3 + ["nan"], pa.string()).slice(1)) == (1, "nan")


def test_a_parquet_page_damaged_on_disk_is_refused_by_its_checksum(tmp_path):
    """An uncompressed Parquet file with page checksums (Spark's default) whose bytes were
    damaged: read without the check, ``sku-120000`` became ``sku-XXXX00``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reconciler.core.errors import SourceError
    from reconciler.core.settings import IdFile
    from reconciler.sources.reader import read_source

    path = tmp_path / "products.parquet"
    pq.write_table(pa.table({"item_id": [f"sku-{n:06d}" for n in range(200_000)]}), path,
                   row_group_size=50_000, compression="none", write_page_checksum=True)
    data = bytearray(path.read_bytes())
    at = data.find(b"sku-120000")
    data[at + 4:at + 8] = b"XXXX"
    path.write_bytes(bytes(data))
    with pytest.raises(SourceError) as refused:
        read_source(IdFile(path=path))
    assert str(refused.value) == (
        f"{path}: cannot read: a data page is damaged (its CRC checksum does not match)")


def _decimal_ids():
    import decimal

    import pyarrow as pa

    return pa.array([decimal.Decimal("123"), decimal.Decimal("124")], pa.decimal128(12, 0))


@pytest.mark.parametrize(("name", "column", "message"), [
    # A warehouse's NUMERIC(12,0) id: its leading zeros are gone, and it is no string.
    ("decimal", lambda: {"item_id": _decimal_ids()},
     "column 'item_id' has type decimal128(12, 0); ids must be strings or integers"),
    # The id nested in a struct of the same name, or only inside another struct.
    ("struct", lambda: {"item_id": [{"id": "a"}, {"id": "b"}]},
     "column 'item_id' has type struct<id: string>; ids must be strings or integers"),
    ("nested_only", lambda: {"product": [{"item_id": "a"}, {"item_id": "b"}]},
     "no column 'item_id' (columns: product)"),
    ("list", lambda: {"item_id": [["a"], ["b"]]},
     "column 'item_id' has type list<element: string>; ids must be strings or integers"),
])
def test_parquet_id_columns_of_other_shapes_are_refused_with_one_line(
        tmp_path, name, column, message):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reconciler.core.errors import SourceError
    from reconciler.core.settings import IdFile
    from reconciler.sources.reader import read_source

    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.table(column()), path)
    with pytest.raises(SourceError) as refused:
        read_source(IdFile(path=path))
    assert str(refused.value) == f"{path}: {message}"
