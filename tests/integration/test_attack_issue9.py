"""Hostile QA of issue 9: exports, clocks, configs and saved plans that still get live ids
deleted (or a gate bypassed) with the DEFAULT safety settings.

Every test asserts the correct behaviour. Those marked ``xfail(strict=True)`` reproduce a
finding that fails on the code as it is; when a fix lands, the marker must go.

The usual shape: a catalog of 2,000 ids, of which 100 (5%, under every cap) are spelled
differently in an export a person would call the same list; runs an hour apart (past
``grace_runs`` 2 and ``grace_period`` 1h) must not delete them.
"""

from __future__ import annotations

import os
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.config import load_config
from reconciler.core.clock import FakeClock
from reconciler.core.errors import EXIT_CONFIG, EXIT_OK, EXIT_REFUSED
from reconciler.runs.operations import restore
from reconciler.runs.runner import RunRequest, run_job
from reconciler.store import saved_plan
from tests.helpers import emulator_config, job_toml, run_reconciler
from tests.hostile import plan_saved_after_grace, runs_an_hour_apart, write_lines

pytestmark = pytest.mark.integration

PLAIN = {f"sku-{n:04d}": {"title": f"Item {n}"} for n in range(1900)}
NUMERIC = {str(100_000_000_000 + n): {"title": "numeric"} for n in range(100)}
ACCENTED = {f"caf\u00e9-{n:03d}": {"title": "coffee"} for n in range(100)}
DASHED = {f"ab-{n:03d}": {"title": "dashed"} for n in range(100)}
SPACED = {f"ab {n:03d}": {"title": "spaced"} for n in range(100)}
SHARP_S = {f"stra\u00dfe-{n:03d}": {"title": "street"} for n in range(100)}


def now_clock():
    return FakeClock(wall=datetime.now(UTC))


def mangled_export(tmp_path, emulator, special, mangle):
    """A default-safety job whose export spells each of ``special``'s ids as ``mangle`` does."""
    items = {**PLAIN, **special}
    config = emulator_config(tmp_path, emulator, [], safety={})
    write_lines(config.jobs["products"].source.path,
                ["item_id", *(mangle(i) if i in special else i for i in sorted(items))])
    return config


def assert_none_deleted(catalog, ids, results):
    gone = sorted(set(ids) - catalog.ids())
    assert not gone, (f"{len(gone)} live ids deleted, e.g. {gone[:3]}; runs: "
                      f"{[(r.exit_code, r.summary.get('refused')) for r in results]}")


# -- 1. Excel-mangled numeric ids: not near matches, deleted after grace ---------------------


EXCEL = {
    # A spreadsheet re-saved as CSV: numbers get a decimal part or scientific notation,
    # or are kept as text with a leading apostrophe or an ="..." formula.
    "decimal_point": lambda i: i + ".0",
    "scientific": lambda i: f"{int(i):.5E}",
    "apostrophe": lambda i: "'" + i,
    "formula": lambda i: '"=""' + i + '"""',
}


@pytest.mark.parametrize("kind", sorted(EXCEL))
def test_excel_mangled_numeric_ids_are_not_deleted(tmp_path, start_emulator, kind):
    catalog = start_emulator({**PLAIN, **NUMERIC}, bulk_requests_per_window=100)
    config = mangled_export(tmp_path, catalog, NUMERIC, EXCEL[kind])
    results = runs_an_hour_apart(config, now_clock())
    assert_none_deleted(catalog, NUMERIC, results)


# -- 2. Unicode spellings the near-match form does not cover --------------------------------


UNICODE = {
    # NFKC, not NFC: full-width digits from an East Asian IME or spreadsheet.
    "fullwidth_digits": (NUMERIC, lambda i: i.translate(
        {ord(c): ord(c) + 0xFEE0 for c in "0123456789"})),
    # Invisible characters inside the id (only the ends are stripped today).
    "zero_width_space_inside": (NUMERIC, lambda i: i[:3] + "\u200b" + i[3:]),
    "word_joiner_inside": (NUMERIC, lambda i: i[:3] + "\u2060" + i[3:]),
    "soft_hyphen": (DASHED, lambda i: i.replace("-", "-\u00ad")),
    # A no-break space inside the id (copied from a web page or a spreadsheet cell).
    "no_break_space_inside": (SPACED, lambda i: i.replace(" ", "\u00a0")),
    # Word / Windows-1252 typography: smart quotes around the id, an en dash for the hyphen.
    "smart_quotes": (NUMERIC, lambda i: "\u201c" + i + "\u201d"),
    "en_dash": (DASHED, lambda i: i.replace("-", "\u2013")),
    # An upper-casing exporter: "straße".upper() is "STRASSE"; lower() does not undo it,
    # casefold() does.
    "upper_cased_sharp_s": (SHARP_S, str.upper),
    # UTF-8 decoded as Latin-1 and saved as UTF-8 again: valid UTF-8, so not refused.
    "double_encoded_utf8": (ACCENTED, lambda i: i.encode("utf-8").decode("latin-1")),
}


