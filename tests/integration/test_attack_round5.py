"""Hostile QA of issue 9, round 5: the last look before a delete (ids still held in another
CSV column, a header repeated mid-file), with the DEFAULT safety settings (an empty
``[safety]`` table), and whether ``plan``, ``apply`` and a resume agree with ``run`` on it.

Every test asserts the correct behaviour: none may delete an id that a person would say is
still in the source, and a healthy run must not be refused. Those marked
``xfail(strict=True)`` reproduce a finding that fails on the code as it is.

The usual shape (as in rounds 3 and 4): a catalog of 2,000 ids, of which 100 (5%, under
every cap) are the ones an accident makes look missing; runs an hour apart (past
``grace_runs`` 2 and ``grace_period`` 1h) must not delete them.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.core.clock import FakeClock
from reconciler.core.errors import EXIT_OK, EXIT_REFUSED
from reconciler.store import plan_key, saved_plan
from tests.helpers import run_reconciler
from tests.hostile import (
    DASHED,
    PLAIN,
    assert_none_deleted,
    configure,
    run,
    runs_an_hour_apart,
    set_mtime,
    write_lines,
)

pytestmark = pytest.mark.integration


def two_columns(config, rows, header="item_id,replaced_by"):
    """Rewrite the job's export as a two-column CSV of ``rows`` (already joined lines)."""
    write_lines(config.jobs["products"].source.path, [header, *rows])


def _kept_elsewhere():
    """The 1,900 sku ids in the id column; the 100 ab-* ids only in ``replaced_by``."""
    skus = sorted(PLAIN)
    dashed = sorted(DASHED)
    return [f"{s},{dashed[n] if n < len(dashed) else ''}" for n, s in enumerate(skus)]


# -- 1. The last look: what it sees -----------------------------------------------------------


@pytest.mark.parametrize("cell", ["{id}", '"{id}"', '" {id} "', '"{id}\t"'])
def test_ids_held_in_another_column_quoted_or_padded_are_not_deleted(
        tmp_path, start_emulator, cell):
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    dashed = sorted(DASHED)
    two_columns(config, [f"{s},{cell.format(id=dashed[n]) if n < 100 else ''}"
                         for n, s in enumerate(sorted(PLAIN))])
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, DASHED, results)
    assert [r.exit_code for r in results] == [EXIT_OK] * 3
    assert results[-1].summary["skipped"] == {"in_other_column": 100}


def test_ids_held_in_another_column_of_a_gzip_export_are_not_deleted(
        tmp_path, start_emulator):
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN), export="products.csv.gz")
    path = config.jobs["products"].source.path
    path.write_bytes(gzip.compress(
        ("\n".join(["item_id,replaced_by", *_kept_elsewhere()]) + "\n").encode()))
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, DASHED, results)
    assert results[-1].summary["skipped"] == {"in_other_column": 100}


def test_a_one_column_export_deletes_what_is_gone(tmp_path, start_emulator):
    """No last look to take (one column): the 100 ids gone are deleted after grace."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert results[-1].exit_code == EXIT_OK
    assert emulator.ids() == set(PLAIN)


def test_a_header_repeated_mid_file_in_another_column_order_is_refused(
        tmp_path, start_emulator):
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    skus = sorted(PLAIN)
    two_columns(config, [f"{s},x" for s in skus[:1000]] + ["Name,ITEM_ID"]
                + [f"x,{s}" for s in skus[1000:]], header="item_id,name")
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)), times=2)
    assert_none_deleted(emulator, PLAIN, results)
    assert results[-1].exit_code != EXIT_OK


def test_a_value_equal_to_the_id_column_name_in_a_normal_row_is_not_refused(
        tmp_path, start_emulator):
    """A healthy export with a column ``field`` whose value is ``item_id`` in one ordinary
    row (a column-mapping export, say): not a header repeated mid-file. Refusing it would
    refuse every run of the daemon for as long as that row stays."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    skus = sorted(PLAIN)
    two_columns(config, [f"{s},{'item_id' if n == 7 else 'title'}" for n, s in enumerate(skus)],
                header="item_id,field")
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert [r.exit_code for r in results] == [EXIT_OK] * 3, results[-1].summary.get("refused")
    assert emulator.ids() == set(PLAIN)


