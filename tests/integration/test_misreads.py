"""Issue 9, classes 1-3 and 6: misread or mixed-up exports never delete a live id.

Each test runs the real pipeline against the emulator with the default safety rules (an
empty [safety] table) and runs at least twice where grace would otherwise let a delete
through on the second run.
"""

from __future__ import annotations

import csv
import json
import os
import time
import unicodedata
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reconciler.core.clock import FakeClock
from reconciler.core.errors import EXIT_OK, EXIT_REFUSED
from reconciler.runs.runner import RunRequest, run_job
from tests.helpers import emulator_config, run_reconciler

pytestmark = pytest.mark.integration

ITEMS = {f"sku-{n:04d}": {"title": f"Item {n}"} for n in range(1950)}
ITEMS.update({f"caf\u00e9-{n}": {"title": "coffee"} for n in range(50)})  # NFC, 2000 in all


@pytest.fixture
def catalog(start_emulator):
    return start_emulator(ITEMS, bulk_requests_per_window=100)


def make(tmp_path, catalog, ids=None):
    return emulator_config(tmp_path, catalog, sorted(ITEMS) if ids is None else ids, safety={})


def run(config, clock=None):
    return run_job(config, config.jobs["products"], RunRequest(dry_run=False), clock=clock)


def source_path(config):
    return config.jobs["products"].source.path


def assert_refused_twice(config, catalog, message):
    for _ in range(2):  # grace_runs is 2: a second run is where a delete would happen
        result = run(config)
        assert result.exit_code == EXIT_REFUSED, result.summary
        assert result.summary["refused"] == message
    assert catalog.stats.bulk_delete_requests == 0 and len(catalog.ids()) == len(ITEMS)


def write_rows(path, lines: list[str]) -> None:
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


# -- class 1: a malformed CSV ---------------------------------------------------------------


def test_a_stray_quote_in_a_one_column_export_deletes_nothing(tmp_path, catalog):
    config = make(tmp_path, catalog)
    ids = sorted(ITEMS)
    # 50 rows swallowed (2.5%): under every cap, so only the strict read stands in the way.
    write_rows(source_path(config), ["item_id", *ids[:1950], '"' + ids[1950], *ids[1951:]])
    assert_refused_twice(config, catalog, (
        f"{source_path(config)}: row 1952: a quoted value is never closed (unbalanced '\"'); "
        "it would swallow every row after it"))


def test_a_stray_quote_closed_later_deletes_nothing(tmp_path, catalog):
    config = make(tmp_path, catalog)
    ids = sorted(ITEMS)
    write_rows(source_path(config), ["item_id", *ids[:1950], '"' + ids[1950], *ids[1951:1960],
                                     ids[1960] + '"', *ids[1961:]])
    assert_refused_twice(config, catalog, (
        f"{source_path(config)}: row 1952: the id 'sku-1900\\nsku-1901\\nsku-1902\\nsku-1903"
        "\\nsku-1904\\nsku-1905\\nsku-19'... contains a line break (an unbalanced quote?); "
        "ids cannot hold one"))


def test_a_stray_quote_in_a_title_column_deletes_nothing(tmp_path, catalog):
    config = make(tmp_path, catalog)
    ids = sorted(ITEMS)
    rows = [f"{i},plain title" for i in ids]
    rows[1950] = f'{ids[1950]},"12 inch'  # the quote is never closed
    write_rows(source_path(config), ["item_id,title", *rows])
    assert_refused_twice(config, catalog, (
        f"{source_path(config)}: the row starting '{ids[1950]},\"12 inch': a quoted value is "
        "never closed (unbalanced '\"'); it would swallow every row after it"))


def test_a_half_written_export_deletes_nothing(tmp_path, catalog):
    config = make(tmp_path, catalog)
    ids = sorted(ITEMS)
    text = "item_id\n" + "\n".join(ids) + "\n"
    source_path(config).write_bytes(text.encode()[: -200])  # cut mid-row by a writer
    assert_refused_twice(config, catalog, (
        "require_final_newline: the last row of the source has no line break: the export "
        "may be cut short (still being written?)"))


def test_a_malformed_inventory_export_deletes_nothing(tmp_path, catalog):
    ids = sorted(ITEMS)
    inventory = tmp_path / "exports" / "inventory.csv"
    inventory.parent.mkdir(parents=True, exist_ok=True)
    write_rows(inventory, ["item_id", *ids[:10], '"' + ids[10], *ids[11:]])
    config = emulator_config(tmp_path, catalog, ids[:1990], safety={}, inventory=inventory)
    assert_refused_twice(config, catalog, (
        f"inventory export: {inventory}: row 12: a quoted value is never closed (unbalanced "
        "'\"'); it would swallow every row after it"))


# -- class 2: an ambiguous export -----------------------------------------------------------


def test_two_id_columns_in_a_csv_header_are_refused(tmp_path, catalog):
    config = make(tmp_path, catalog)
    ids = sorted(ITEMS)
    with source_path(config).open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["item_id", "title", "item_id"])
        # The first column is stale for 50 rows: read silently, they would look missing.
        writer.writerows([(f"old-{n}" if n >= 1950 else i), "t", i] for n, i in enumerate(ids))
    assert_refused_twice(config, catalog, (
        f"{source_path(config)}: the header names column 'item_id' 2 times (columns 1, 3); "
        "which one holds the ids is ambiguous"))