@pytest.mark.parametrize("kind", sorted(UNICODE))
def test_unicode_spellings_of_live_ids_are_not_deleted(tmp_path, start_emulator, kind):
    special, mangle = UNICODE[kind]
    catalog = start_emulator({**PLAIN, **special}, bulk_requests_per_window=100)
    config = mangled_export(tmp_path, catalog, special, mangle)
    results = runs_an_hour_apart(config, now_clock())
    assert_none_deleted(catalog, special, results)


def test_nfd_and_trailing_tab_and_nbsp_spellings_are_refused(tmp_path, start_emulator):
    """Covered today (kept as coverage of the near-match kinds on real exports)."""
    special = {**ACCENTED}
    catalog = start_emulator({**PLAIN, **special}, bulk_requests_per_window=100)
    spellings = [lambda i: unicodedata.normalize("NFD", i), lambda i: i + "\t",
                 lambda i: i + "\u00a0"]
    for n, mangle in enumerate(spellings):
        folder = tmp_path / str(n)
        config = mangled_export(folder, catalog, special, mangle)
        results = runs_an_hour_apart(config, now_clock(), times=2)
        assert all(r.summary["refused"].startswith("near_match: 100 ids") for r in results)
    assert catalog.stats.bulk_delete_requests == 0


# -- 3. A concatenated export whose second part has its columns in another order -----------


def test_a_header_repeated_mid_file_in_another_column_order_deletes_nothing(
        tmp_path, start_emulator):
    items = {**PLAIN, **DASHED}
    catalog = start_emulator(items, bulk_requests_per_window=100)
    config = emulator_config(tmp_path, catalog, [], safety={})
    first = ["item_id,title", *(f"{i},Item {i}" for i in sorted(PLAIN))]
    second = ["title,item_id", *(f"Item {i},{i}" for i in sorted(DASHED))]  # `cat a.csv b.csv`
    write_lines(config.jobs["products"].source.path, first + second)
    results = runs_an_hour_apart(config, now_clock())
    assert_none_deleted(catalog, items, results)


# -- 4. Ownership across two configs sharing a state_dir -----------------------------------


def two_configs_sharing_state(tmp_path, catalog, scopes=(None, None)):
    state = tmp_path / "state"
    configs = {}
    for (name, ids), scope in zip((("team-a", PLAIN), ("team-b", DASHED)), scopes,
                                  strict=True):
        folder = tmp_path / name
        source = folder / "source.csv"
        write_lines(source, ["item_id", *sorted(ids)])
        path = folder / "reconciler.toml"
        text = job_toml(name, catalog.base_url, source, emulator=catalog, safety={})
        if scope is not None:
            text = text.replace(f"[jobs.{name}.source]",
                                f"[jobs.{name}]\nscope = {scope!r}\n[jobs.{name}.source]")
        path.write_text(f'state_dir = "{state}"\n[logging]\nformat = "json"\n' + text,
                        encoding="utf-8")
        configs[name] = load_config(path)
    return configs


def test_two_configs_sharing_state_dir_do_not_delete_each_others_ids(
        tmp_path, start_emulator):
    catalog = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    configs = two_configs_sharing_state(tmp_path, catalog)
    clock = now_clock()
    results = []
    for _ in range(3):
        for name, config in configs.items():
            results.append(run_job(config, config.jobs[name], RunRequest(dry_run=False),
                                   clock=clock))
        clock.advance(3601)
    assert_none_deleted(catalog, DASHED, results)
    # team-a ran first, alone; from then on both are refused, each naming the other.
    assert [r.exit_code for r in results] == [EXIT_OK] + [EXIT_CONFIG] * 5
    a, b = configs["team-a"], configs["team-b"]
    assert results[1].summary["error"].startswith(
        f"{b.path}: job 'team-b' and job 'team-a' of {a.path} (export "
        f"{a.jobs['team-a'].source.path}, last run ")
    assert results[1].summary["error"].endswith(
        "delete from the same catalog and share this state: declare a disjoint 'scope' in "
        "each (an id may belong to one job only); nothing was deleted. A job that no longer "
        "runs stops counting 7 days after its last run (" + results[1].summary["error"][-21:])
    assert results[2].summary["error"].startswith(
        f"{a.path}: job 'team-a' and job 'team-b' of {b.path}")
    checked = run_reconciler("--config", a.path, "check", "team-a")
    assert checked.returncode == EXIT_CONFIG
    assert checked.stderr.startswith(
        f"team-a: FAILED: job 'team-a' and job 'team-b' of {b.path} (export ")


