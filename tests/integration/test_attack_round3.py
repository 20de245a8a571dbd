"""Hostile QA of issue 9, round 3: exports, spellings, clocks and saved plans not tried in
``test_attack_issue9.py``, ``test_misreads.py`` or the source unit tests, with the DEFAULT
safety settings (an empty ``[safety]`` table).

Every test asserts the correct behaviour: none may delete an id that a person would say is
still in the source. Those marked ``xfail(strict=True)`` reproduce a finding that fails on
the code as it is; when a fix lands, the marker must go.

The usual shape: a catalog of 2,000 ids, of which 100 (5%, under every cap) are the ones an
accident misreads or misspells; runs an hour apart (past ``grace_runs`` 2 and
``grace_period`` 1h) must not delete them.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reconciler.config import load_config
from reconciler.core.clock import FakeClock
from reconciler.core.errors import EXIT_OK, EXIT_REFUSED
from reconciler.runs.runner import RunRequest, run_job
from reconciler.store import saved_plan
from tests.helpers import job_toml, run_reconciler, write_config
from tests.hostile import READS, assert_none_deleted, plan_saved_after_grace, runs_an_hour_apart

pytestmark = pytest.mark.integration

PLAIN = {f"sku-{n:04d}": {"title": f"Item {n}"} for n in range(1800)}
DASHED = {f"ab-{n:03d}": {"title": "dashed"} for n in range(100)}
ACCENTED = {f"caf\u00e9-{n:03d}": {"title": "coffee"} for n in range(100)}
ITEMS = {**PLAIN, **DASHED, **ACCENTED}  # 2,000
IDS = sorted(ITEMS)  # ab-*, café-*, sku-*
NUMERIC = {str(1_000_000 + 7 * n): {"title": "numeric"} for n in range(100)}  # 7 digits
LONG = {str(1_234_567_890_123_456_789 + 7_919 * n): {"title": "long"} for n in range(100)}
UPPER = {f"ITEM-{n:03d}": {"title": "upper"} for n in range(100)}




@pytest.fixture
def catalog(start_emulator):
    return start_emulator(ITEMS, bulk_requests_per_window=100)


def now_clock() -> FakeClock:
    return FakeClock(wall=datetime.now(UTC))


def configure(folder: Path, emulator, name: str = "products.csv"):
    """A default-safety job whose export is ``folder/exports/NAME`` (written by the test)."""
    source = folder / "exports" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    return load_config(write_config(folder, job_toml("products", emulator.base_url, source,
                                                     emulator=emulator, safety={},
                                                     limits=READS)))


def source_of(config) -> Path:
    return config.jobs["products"].source.path


def csv_text(ids, newline="\n", header="item_id,title") -> str:
    return newline.join([header, *(f"{i},Item {n}" for n, i in enumerate(ids))]) + newline


def one_column(ids, newline="\n") -> str:
    return newline.join(["item_id", *ids]) + newline


# -- 1. Exports that are not what their name says, or not UTF-8: refused, one line -----------


def _zipped(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("products.csv", text)
    return buffer.getvalue()


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _cut_mid_character(text: str) -> bytes:
    data = text.encode("utf-8")
    return data[:data.index("caf\u00e9-050".encode()) + 4]  # between the two bytes of "é"


NUL_TAIL = "'" + "\\x00" * 60 + "'..."
UTF8 = "(is the export Latin-1 or Windows-1252, or cut short?)"
REFUSED: dict[str, tuple[str, Callable[[], bytes], str]] = {
    # (file name, contents, what the user is told after "PATH: ")
    "utf16_with_bom": ("products.csv", lambda: csv_text(IDS).encode("utf-16"),
                       "cannot read: not CSV text but UTF-16 text (export it as UTF-8)"),
    "utf16le_without_bom": ("products.csv", lambda: csv_text(IDS).encode("utf-16-le"),
                            "cannot read: not valid UTF-8 text: it holds NUL bytes (UTF-16?) "
                            "(in the header row)"),
    "utf16be_without_bom": ("products.csv", lambda: csv_text(IDS).encode("utf-16-be"),
                            "cannot read: not valid UTF-8 text: it holds NUL bytes (UTF-16?) "
                            "(in the header row)"),
    # café-000 is row 102 (after the header and the 100 ab-* rows).
    "latin1_ids": ("products.csv", lambda: csv_text(IDS).encode("latin-1"),
                   f"cannot read: row 102: the id is not valid UTF-8 text {UTF8}"),
    "cp1252_en_dash_ids": (
        "products.csv", lambda: csv_text([i.replace("-", "\u2013") for i in IDS]).encode(
            "cp1252"), f"cannot read: row 2: the id is not valid UTF-8 text {UTF8}"),
    "cut_mid_character": ("products.csv", lambda: _cut_mid_character(one_column(IDS)),
                          f"cannot read: row 152: the id is not valid UTF-8 text {UTF8}"),
    "gzip_named_csv": ("products.csv", lambda: gzip.compress(csv_text(IDS).encode()),
                       "cannot read: not CSV text but a gzip file (a .csv.gz name would "
                       "read it)"),
    "gzip_twice": ("products.csv.gz",
                   lambda: gzip.compress(gzip.compress(csv_text(IDS).encode())),
                   "cannot read: not CSV text but a gzip file: it was compressed twice"),
    "zip_named_csv": ("products.csv", lambda: _zipped(csv_text(IDS)),
                      "cannot read: not CSV text but a zip archive (a zipped export or an "
                      ".xlsx workbook)"),
    "parquet_named_csv": ("products.csv",
                          lambda: _parquet_bytes(pa.table({"item_id": IDS})),
                          "cannot read: not CSV text but a Parquet file (a .parquet name "
                          "would read it)"),
    "csv_named_parquet": ("products.parquet", lambda: one_column(IDS).encode(),
                          "cannot read: not a Parquet file (or cut short: its footer is "
                          "missing)"),
    "parquet_cut_short": ("products.parquet",
                          lambda: _parquet_bytes(pa.table({"item_id": IDS}))[:-100],
                          "cannot read: not a Parquet file (or cut short: its footer is "
                          "missing)"),
    "parquet_binary_ids": ("products.parquet", lambda: _parquet_bytes(pa.table(
        {"item_id": pa.array([i.encode() for i in IDS], pa.binary())})),
        "column 'item_id' has type binary; ids must be strings or integers"),
    "html_error_page": ("products.csv", lambda: (
        b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
        b"<body><h1>502 Bad Gateway</h1></body></html>\n"),
        "no column 'item_id' (columns: <!DOCTYPE html>)"),
    "json_one_line": ("products.csv", lambda: json.dumps(
        [{"item_id": i} for i in IDS]).encode() + b"\n",
        # The names after the first start with a space: they are shown quoted.
        "no column 'item_id' (columns: [{\"item_id\": \"ab-000\"}, "
        + ", ".join(f"' {{\"item_id\": \"ab-00{n}\"}}'" for n in range(1, 10))
        + ", ... (2000 in all))"),
    "empty_file": ("products.csv", lambda: b"",
                   "cannot read: the file is empty (no header row)"),
    "tab_delimited": ("products.csv", lambda: csv_text(IDS).replace(",", "\t").encode(),
                      "no column 'item_id' (columns: 'item_id\\ttitle')"),
    "semicolon_delimited": ("products.csv", lambda: csv_text(IDS).replace(",", ";").encode(),
                            "no column 'item_id' (columns: item_id;title)"),
    "id_column_cased": ("products.csv", lambda: csv_text(IDS, header="Item_ID,title").encode(),
                        "no column 'item_id' (columns: Item_ID, title)"),
    "id_column_with_a_space": ("products.csv",
                               lambda: csv_text(IDS, header="item_id ,title").encode(),
                               "no column 'item_id' (columns: 'item_id ', title)"),
    "bom_twice": ("products.csv", lambda: ("\ufeff\ufeff" + csv_text(IDS)).encode(),
                  "no column 'item_id' (columns: '\\ufeffitem_id', title)"),
    "excel_sep_line": ("products.csv", lambda: ("sep=,\n" + csv_text(IDS)).encode(),
                       "no column 'item_id' (columns: sep=, )"),
    "nul_padded_after_a_crash": ("products.csv",
                                 lambda: one_column(IDS).encode() + b"\x00" * 4096,
                                 f"row 2002: the id {NUL_TAIL} contains a NUL character; ids "
                                 "cannot hold one"),
    # `cat a.csv b.csv` of two exports saved with a BOM, the second's columns in another order:
    # the second header's id cell is "\ufefftitle", not a column name, so it was read as data.
    "concatenated_with_a_bom": ("products.csv", lambda: (
        csv_text(IDS[:1900]) + "\ufeff" + "title,item_id\n"
        + "".join(f"Item {n},{i}\n" for n, i in enumerate(IDS[1900:]))).encode(),
        "row 1902: the id '\\ufefftitle' is a column name: the header repeated mid-file (two "
        "exports concatenated?); column 'item_id' would not hold the ids after it"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_misread_export_is_refused_and_deletes_nothing(tmp_path, catalog, case):
    name, contents, message = REFUSED[case]
    config = configure(tmp_path, catalog, name)
    source_of(config).write_bytes(contents())
    results = runs_an_hour_apart(config, now_clock())
    for result in results:
        assert result.exit_code == EXIT_REFUSED, result.summary
        assert result.summary["refused"] == f"{source_of(config)}: {message}"
    assert catalog.stats.bulk_delete_requests == 0 and len(catalog.ids()) == len(ITEMS)


@pytest.mark.parametrize("case", ["latin1_ids", "gzip_named_csv", "json_one_line"])
def test_the_cli_says_one_line_and_exits_3(tmp_path, catalog, case):
    name, contents, message = REFUSED[case]
    config = configure(tmp_path, catalog, name)
    source_of(config).write_bytes(contents())
    result = run_reconciler("--config", config.path, "run", "products")
    assert result.returncode == EXIT_REFUSED
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert lines == [f"products: {source_of(config)}: {message}"]
    assert catalog.stats.bulk_delete_requests == 0


def test_an_export_cut_by_an_error_page_deletes_nothing(tmp_path, catalog):
    """Fixed: a server that fails while it streams a one-column export writes its error page
    where the last 100 rows (5%) should be; each line of it was read as an id."""
    config = configure(tmp_path, catalog)
    page = ("<html>\n<head><title>500 Internal Server Error</title></head>\n<body>\n"
            "<h1>Internal Server Error</h1>\n</body>\n</html>\n")
    source_of(config).write_bytes((one_column(IDS[:1900]) + page).encode())
    results = runs_an_hour_apart(config, now_clock())
    assert [r.summary["refused"] for r in results] == [
        f"{source_of(config)}: row 1902: the id '<html>' is HTML or XML: an error page written "
        "into the export? The rows it replaced would look missing"] * 3
    assert_none_deleted(catalog, ITEMS, results)


def test_a_header_only_export_is_refused_by_min_ids(tmp_path, catalog):
    config = configure(tmp_path, catalog)
    source_of(config).write_bytes(b"item_id,title\n")  # the query returned no rows
    results = runs_an_hour_apart(config, now_clock())
    assert all(r.exit_code == EXIT_REFUSED for r in results)
    assert all(r.summary["refused"].startswith("min_ids: the source holds 0 ids; min_ids is 1")
               for r in results)
    assert catalog.stats.bulk_delete_requests == 0


# -- 2. Awkward exports read exactly: nothing deleted ----------------------------------------


def _parquet(table: pa.Table, **kw) -> Callable[[Path], None]:
    return lambda path: pq.write_table(table, path, **kw)


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _mixed_endings() -> bytes:
    ends = ["\n", "\r\n", "\r"]
    return ("item_id,title\r\n" + "".join(f"{i},t{ends[n % 3]}" for n, i in enumerate(IDS))
            ).encode()


ACCEPTED: dict[str, tuple[str, Callable[[Path], None]]] = {
    "utf8_bom_and_crlf": ("products.csv",
                          _bytes(("\ufeff" + csv_text(IDS, newline="\r\n")).encode())),
    "mixed_line_endings": ("products.csv", _bytes(_mixed_endings())),
    "cr_cr_lf": ("products.csv", _bytes(one_column(IDS, newline="\r\r\n").encode())),
    "every_cell_quoted": ("products.csv", _bytes(("\"item_id\",\"title\"\n" + "".join(
        f'"{i}","Item {n}"\n' for n, i in enumerate(IDS))).encode())),
    "blank_lines_between": ("products.csv", _bytes(one_column(IDS, newline="\n\n").encode())),
    "every_id_twice": ("products.csv", _bytes(one_column(IDS + IDS).encode())),
    "trailing_summary_line": ("products.csv",
                              _bytes((one_column(IDS) + "(2000 rows)\n").encode())),
    "gzip": ("products.csv.gz", _bytes(gzip.compress(csv_text(IDS).encode()))),
    "parquet_large_string": ("products.parquet", _parquet(pa.table(
        {"item_id": pa.array(IDS, pa.large_string())}))),
    "parquet_dictionary": ("products.parquet", _parquet(pa.table(
        {"item_id": pa.array(IDS).dictionary_encode()}))),
    "parquet_many_row_groups": ("products.parquet", _parquet(pa.table(
        {"item_id": IDS, "title": [f"t{n}" for n in range(len(IDS))]}), row_group_size=37)),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_an_awkward_but_whole_export_deletes_nothing(tmp_path, catalog, case):
    name, write = ACCEPTED[case]
    config = configure(tmp_path, catalog, name)
    write(source_of(config))
    results = runs_an_hour_apart(config, now_clock())
    assert all(r.exit_code == EXIT_OK for r in results), [r.summary for r in results]
    assert catalog.stats.bulk_delete_requests == 0 and len(catalog.ids()) == len(ITEMS)


def test_parquet_int64_ids_of_a_zero_padded_catalog_delete_nothing(tmp_path, start_emulator):
    numbers = {str(n): {"title": "number"} for n in range(10_000, 11_900)}
    padded = {f"{n:010d}": {"title": "padded"} for n in range(1_000_000, 1_000_100)}
    emulator = start_emulator({**numbers, **padded}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, "products.parquet")
    # The exporter wrote every id as an int64: "0001000000" became 1000000.
    pq.write_table(pa.table({"item_id": pa.array(
        sorted(int(i) for i in {**numbers, **padded}), pa.int64())}), source_of(config))
    results = runs_an_hour_apart(config, now_clock())
    assert all(r.summary["refused"].startswith("near_match: 100 ids") for r in results)
    assert_none_deleted(emulator, padded, results)


def test_parquet_null_ids_over_the_error_share_delete_nothing(tmp_path, catalog):
    config = configure(tmp_path, catalog, "products.parquet")
    ids = [None if i in DASHED else i for i in IDS]  # 100 ids lost to nulls (5%)
    pq.write_table(pa.table({"item_id": pa.array(ids, pa.string())}), source_of(config))
    results = runs_an_hour_apart(config, now_clock())
    assert all(r.summary["refused"].startswith("max_error_share: 100 of 2000 source rows")
               for r in results)
    assert_none_deleted(catalog, DASHED, results)


# -- 3. Near-miss spellings of live ids --------------------------------------------------------


def fullwidth(text: str) -> str:
    return text.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})


SPELLINGS: dict[str, tuple[dict, Callable[[str], str]]] = {
    # A spreadsheet's number formats, saved as CSV as they are shown.
    "thousands_commas": (NUMERIC, lambda i: f"{int(i):,}"),
    "thousands_commas_and_decimals": (NUMERIC, lambda i: f"{int(i):,.2f}"),
    "german_digit_groups": (NUMERIC, lambda i: f"{int(i):,}".replace(",", ".")),
    "german_decimal_comma": (NUMERIC, lambda i: f"{int(i):,.2f}".replace(",", " ").replace(
        ".", ",").replace(" ", ".")),
    "swiss_digit_groups": (NUMERIC, lambda i: f"{int(i):,}".replace(",", "'")),
    "printf_g": (NUMERIC, lambda i: f"{float(i):g}"),  # 1000007 -> 1.00001e+06
    # 19-digit ids in a number format: 15 significant digits kept, then zeros.
    "spreadsheet_15_digits": (LONG, lambda i: str(round(int(i), 15 - len(i)))),
    # A Turkish-locale lower case: "ITEM" -> "\u0131tem" (dotless i).
    "turkish_lower_case": (UPPER, lambda i: i.lower().replace("i", "\u0131")),
    "turkish_upper_case": ({k.lower(): v for k, v in UPPER.items()},
                           lambda i: i.upper().replace("I", "\u0130")),
    # Other dashes and spaces a word processor or a web page puts in.
    "hyphen_u2010": (DASHED, lambda i: i.replace("-", "\u2010")),
    "non_breaking_hyphen": (DASHED, lambda i: i.replace("-", "\u2011")),
    "fullwidth_hyphen": (DASHED, lambda i: i.replace("-", "\uff0d")),
    "figure_dash": (DASHED, lambda i: i.replace("-", "\u2012")),
    "ideographic_space_after": (DASHED, lambda i: i + "\u3000"),
    "fullwidth_letters_and_digits": (DASHED, lambda i: fullwidth(i).replace("ab", "\uff41\uff42")),
}


def spelled_export(folder, emulator, special, mangle, plain=PLAIN):
    config = configure(folder, emulator)
    ids = sorted({**plain, **special})
    with source_of(config).open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")  # quotes "1,000,007" as Excel does
        writer.writerows([[i] for i in ["item_id", *(mangle(i) if i in special else i
                                                       for i in ids)]])
    return config


@pytest.mark.parametrize("kind", sorted(SPELLINGS))
def test_near_miss_spellings_of_live_ids_delete_nothing(tmp_path, start_emulator, kind):
    special, mangle = SPELLINGS[kind]
    emulator = start_emulator({**PLAIN, **special}, bulk_requests_per_window=100)
    config = spelled_export(tmp_path, emulator, special, mangle)
    results = runs_an_hour_apart(config, now_clock())
    assert_none_deleted(emulator, special, results)
    assert all(r.summary["refused"].startswith("near_match: 100 ids") for r in results)


def test_cyrillic_look_alike_letters_delete_nothing(tmp_path, start_emulator):
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = spelled_export(tmp_path, emulator, DASHED, lambda i: i.replace("a", "\u0430"))
    results = runs_an_hour_apart(config, now_clock())
    assert_none_deleted(emulator, DASHED, results)
    assert all(r.summary["refused"].startswith("near_match: 100 ids") for r in results)


def test_arabic_indic_digits_delete_nothing(tmp_path, start_emulator):
    """Fixed: NFKC keeps Arabic-Indic digits (U+0660-0669), so numeric ids exported by an
    Arabic-locale tool looked missing and were deleted after grace."""
    emulator = start_emulator({**PLAIN, **NUMERIC}, bulk_requests_per_window=100)
    arabic = {ord(c): 0x0660 + int(c) for c in "0123456789"}
    config = spelled_export(tmp_path, emulator, NUMERIC, lambda i: i.translate(arabic))
    results = runs_an_hour_apart(config, now_clock())
    assert_none_deleted(emulator, NUMERIC, results)
    assert all(r.summary["refused"].startswith("near_match: 100 ids") for r in results)


# -- 4. Quotes in other columns that swallow rows ----------------------------------------------


SWALLOWED = ("row 2: column 'title' holds 100 line(s) that look like rows (the first: "
             "'ab-001,plain'); a stray quote swallowed them? Their ids would look missing")


def test_a_stray_quote_in_a_title_closed_by_a_later_one_deletes_nothing(tmp_path, catalog):
    """Fixed: it made one (valid) multi-line title of the 100 rows between, whose ids
    looked missing and were deleted after grace."""
    config = configure(tmp_path, catalog)
    rows = [f"{i},plain" for i in IDS]
    rows[0] = f'{IDS[0]},"Vintage 12 inch'  # the ab-* rows after it...
    rows[100] = f'{IDS[100]},Poster 24"'  # ...up to here are swallowed into one title
    source_of(config).write_bytes(("item_id,title\n" + "\n".join(rows) + "\n").encode())
    results = runs_an_hour_apart(config, now_clock())
    assert [r.summary["refused"] for r in results] == [f"{source_of(config)}: {SWALLOWED}"] * 3
    assert_none_deleted(catalog, ITEMS, results)


def test_backslash_escaped_quotes_in_titles_delete_nothing(tmp_path, catalog):
    """Fixed: MySQL's SELECT INTO OUTFILE style (\\") is read as CSV's doubled quote, so
    the title "12\\"" stayed open and swallowed the rows up to the next quote."""
    config = configure(tmp_path, catalog)
    rows = [f"{i},plain" for i in IDS]
    rows[0] = f'{IDS[0]},"12\\""'
    rows[100] = f'{IDS[100]},"Poster 24\\" x 36\\""'
    source_of(config).write_bytes(("item_id,title\n" + "\n".join(rows) + "\n").encode())
    results = runs_an_hour_apart(config, now_clock())
    assert [r.summary["refused"] for r in results] == [f"{source_of(config)}: {SWALLOWED}"] * 3
    assert_none_deleted(catalog, ITEMS, results)