def test_many_ids_to_delete_are_looked_for_in_other_columns(tmp_path, start_emulator):
    """A big deletion (1,000 of 2,000 ids gone, refused by the caps) passes through the
    last look without error; with all of them held in another column nothing is due."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    ids = sorted({**PLAIN, **DASHED})
    two_columns(config, [f"{ids[n]},{ids[n + 1000]}" for n in range(1000)])
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, ids, results)
    assert [r.exit_code for r in results] == [EXIT_OK] * 3
    assert results[-1].summary["skipped"] == {"in_other_column": 1000}


# -- 2. plan, apply and resume against the last look -----------------------------------------


def test_plan_then_apply_does_not_delete_ids_held_in_another_column(
        tmp_path, start_emulator):
    """The ab-* ids were missing for a run and an hour (due); then the export holds them in
    ``replaced_by``, where ``run`` would skip them as ``in_other_column``. ``plan --out``
    (a dry run: no last look) must not promise them, and ``apply`` must not delete them."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    clock = FakeClock(wall=datetime.now(UTC))
    results = runs_an_hour_apart(config, clock, times=1)
    two_columns(config, _kept_elsewhere())
    plan_file = tmp_path / "plan.json"
    planned = run(config, clock, dry_run=True, plan_out=plan_file)
    results.append(planned)
    clock.advance(60)
    if plan_file.exists():
        results.append(run(config, clock, apply=saved_plan.load(plan_file, plan_key(config))))
    assert_none_deleted(emulator, DASHED, results)
    assert planned.summary["to_delete"] == 0


def test_apply_skips_ids_that_moved_to_another_column_after_the_plan(
        tmp_path, start_emulator):
    """A plan saved with the 100 ab-* ids due; by the apply the export holds them in
    ``replaced_by``: ``apply`` skips them as ``in_other_column``, as ``run`` would."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    clock = FakeClock(wall=datetime.now(UTC))
    results = runs_an_hour_apart(config, clock, times=1)
    plan_file = tmp_path / "plan.json"
    assert run(config, clock, dry_run=True, plan_out=plan_file).summary["to_delete"] == 100
    two_columns(config, _kept_elsewhere())
    clock.advance(60)
    applied = run(config, clock, apply=saved_plan.load(plan_file, plan_key(config)))
    assert_none_deleted(emulator, DASHED, [*results, applied])
    assert applied.exit_code == EXIT_OK, applied.summary.get("refused")
    assert applied.summary["skipped"] == {"in_other_column": 100}


def test_a_resume_does_not_delete_ids_now_held_in_another_column(tmp_path, start_emulator):
    """A run stopped before it sent its 100 deletes; by the resume the export holds them
    in ``replaced_by``: a fresh run would skip them as ``in_other_column``."""
    from tests.hostile import stopped_before_sending

    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    clock = FakeClock(wall=datetime.now(UTC))
    stopped = stopped_before_sending(config, clock)
    two_columns(config, _kept_elsewhere())
    clock.advance(600)
    resumed = run(config, clock)
    assert resumed.summary["resumed_from"] == stopped.run_id
    assert_none_deleted(emulator, DASHED, [resumed])
    assert resumed.summary["skipped"] == {"in_other_column": 100}


def test_a_dry_run_does_not_promise_deletes_that_the_run_skips(tmp_path, start_emulator):
    """The operator's dry run before a real one (the ids due, now in ``replaced_by``): it
    should say what the run will do, keep the 100 ids."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    clock = FakeClock(wall=datetime.now(UTC))
    runs_an_hour_apart(config, clock, times=1)
    two_columns(config, _kept_elsewhere())
    dry = run(config, clock, dry_run=True)
    real = run(config, clock)
    assert real.summary["skipped"] == dry.summary["skipped"] == {"in_other_column": 100}
    assert dry.summary["to_delete"] == real.summary["to_delete"] == 0
    assert EXIT_REFUSED not in (dry.exit_code, real.exit_code)


# -- 3. source_not_older with dry runs and applies in between -------------------------------


def test_a_dry_run_over_a_newer_test_file_is_no_baseline(tmp_path, start_emulator):
    """An operator dry-runs a hand-made test file (mtime now), then puts the real export
    back with ``cp -p`` (its own, older mtime): the next real run is not refused."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    ids = sorted({**PLAIN, **DASHED})
    config = configure(tmp_path, emulator, ids)
    source = config.jobs["products"].source.path
    real = datetime.now(UTC)
    clock = FakeClock(wall=real)
    set_mtime(source, real - timedelta(minutes=30))
    kept = source.read_bytes()
    assert run(config, clock).exit_code == EXIT_OK
    write_lines(source, ["item_id", *ids[:10]])
    set_mtime(source, real)
    clock.advance(60)
    run(config, clock, dry_run=True)
    source.write_bytes(kept)
    set_mtime(source, real - timedelta(minutes=30))
    clock.advance(3600)
    again = run(config, clock)
    assert again.exit_code == EXIT_OK, again.summary.get("refused")


def test_an_older_export_copied_back_after_an_apply_is_still_refused(
        tmp_path, start_emulator):
    """A run, a saved plan applied (an apply reads the export but is no baseline), then
    yesterday's export copied back with ``cp -p``: refused, its missing ids kept."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    source = config.jobs["products"].source.path
    real = datetime.now(UTC)
    clock = FakeClock(wall=real)
    set_mtime(source, real - timedelta(minutes=5))
    assert run(config, clock).exit_code == EXIT_OK
    clock.advance(3601)
    plan_file = tmp_path / "plan.json"
    assert run(config, clock, dry_run=True, plan_out=plan_file).summary["to_delete"] == 100
    applied = run(config, clock, apply=saved_plan.load(plan_file, plan_key(config)))
    assert applied.exit_code == EXIT_OK
    emulator_ids = emulator.ids()
    write_lines(source, ["item_id", *sorted(PLAIN)[:1850]])  # yesterday's: 50 fewer
    set_mtime(source, real - timedelta(hours=20))
    results = []
    for _ in range(3):
        clock.advance(3601)
        results.append(run(config, clock))
    assert emulator.ids() == emulator_ids
    assert all(r.summary["refused"].startswith("source_not_older: ") for r in results)


