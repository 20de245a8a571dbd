"""Hostile QA of issue 9, round 6: exports and situations rounds 3 to 5 did not try, with
the DEFAULT safety settings (an empty ``[safety]`` table).

Every test asserts the correct behaviour: none may delete an id that a person would say is
still in the source, and a healthy run must not be refused.

The usual shape (as in rounds 3 to 5): a catalog of 2,000 ids, of which 100 (5%, under
every cap) are the ones an accident makes look missing; runs an hour apart (past
``grace_runs`` 2 and ``grace_period`` 1h) must not delete them.
"""

from __future__ import annotations

import html
import unicodedata
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from reconciler.core.clock import FakeClock
from reconciler.core.errors import EXIT_OK, EXIT_REFUSED
from tests.hostile import (
    DASHED,
    PLAIN,
    assert_none_deleted,
    configure,
    runs_an_hour_apart,
)

pytestmark = pytest.mark.integration

ACCENTED = {f"caf\u00e9-{n:03d}": {"title": "coffee"} for n in range(100)}
AMPERSAND = {f"at&t-{n:03d}": {"title": "phone"} for n in range(100)}
NUMBERED = {str(700_000 + n): {"title": "parent"} for n in range(100)}


# -- 1. Lossy re-encodings: the id's non-ASCII letters replaced or stripped ------------------


def _stripped(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c))


LOSSY = {
    # Latin-1 bytes read as UTF-8 by a tool that replaces what it cannot decode (Spark,
    # Java, Python's errors="replace"): "caf\xe9" -> "caf\ufffd".
    "latin1_read_as_utf8_replaced": (ACCENTED, lambda i: i.encode("latin-1").decode(
        "utf-8", "replace")),
    # UTF-8 bytes read as ASCII with replacement: one U+FFFD per byte.
    "utf8_read_as_ascii_replaced": (ACCENTED, lambda i: i.encode("utf-8").decode(
        "ascii", "replace")),
    # A database column in an 8-bit or ASCII charset: "?" for what it cannot hold.
    "question_marks": (ACCENTED, lambda i: i.encode("ascii", "replace").decode()),
    # UTF-8 read as Windows-1252 twice (double-encoded mojibake).
    "double_mojibake": (ACCENTED, lambda i: i.encode("utf-8").decode("cp1252").encode(
        "utf-8").decode("cp1252")),
    # An ASCII transliteration (iconv //TRANSLIT, unidecode): accents dropped.
    "accents_stripped": (ACCENTED, _stripped),
    # An XML or HTML feed flattened to CSV with its escapes left in.
    "html_escaped": (AMPERSAND, lambda i: html.escape(i)),
    "xml_character_references": (ACCENTED, lambda i: i.encode(
        "ascii", "xmlcharrefreplace").decode()),
    # Ids taken from product URLs: percent-encoded.
    "url_encoded": (ACCENTED, lambda i: quote(i)),
}


@pytest.mark.parametrize("case", sorted(LOSSY))
def test_lossy_spellings_of_live_ids_delete_nothing(tmp_path, start_emulator, case):
    special, mangle = LOSSY[case]
    emulator = start_emulator({**PLAIN, **special}, bulk_requests_per_window=100)
    ids = sorted({**PLAIN, **special})
    config = configure(tmp_path, emulator, [mangle(i) if i in special else i for i in ids])
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, special, results)
    assert all(r.exit_code == EXIT_REFUSED for r in results[1:])
    assert results[-1].summary["refused"].startswith(
        "near_match: 100 ids to delete equal a source id but for their spelling (encoding 100)")


def test_one_lossy_spelling_is_skipped_and_the_rest_deleted(tmp_path, start_emulator):
    """One id spelled with U+FFFD (under max_near_match_share): skipped as near_match, the
    99 others that are really gone are deleted."""
    emulator = start_emulator({**PLAIN, **ACCENTED}, bulk_requests_per_window=100)
    kept = "caf\u00e9-007"
    config = configure(tmp_path, emulator, [*sorted(PLAIN), "caf\ufffd-007"])
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert [r.exit_code for r in results] == [EXIT_OK] * 3
    assert results[-1].summary["skipped"] == {"near_match": 1}
    assert emulator.ids() == set(PLAIN) | {kept}


# -- 2. The last look in a Parquet export ------------------------------------------------------


def _parquet_export(config, columns):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = config.jobs["products"].source.path
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize("kind", ["string", "large_string", "dictionary"])
def test_ids_held_in_another_parquet_column_are_not_deleted(tmp_path, start_emulator, kind):
    """The same export as round 5's ``replaced_by`` CSV, written as Parquet: the 100 ab-*
    ids only in ``replaced_by``. The CSV keeps them (``in_other_column``); so must Parquet."""
    import pyarrow as pa

    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, [], export="products.parquet")
    dashed = sorted(DASHED)
    replaced = [dashed[n] if n < 100 else None for n in range(len(PLAIN))]
    column = {"string": pa.array(replaced, pa.string()),
              "large_string": pa.array(replaced, pa.large_string()),
              "dictionary": pa.array(replaced, pa.string()).dictionary_encode()}[kind]
    _parquet_export(config, {"item_id": sorted(PLAIN), "replaced_by": column,
                             "stock": list(range(len(PLAIN)))})
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, DASHED, results)
    assert [r.exit_code for r in results] == [EXIT_OK] * 3
    assert results[-1].summary["skipped"] == {"in_other_column": 100}