@pytest.mark.parametrize("second_header", ["name,item_id", "NAME,ITEM_ID"])
def test_a_concatenated_export_with_other_column_names_deletes_nothing(
        tmp_path, catalog, second_header):
    config = configure(tmp_path, catalog)
    text = (csv_text(IDS[:1900]) + second_header + "\n"
            + "".join(f"Item {n},{i}\n" for n, i in enumerate(IDS[1900:])))
    source_of(config).write_bytes(text.encode())
    results = runs_an_hour_apart(config, now_clock())
    assert_none_deleted(catalog, ITEMS, results)
    assert [r.summary["refused"] for r in results] == [
        f"{source_of(config)}: row 1902: column 'title' holds {second_header.split(',')[1]!r}, "
        f"the id column's name: the header repeated mid-file (two exports concatenated, in "
        f"another column order?); column 'item_id' would not hold the ids after it"] * 3


def test_a_cell_that_reads_like_the_id_columns_name_refuses_nothing(tmp_path, catalog):
    """A healthy export whose other column holds 'ITEM_ID' as a value (a key-name column,
    say) is not a repeated header: with no id to delete held elsewhere, the run goes on."""
    config = configure(tmp_path, catalog)
    text = "item_id,key_field\n" + "".join(f"{i},ITEM_ID\n" for i in IDS[100:])
    source_of(config).write_bytes(text.encode())
    results = runs_an_hour_apart(config, now_clock())
    assert [r.exit_code for r in results] == [EXIT_OK] * 3, results[-1].summary
    assert set(ITEMS) - catalog.ids() == set(IDS[:100])