def test_an_export_rewritten_between_the_read_and_the_last_look_is_refused(
        tmp_path, start_emulator, monkeypatch):
    """The export is replaced (a new one, without the ab-* ids in any column) after the id
    column was read and before the last look reads every column: refused with one line,
    nothing deleted."""
    import reconciler.sources.csvfile as csvfile

    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    two_columns(config, _kept_elsewhere())
    source = config.jobs["products"].source.path
    clock = FakeClock(wall=datetime.now(UTC))
    results = runs_an_hour_apart(config, clock, times=1)
    every_column = csvfile.every_column

    def rewritten(path, header):
        two_columns(config, [f"{s},x" for s in sorted(PLAIN)])
        return every_column(path, header)

    monkeypatch.setattr(csvfile, "every_column", rewritten)
    results.append(run(config, clock))
    assert_none_deleted(emulator, DASHED, results)
    assert results[-1].exit_code == EXIT_REFUSED
    assert results[-1].summary["refused"] == (
        f"{source}: the file changed while it was read (size, mtime or inode differ before "
        "and after); is the export still being written? Nothing was deleted")


def test_an_id_held_in_another_column_behind_a_bom_is_not_deleted(tmp_path, start_emulator):
    """The ``replaced_by`` cells pasted from a file with a byte-order mark: ``\\ufeffab-000``
    (invisible) is the id a person sees."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    dashed = sorted(DASHED)
    two_columns(config, [f"{s},{chr(0xfeff) + dashed[n] if n < 100 else ''}"
                         for n, s in enumerate(sorted(PLAIN))])
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, DASHED, results)


# -- 4. Look-alike letters outside Greek and Cyrillic ----------------------------------------

BOXES = {f"box-{n:03d}": {"title": "box"} for n in range(100)}


def test_ids_with_an_armenian_look_alike_letter_delete_nothing(tmp_path, start_emulator):
    emulator = start_emulator({**PLAIN, **BOXES}, bulk_requests_per_window=100)
    ids = [i.replace("o", "\u0585") if i in BOXES else i for i in sorted({**PLAIN, **BOXES})]
    config = configure(tmp_path, emulator, ids)
    results = runs_an_hour_apart(config, FakeClock(wall=datetime.now(UTC)))
    assert_none_deleted(emulator, BOXES, results)


# -- 5. The real CLI ---------------------------------------------------------------------------


def test_the_cli_runs_a_field_column_holding_the_id_column_name_and_refuses_a_real_header(
        tmp_path, start_emulator):
    """``reconciler run`` over the ``field`` export with 100 ids to delete: exit 0 (grace
    pending). The same file with a real header repeated in another column order: exit 3
    and one line naming the row."""
    emulator = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = configure(tmp_path, emulator, sorted(PLAIN))
    source = config.jobs["products"].source.path
    skus = sorted(PLAIN)
    two_columns(config, [f"{s},{'ITEM_ID' if n == 7 else 'title'}" for n, s in enumerate(skus)],
                header="item_id,field")
    ran = run_reconciler("--config", config.path, "run", "products")
    assert ran.returncode == EXIT_OK, ran.stderr
    two_columns(config, [f"{s},x" for s in skus[:1000]] + ["field,Item_Id"]
                + [f"x,{s}" for s in skus[1000:]], header="item_id,field")
    refused = run_reconciler("--config", config.path, "run", "products")
    assert refused.returncode == EXIT_REFUSED
    lines = [line for line in refused.stderr.splitlines() if not line.startswith("{")]
    assert lines == [
        f"products: {source}: row 1002: the id 'field' is a column name: the header "
        "repeated mid-file (two exports concatenated?); column 'item_id' would not hold the "
        "ids after it"]
    assert emulator.ids() == set(PLAIN) | set(DASHED)