def test_numbers_held_in_another_parquet_integer_column_are_not_deleted(
        tmp_path, start_emulator):
    """Variants whose ``parent_id`` (int64) names 100 parent items that have no row."""
    emulator = start_emulator({**PLAIN, **NUMBERED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, [], export="products.parquet")
    parents = [int(i) for i in sorted(NUMBERED)]
    _parquet_export(config, {"item_id": sorted(PLAIN), "parent_id": [
        parents[n] if n < 100 else None for n in range(len(PLAIN))]})
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, NUMBERED, results)
    assert results[-1].summary["skipped"] == {"in_other_column": 100}


# -- 3. Windows-1252 bytes in another column ---------------------------------------------------


def test_windows_1252_titles_do_not_hide_ids_held_in_another_column(tmp_path, start_emulator):
    """A legacy export: ASCII ids, titles saved in Windows-1252 (``caf\\xe9``), and the 100
    ab-* ids only in ``replaced_by``. The last look cannot read the titles as UTF-8; it must
    still find the ids (a cell that is not UTF-8 can hold no id whole), not refuse every run
    that has something due."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, [])
    dashed = sorted(DASHED)
    rows = [f"{s},caf\xe9 {n},{dashed[n] if n < 100 else ''}".encode("cp1252")
            for n, s in enumerate(sorted(PLAIN))]
    config.jobs["products"].source.path.write_bytes(
        b"\n".join([b"item_id,title,replaced_by", *rows]) + b"\n")
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, DASHED, results)
    assert [r.exit_code for r in results] == [EXIT_OK] * 3, results[-1].summary.get("refused")
    assert results[-1].summary["skipped"] == {"in_other_column": 100}


# -- 4. Rows whose id is a placeholder for a missing value -------------------------------------

PLACEHOLDERS = {
    "excel_lookup_error": "#N/A",  # a VLOOKUP that found nothing
    "excel_ref_error": "#REF!",
    "pandas_astype_str_nan": "nan",  # df["item_id"].astype(str) over missing values
    "pandas_astype_str_none": "None",
    "sql_client_null": "NULL",
    "blank": "   ",
    "report_dash": "-",  # a report's "no value"
}


@pytest.mark.parametrize("case", sorted(PLACEHOLDERS))
def test_rows_whose_id_is_a_placeholder_count_as_empty_ids(tmp_path, start_emulator, case):
    """The export keeps all 2,000 rows, but 100 of them (5%) hold a placeholder where the
    id should be: those items are still in the source, their ids lost, as with empty ids
    (which ``max_error_share`` refuses over 1%). The placeholder rows are duplicates of one
    id, so the unique count drops by 5%, under ``max_shrink``."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    placeholder = PLACEHOLDERS[case]
    config = configure(tmp_path, emulator, [*sorted(PLAIN), *[placeholder] * 100])
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, DASHED, results)
    assert [r.summary["refused"] for r in results] == [
        f"max_error_share: 100 of 2000 source rows have an empty id or a placeholder for "
        f"one such as {placeholder!r} (5.0%); max_error_share is 1.0%"] * 3


# -- 5. A resume over an export that is being rewritten -----------------------------------------


def test_a_resume_over_a_half_written_export_deletes_nothing(tmp_path, start_emulator):
    """A run stopped before it sent its 100 deletes (the ab-* ids, missing from a bad
    export). The export is fixed, and the daemon resumes while the fixed one is still being
    written: cut mid-row, before the ab-* rows. A fresh run refuses such a file
    (``require_final_newline``); the resume must not send the 100 deletes by it."""
    from tests.hostile import run, stopped_before_sending

    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    clock = FakeClock(wall=datetime.now(UTC))
    stopped = stopped_before_sending(config, clock)
    source = config.jobs["products"].source.path
    whole = "\n".join(["item_id", *sorted({**PLAIN, **DASHED}, reverse=True)]) + "\n"
    source.write_bytes(whole.encode()[:whole.index("ab-099") - 4])  # "sku-00" of sku-0000
    clock.advance(600)
    resumed = run(config, clock)
    assert_none_deleted(emulator, DASHED, [stopped, resumed])
    assert resumed.exit_code == EXIT_REFUSED
    assert resumed.summary["refused"] == (
        "require_final_newline: the last row of the source has no line break: the export "
        "may be cut short (still being written?)")
    source.write_bytes(whole.encode())  # written out: the next run resumes, keeps the 100
    clock.advance(600)
    again = run(config, clock)
    assert again.summary["resumed_from"] == stopped.run_id
    assert again.summary["skipped"] == {"back_in_source": 100}
    assert_none_deleted(emulator, DASHED, [stopped, resumed, again])