def test_an_id_held_in_another_column_is_not_deleted(tmp_path, catalog):
    """The last look before a delete: an id that the export still holds whole in another
    column (here a replaced_by column) is skipped as in_other_column, not deleted."""
    config = configure(tmp_path, catalog)
    text = "item_id,replaced_by\n" + "".join(
        f"{i},{IDS[n] if n < 5 else ''}\n" for n, i in enumerate(IDS[100:]))
    source_of(config).write_bytes(text.encode())
    results = runs_an_hour_apart(config, now_clock())
    assert results[-1].exit_code == EXIT_OK, results[-1].summary
    assert results[-1].summary["skipped"].get("in_other_column") == 5
    gone = set(ITEMS) - catalog.ids()
    assert gone == set(IDS[5:100])


# -- 5. Time: grace counts consecutive absences ------------------------------------------------


def test_an_export_that_flaps_restarts_grace(tmp_path, catalog):
    """Bad, good, bad, an hour apart: the ids were back in between, so the third run is
    their first absence again, not their second."""
    config = configure(tmp_path, catalog)
    clock = now_clock()
    results = []
    for ids in (IDS[100:], IDS, IDS[100:]):
        source_of(config).write_bytes(one_column(ids).encode())
        results += runs_an_hour_apart(config, clock, times=1)
    assert [r.summary.get("pending_grace") for r in results] == [100, 0, 100]
    assert_none_deleted(catalog, DASHED, results)