def test_two_configs_with_disjoint_scopes_share_a_catalog(tmp_path, start_emulator):
    catalog = start_emulator({**PLAIN, **DASHED, "zz-1": {}}, bulk_requests_per_window=100)
    configs = two_configs_sharing_state(tmp_path, catalog, scopes=(["sku-*", "zz-*"],
                                                                   ["ab-*"]))
    write_lines(configs["team-b"].jobs["team-b"].source.path,
                ["item_id", *sorted(DASHED)[1:]])  # team-b's ab-000 is gone
    clock = now_clock()
    for _ in range(2):
        for name, config in configs.items():
            result = run_job(config, config.jobs[name], RunRequest(dry_run=False), clock=clock)
            assert result.exit_code == EXIT_OK, result.summary
        clock.advance(3601)
    assert set(PLAIN) | set(DASHED) - {"ab-000"} == catalog.ids()  # zz-1: team-a's, gone


# -- 5. Grace by time, with a clock that was wrong and then corrected ----------------------


def test_a_corrected_clock_does_not_shorten_grace(tmp_path, start_emulator):
    items = {**PLAIN, **DASHED}
    catalog = start_emulator(items, bulk_requests_per_window=100)
    config = emulator_config(tmp_path, catalog, sorted(PLAIN), safety={})
    source = config.jobs["products"].source.path
    real = datetime.now(UTC)
    # The host's wall clock runs 3 h slow (and so the export's mtime); its boot clock,
    # which NTP never steps, reads 5,000 s since boot.
    slow = FakeClock(start=5000, wall=real - timedelta(hours=3), boot_id="host")
    os.utime(source, ((real - timedelta(hours=3)).timestamp(),) * 2)
    first = run_job(config, config.jobs["products"], RunRequest(dry_run=False), clock=slow)
    assert first.exit_code == EXIT_OK and first.summary["pending_grace"] == 100
    # NTP fixes the clock; the same bad export is written again 9 minutes later.
    fixed = FakeClock(start=5000 + 540, wall=real + timedelta(minutes=9), boot_id="host")
    os.utime(source, ((real + timedelta(minutes=8)).timestamp(),) * 2)
    second = run_job(config, config.jobs["products"], RunRequest(dry_run=False), clock=fixed)
    assert_none_deleted(catalog, DASHED, [first, second])
    assert second.summary["pending_grace"] == 100
    assert second.summary["grace"]["clock"] == {
        "since_last_run_wall_seconds": 3 * 3600 + 540.0,
        "since_last_run_counted_seconds": 540.0, "clocks_disagree": True}
    assert ("**Clocks disagree**: the wall clock moved 11340.0 s since the last run, the boot "
            "clock less; grace counted 540.0 s.") in (second.report_dir / "report.md").read_text()


def test_grace_still_passes_on_one_host_when_its_clocks_agree(tmp_path, start_emulator):
    catalog = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = emulator_config(tmp_path, catalog, sorted(PLAIN), safety={})
    clock = FakeClock(wall=datetime.now(UTC), boot_id="host")
    results = runs_an_hour_apart(config, clock, times=2)
    assert results[-1].summary["deleted"] == 100 and not set(DASHED) & catalog.ids()
    assert results[-1].summary["grace"]["clock"]["since_last_run_counted_seconds"] == 3601.0


# -- 6. A saved plan applied twice -----------------------------------------------------------


def test_a_saved_plan_is_refused_once_applied(tmp_path, start_emulator):
    items = {**PLAIN, **DASHED}
    catalog = start_emulator(items, bulk_requests_per_window=100)
    config = emulator_config(tmp_path, catalog, sorted(PLAIN), safety={})
    _, plan_file, planned = plan_saved_after_grace(config, tmp_path)
    job = config.jobs["products"]
    key = saved_plan.signing_key(config.state_dir)
    first = run_job(config, job, RunRequest(dry_run=False, apply=saved_plan.load(plan_file,
                                                                                 key)))
    assert first.summary["deleted"] == 100
    restored = restore(config, first.run_id)  # the deletes were a mistake: put them back
    assert restored.exit_code == EXIT_OK and set(DASHED) <= catalog.ids()
    again = run_job(config, job, RunRequest(dry_run=False, apply=saved_plan.load(plan_file,
                                                                                 key)))
    assert again.exit_code == EXIT_REFUSED
    assert again.summary["refused"] == (
        f"the plan made by run {planned.run_id} was already applied by run {first.run_id} "
        "(a saved plan is applied once): nothing was deleted; make a new plan")
    assert_none_deleted(catalog, DASHED, [again])