def test_an_apply_over_a_half_written_export_deletes_nothing(tmp_path, start_emulator):
    """A plan saved with the 100 ab-* ids due; the export is fixed, and the plan applied
    while the fixed export is still being written (cut mid-row, before the ab-* rows):
    ``apply`` judges drift by that file, so it must refuse it as a run would."""
    from reconciler.store import plan_key, saved_plan
    from tests.hostile import run

    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    clock = FakeClock(wall=datetime.now(UTC))
    results = runs_an_hour_apart(config, clock, times=1)
    plan_file = tmp_path / "plan.json"
    assert run(config, clock, dry_run=True, plan_out=plan_file).summary["to_delete"] == 100
    source = config.jobs["products"].source.path
    whole = "\n".join(["item_id", *sorted({**PLAIN, **DASHED}, reverse=True)]) + "\n"
    source.write_bytes(whole.encode()[:whole.index("ab-099") - 4])
    clock.advance(60)
    applied = run(config, clock, apply=saved_plan.load(plan_file, plan_key(config)))
    assert_none_deleted(emulator, DASHED, [*results, applied])
    assert applied.exit_code == EXIT_REFUSED
    assert applied.summary["refused"] == (
        "require_final_newline: the last row of the source has no line break: the export "
        "may be cut short (still being written?)")


# -- 6. Slow erosion: an export that shrinks a little less than max_shrink on every run ---------


def test_an_export_eroding_under_max_shrink_every_hour_loses_at_most_a_fifth_a_day(
        tmp_path, start_emulator):
    """Each hourly export lacks 9% more ids than the last (under ``max_shrink`` 10% each
    time): every source gate passes on every run. Nothing tells a slow upstream loss from
    real removals, so the bound is ``max_deletes_per_day`` (20% of the catalog over any
    24 h, of the catalog as it is): in a day of runs at most 400 of the 2,000 ids go, and
    the runs past it are refused (the operator is told) rather than deleting on."""
    from tests.hostile import run, write_lines

    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    ids = sorted({**PLAIN, **DASHED})
    config = configure(tmp_path, emulator, ids)
    clock = FakeClock(wall=datetime.now(UTC))
    source = config.jobs["products"].source.path
    results = []
    for _ in range(24):
        ids = ids[:int(len(ids) * 0.91) + 1]
        write_lines(source, ["item_id", *ids])
        results.append(run(config, clock))
        clock.advance(3601)
    deleted = sum(r.summary.get("deleted", 0) for r in results)
    assert 0 < deleted <= 400 and len(emulator.ids()) >= 1600
    refused = [r.summary["refused"] for r in results if r.exit_code == EXIT_REFUSED]
    # The first run past the budget is refused by it; the runs after it by max_shrink,
    # for the baseline is then the last run that was not refused.
    assert refused[0].startswith("max_deletes_per_day: ")
    assert all(r.startswith(("max_deletes_per_day: ", "max_shrink: ")) for r in refused)
    assert results[-1].summary["refused"].startswith("max_shrink: ")


def test_the_cli_refuses_an_export_of_placeholders_with_one_line(tmp_path, start_emulator):
    from tests.helpers import run_reconciler

    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, [*sorted(PLAIN), *["#N/A"] * 100])
    result = run_reconciler("--config", config.path, "run", "products")
    assert result.returncode == EXIT_REFUSED
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    reason = ("max_error_share: 100 of 2000 source rows have an empty id or a placeholder "
              "for one such as '#N/A' (5.0%); max_error_share is 1.0%")
    assert lines == [
        f"products: {reason}",
        "products: refused by 1 gate(s); nothing was deleted.",
        f"  - {reason} (empty_ids=0, placeholder_ids=100, rows=2000, max_error_share=0.01)",
        "  Way past: fix the source export or change max_error_share in "
        "[jobs.products.safety] if the change is expected; then run again."]
    assert emulator.ids() == set(PLAIN) | set(DASHED)


# -- 7. Ids a spreadsheet read as dates ----------------------------------------------------------

MONTH_DAY = {f"{m}-{d}": {"title": "size"} for m in range(1, 13) for d in range(1, 10)}
MONTH_DAY = dict(sorted(MONTH_DAY.items())[:100])
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def test_ids_a_spreadsheet_saved_as_dates_delete_nothing(tmp_path, start_emulator):
    """The export went through a spreadsheet, which read ``3-12`` as 12 March and saved
    it as ``12-Mar`` (the famous SEPT2 -> 2-Sep)."""
    emulator = start_emulator({**PLAIN, **MONTH_DAY}, bulk_requests_per_window=100)

    def as_date(i: str) -> str:
        month, day = i.split("-")
        return f"{day}-{MONTHS[int(month) - 1]}"

    ids = sorted({**PLAIN, **MONTH_DAY})
    config = configure(tmp_path, emulator, [as_date(i) if i in MONTH_DAY else i for i in ids])
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, MONTH_DAY, results)
    assert results[-1].summary["refused"].startswith(
        "near_match: 100 ids to delete equal a source id but for their spelling "
        "(spreadsheet 100)")