def test_an_export_a_day_in_the_future_is_refused_every_run(tmp_path, catalog):
    config = configure(tmp_path, catalog)
    source_of(config).write_bytes(one_column(IDS[100:]).encode())
    ahead = (datetime.now(UTC) + timedelta(days=1)).timestamp()
    os.utime(source_of(config), (ahead, ahead))
    results = runs_an_hour_apart(config, now_clock())
    assert all(r.summary["refused"].startswith("max_clock_skew: ") for r in results)
    assert_none_deleted(catalog, DASHED, results)


# -- 6. Mix-ups with saved plans ---------------------------------------------------------------


def _plan_with_ab_missing(tmp_path, emulator):
    """A healthy export without the 100 ab-* ids, two runs (grace served), a saved plan."""
    config = configure(tmp_path, emulator)
    source = source_of(config)
    source.write_bytes(one_column(IDS[100:]).encode())
    _, plan_file, _ = plan_saved_after_grace(config, tmp_path)
    return config, plan_file


def test_apply_skips_ids_back_in_the_source_under_another_spelling(tmp_path, catalog):
    config, plan_file = _plan_with_ab_missing(tmp_path, catalog)
    # The ab-* items were restored upstream; today's export spells them in upper case.
    source_of(config).write_bytes(one_column(
        [i.upper() if i in DASHED else i for i in IDS]).encode())
    applied = run_reconciler("--config", config.path, "apply", plan_file)
    assert applied.returncode == EXIT_OK, applied.stderr
    assert_none_deleted(catalog, DASHED, [])
    report = Path(applied.stdout.split("report ")[-1].strip())
    skipped = (report / "skipped.csv").read_text().splitlines()
    assert skipped[1:] == [f'"{i}","near_match"' for i in sorted(DASHED)]