# -- 7. The daily cap follows the job's name, not the catalog -------------------------------


def test_a_renamed_job_keeps_the_catalogs_daily_total(tmp_path, start_emulator):
    items = {f"sku-{n:04d}": {"title": "t"} for n in range(2000)}
    catalog = start_emulator(items, bulk_requests_per_window=100)
    ids = sorted(items)
    config = emulator_config(tmp_path, catalog, ids[190:], safety={})
    clock = now_clock()
    runs_an_hour_apart(config, clock, times=2)
    assert len(catalog.ids()) == 1810  # 190 (9.5%) deleted: under every cap
    # 180 more go missing: 370 in 24 h is over 20% of the 1,810 left; the same job is refused.
    text = config.path.read_text().replace("jobs.products", "jobs.products-eu")
    config.path.write_text(text)
    edited = clock.utcnow().timestamp()  # renamed after those runs, by the runs' clock
    os.utime(config.path, (edited, edited))
    write_lines(config.jobs["products"].source.path, ["item_id", *ids[370:]])
    renamed = load_config(config.path)
    results = runs_an_hour_apart(renamed, clock, times=2, name="products-eu")
    assert results[-1].summary.get("refused", "").startswith("max_deletes_per_day: "), (
        results[-1].summary)
    assert len(catalog.ids()) == 1810


# -- 8. plan --out to a path that cannot be written ------------------------------------------


def test_plan_out_to_an_unwritable_path_does_not_say_saved(tmp_path, start_emulator):
    catalog = start_emulator({**PLAIN, **DASHED}, bulk_requests_per_window=100)
    config = emulator_config(tmp_path, catalog, sorted(PLAIN), safety={})
    target = tmp_path / "a-directory"
    target.mkdir()
    result = run_reconciler("--config", config.path, "plan", "products", "--out", target)
    assert "Saved plan:" not in result.stdout
    assert result.returncode in (2, 3), result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(errors) == 1 and str(target) in errors[0] and ".tmp" not in errors[0]


# -- 9. A protect list cut short while it is rewritten ----------------------------------------


def test_a_protect_list_cut_short_deletes_nothing_it_names(tmp_path, start_emulator):
    items = {**PLAIN, **DASHED}
    catalog = start_emulator(items, bulk_requests_per_window=100)
    protect = tmp_path / "protected.csv"
    text = "\n".join(["item_id", *sorted(DASHED)]) + "\n"
    protect.write_bytes(text.encode()[: len(text) // 2 + 3])  # the editor is still saving
    config = emulator_config(tmp_path, catalog, sorted(PLAIN),
                             safety={"protect": [f"file:{protect}"]})
    results = runs_an_hour_apart(config, now_clock())
    assert_none_deleted(catalog, DASHED, results)


# -- 10. The shrink baseline after an apply ---------------------------------------------------


def test_an_apply_does_not_inflate_the_shrink_baseline(tmp_path, start_emulator):
    items = {**PLAIN, **DASHED}
    catalog = start_emulator(items, bulk_requests_per_window=100)
    # One row per variant: every id twice (3,800 rows, 1,900 distinct ids).
    config = emulator_config(tmp_path, catalog, sorted(PLAIN) * 2, safety={})
    job = config.jobs["products"]
    real = datetime.now(UTC)
    os.utime(job.source.path, ((real - timedelta(hours=3)).timestamp(),) * 2)
    clock = FakeClock(wall=real - timedelta(hours=2))
    assert run_job(config, job, RunRequest(dry_run=False), clock=clock).exit_code == EXIT_OK
    clock.advance(3601)
    plan_file = tmp_path / "plan.json"
    run_job(config, job, RunRequest(dry_run=True, plan_out=plan_file), clock=clock)
    key = saved_plan.signing_key(config.state_dir)
    applied = run_job(config, job, RunRequest(dry_run=False,
                                              apply=saved_plan.load(plan_file, key)))
    assert applied.summary["deleted"] == 100
    after = run_job(config, job, RunRequest(dry_run=False))
    assert after.exit_code == EXIT_OK, after.summary.get("refused")