def test_two_id_columns_in_parquet_are_refused_without_a_traceback(tmp_path, catalog):
    ids = sorted(ITEMS)
    parquet = tmp_path / "exports" / "products.parquet"
    parquet.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays([pa.array(ids), pa.array(ids)],
                                        names=["item_id", "item_id"]), parquet)
    config = make(tmp_path, catalog)
    config_text = config.path.read_text().replace("products.csv", "products.parquet")
    config.path.write_text(config_text)
    result = run_reconciler("--config", config.path, "run", "products")
    assert result.returncode == EXIT_REFUSED, result.stderr
    assert "Traceback" not in result.stderr
    refusal = (f"{parquet}: the schema names column 'item_id' 2 times (columns 1, 2); which "
               "one holds the ids is ambiguous")
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [e["reason"] for e in events if e.get("event") == "run.refused"] == [refusal]
    assert f"\nproducts: {refusal}\n" in result.stderr  # the line a person reads
    assert catalog.stats.bulk_delete_requests == 0


# -- class 3: near-miss ids -----------------------------------------------------------------


def mangled(ids):
    """The source as a mixed-up export spells it: case, whitespace and NFD variants."""
    out = []
    for item_id in ids:
        number = int(item_id.rsplit("-", 1)[1])
        if item_id.startswith("caf"):
            item_id = unicodedata.normalize("NFD", item_id)
        elif number < 40:
            item_id = item_id.upper()
        elif number < 80:
            item_id = f" {item_id} "
        out.append(item_id)
    return out


def test_near_miss_ids_are_skipped_and_refuse_the_run(tmp_path, catalog):
    ids = sorted(ITEMS)
    config = make(tmp_path, catalog, mangled(ids))
    for _ in range(2):
        result = run(config)
        assert result.exit_code == EXIT_REFUSED, result.summary
        assert result.summary["refused"] == (
            "near_match: 130 ids to delete equal a source id but for their spelling "
            "(whitespace 40, unicode 50, case 40); they are skipped as near_match; "
            "max_near_match_share is 0.10% of 2000 source ids (was the export re-encoded or "
            "read as numbers?)")
    gate = next(g for g in result.summary["gates"] if g["gate"] == "near_match")
    assert (gate["near_matches"], gate["whitespace"], gate["case"], gate["unicode"],
            gate["leading_zeros"]) == (130, 40, 40, 50, 0)
    assert catalog.stats.bulk_delete_requests == 0 and len(catalog.ids()) == len(ITEMS)


def test_a_few_near_misses_are_skipped_not_deleted(tmp_path, catalog):
    ids = sorted(ITEMS)
    source = [i for i in ids if i not in ("sku-0007", "sku-0008")] + ["SKU-0007 "]
    config = make(tmp_path, catalog, source)
    clock = FakeClock(wall=datetime.now(UTC))
    deleted = 0
    for _ in range(3):  # grace (2 runs, 1 h) lets sku-0008 go on the second; sku-0007 stays
        result = run(config, clock)
        clock.advance(3601)
        assert result.exit_code == EXIT_OK, result.summary
        assert result.summary["skipped"].get("near_match") == 1
        deleted += result.summary["deleted"]
    assert deleted == 1 and catalog.stats.deleted == ["sku-0008"]
    assert "sku-0007" in catalog.ids() and "sku-0008" not in catalog.ids()
    skipped = (result.report_dir / "skipped.csv").read_text().splitlines()
    assert skipped == ['"item_id","reason"', '"sku-0007","near_match"']


def test_ids_that_lost_their_leading_zeros_are_near_matches(tmp_path, start_emulator):
    items = {f"{n:05d}": {} for n in range(1000)} | {"0Ab1": {}}
    catalog = start_emulator(items, bulk_requests_per_window=100)
    source = [str(int(i)) if n < 5 else i for n, i in enumerate(sorted(items)) if i != "0Ab1"]
    config = emulator_config(tmp_path, catalog, [*source, "Ab1"], safety={})
    result = run(config)
    assert result.exit_code == EXIT_REFUSED
    gate = next(g for g in result.summary["gates"] if g["gate"] == "near_match")
    # "0Ab1" is not a number: it is not a near match of "Ab1" and is merely pending grace.
    assert (gate["near_matches"], gate["leading_zeros"]) == (5, 5)


# -- class 6: time and change -------------------------------------------------------------


def test_an_export_from_the_future_is_refused(tmp_path, catalog):
    config = make(tmp_path, catalog, sorted(ITEMS)[:1990])
    future = time.time() + 2 * 86400
    os.utime(source_path(config), (future, future))
    result = run(config)
    assert result.exit_code == EXIT_REFUSED
    assert result.summary["refused"].startswith("max_clock_skew: the source file's mtime is ")
    assert result.summary["refused"].endswith(
        " h in the future; max_clock_skew is 5 min (is a clock wrong?)")
    assert catalog.stats.bulk_delete_requests == 0


def test_an_export_rewritten_while_it_is_read_is_refused(tmp_path, catalog, monkeypatch):
    config = make(tmp_path, catalog, sorted(ITEMS)[:1990])
    import reconciler.sources.csvfile as source

    real = source.pacsv.read_csv

    def rewritten_meanwhile(*args, **kwargs):
        table = real(*args, **kwargs)
        path = source_path(config)
        path.write_bytes(path.read_bytes()[:-20])  # the exporter starts over
        return table

    monkeypatch.setattr("reconciler.sources.csvfile.pacsv.read_csv", rewritten_meanwhile)
    result = run(config)
    assert result.exit_code == EXIT_REFUSED
    assert result.summary["refused"] == (
        f"{source_path(config)}: the file changed while it was read (size, mtime or inode "
        "differ before and after); is the export still being written? Nothing was deleted")
    assert catalog.stats.bulk_delete_requests == 0