def test_apply_after_the_scope_was_narrowed_deletes_nothing_outside_it(tmp_path, catalog):
    config, plan_file = _plan_with_ab_missing(tmp_path, catalog)
    text = config.path.read_text().replace(
        "[jobs.products.source]", '[jobs.products]\nscope = ["sku-*", "caf*"]\n'
        "[jobs.products.source]")
    config.path.write_text(text)
    applied = run_reconciler("--config", config.path, "apply", plan_file)
    assert applied.returncode == EXIT_OK, applied.stderr
    assert_none_deleted(catalog, DASHED, [])


def test_apply_with_a_config_that_renamed_the_job_is_one_line(tmp_path, catalog):
    config, plan_file = _plan_with_ab_missing(tmp_path, catalog)
    config.path.write_text(config.path.read_text().replace("jobs.products", "jobs.renamed"))
    applied = run_reconciler("--config", config.path, "apply", plan_file)
    assert applied.returncode in (2, 3)
    lines = [line for line in applied.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1 and "products" in lines[0], applied.stderr
    assert_none_deleted(catalog, DASHED, [])


def test_a_plan_file_copied_and_applied_twice_deletes_once(tmp_path, catalog):
    config, plan_file = _plan_with_ab_missing(tmp_path, catalog)
    copy = tmp_path / "copy-of-plan.json"
    copy.write_bytes(plan_file.read_bytes())
    key = saved_plan.signing_key(config.state_dir)
    first = run_job(config, config.jobs["products"],
                    RunRequest(dry_run=False, apply=saved_plan.load(plan_file, key)))
    assert first.summary["deleted"] == 100
    second = run_job(config, config.jobs["products"],
                     RunRequest(dry_run=False, apply=saved_plan.load(copy, key)))
    assert second.summary.get("deleted", 0) == 0
    assert len(catalog.ids()) == len(ITEMS) - 100


# -- 7. Two scoped jobs on one catalog, one reading the other's export --------------------------


def _two_scoped_jobs(tmp_path, emulator, a_source: Path, b_source: Path) -> Path:
    text = ""
    for name, source, scope in (("a", a_source, "ab-"), ("b", b_source, "sku-")):
        text += (f"[jobs.{name}]\nscope = [\"{scope}\"]\n"
                 + job_toml(name, emulator.base_url, source, emulator=emulator, safety={}))
    return write_config(tmp_path, text)


def test_a_scoped_job_repointed_at_the_other_jobs_export_deletes_nothing(tmp_path, catalog):
    """Job a owns ab-* (5% of the catalog), job b owns sku-*. Someone copies b's source path
    into a's config: a's export holds none of a's ids, and all 100 look missing."""
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "a.csv").write_bytes(one_column(sorted(DASHED)).encode())
    (exports / "b.csv").write_bytes(one_column(sorted(PLAIN)).encode())
    config = load_config(_two_scoped_jobs(tmp_path, catalog, exports / "a.csv",
                                          exports / "b.csv"))
    clock = now_clock()
    results = runs_an_hour_apart(config, clock, times=1, name="a")
    assert results[0].exit_code == EXIT_OK
    config = load_config(_two_scoped_jobs(tmp_path, catalog, exports / "b.csv",
                                          exports / "b.csv"))
    results += runs_an_hour_apart(config, clock, times=3, name="a")
    # Safe: the caps judge a scoped job on its own part of the catalog (100 of 100), once
    # grace is served.
    assert results[1].summary["pending_grace"] == 100
    assert [r.exit_code for r in results[2:]] == [EXIT_REFUSED] * 2
    assert results[2].summary["refused"].startswith(
        "max_delete_fraction: 100 of 100 remote ids (100.0%) to delete")
    assert_none_deleted(catalog, DASHED, results)


def test_a_parquet_dataset_folder_is_refused_not_read_in_part(tmp_path, catalog):
    """A Spark or pandas export is often a folder of part files (whose schemas may differ);
    the job names one file: a folder under that name is refused, never read in part."""
    config = configure(tmp_path, catalog, "products.parquet")
    folder = source_of(config)
    folder.mkdir()
    pq.write_table(pa.table({"item_id": IDS[:1000]}), folder / "part-0.parquet")
    pq.write_table(pa.table({"item_id": pa.array([int(n) for n in range(5)], pa.int64())}),
                   folder / "part-1.parquet")
    results = runs_an_hour_apart(config, now_clock(), times=2)
    assert [r.summary["refused"] for r in results] == [f"{folder}: not a regular file"] * 2
    assert catalog.stats.bulk_delete_requests == 0


def test_an_older_export_copied_back_in_place_deletes_nothing(tmp_path, start_emulator):
    new_items = {f"new-{n:03d}": {"title": "created today"} for n in range(100)}
    emulator = start_emulator({**PLAIN, **new_items}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator)
    real = datetime.now(UTC)
    clock = FakeClock(wall=real - timedelta(hours=3))
    source = source_of(config)
    source.write_bytes(one_column(sorted({**PLAIN, **new_items})).encode())  # today's export
    os.utime(source, ((real - timedelta(hours=4)).timestamp(),) * 2)
    results = runs_an_hour_apart(config, clock, times=1)
    assert results[0].exit_code == EXIT_OK
    source.write_bytes(one_column(sorted(PLAIN)).encode())  # yesterday's, copied back (cp -p)
    os.utime(source, ((real - timedelta(hours=20)).timestamp(),) * 2)
    results += runs_an_hour_apart(config, clock, times=3)
    assert_none_deleted(emulator, new_items, results)
    assert [r.exit_code for r in results] == [EXIT_OK] + [EXIT_REFUSED] * 3
    assert results[1].summary["refused"] == (
        "source_not_older: the source file's mtime is 16.0 h older than the export the last "
        "successful run read (an older export copied back?)")
