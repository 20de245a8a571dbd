from __future__ import annotations

import fnmatch
from dataclasses import replace

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.core.safety import (
    SourceFacts,
    glob_to_regex,
    grace_due,
    judge_caps,
    judge_source,
    protected_mask,
    refusal,
)
from reconciler.core.settings import Safety

FACTS = SourceFacts(path="s.csv", age_seconds=3600, rows=1000, unique=1000, empty=0,
                    last_unique=1000, missing_canaries=())


def failed(gates):
    return [g.name for g in gates if not g.passed]


def test_healthy_source_passes_every_gate():
    assert failed(judge_source(Safety(), FACTS)) == []


@pytest.mark.parametrize(("facts", "gate", "detail"), [
    (replace(FACTS, unique=0, rows=0, last_unique=None), "min_ids",
     "the source holds 0 ids; min_ids is 1"),
    (replace(FACTS, unique=500, rows=500), "max_shrink",
     "the source shrank by 50.0% since the last successful run (1000 -> 500 ids); "
     "max_shrink is 10%"),
    (replace(FACTS, age_seconds=30 * 3600), "max_age",
     "the source file is 30.0 h old; max_age is 26.0 h"),
    (replace(FACTS, empty=50, rows=1050), "max_error_share",
     "50 of 1050 source rows have an empty id (4.8%); max_error_share is 1.0%"),
    (replace(FACTS, near_matches=7, near_match_kinds={"case": 5, "leading_zeros": 2}),
     "near_match",
     "7 ids to delete equal a source id but for their spelling (case 5, leading_zeros 2); "
     "they are skipped as "
     "near_match; max_near_match_share is 0.10% of 1000 source ids (was the export "
     "re-encoded or read as numbers?)"),
    (replace(FACTS, age_seconds=-3 * 3600), "max_clock_skew",
     "the source file's mtime is 3.0 h in the future; max_clock_skew is 5 min (is a clock "
     "wrong?)"),
    (replace(FACTS, final_newline=False), "require_final_newline",
     "the last row of the source has no line break: the export may be cut short (still "
     "being written?)"),
])
def test_each_source_gate_refuses_with_its_numbers(facts, gate, detail):
    gates = judge_source(Safety(), facts)
    assert failed(gates) == [gate]
    assert refusal(gates) == f"{gate}: {detail}"


def test_missing_canary():
    rules = replace(Safety(), canary_ids=("SKU-1", "SKU-2"))
    gates = judge_source(rules, replace(FACTS, missing_canaries=("SKU-2",)))
    assert refusal(gates) == "canary_ids: canary ids missing from the source: SKU-2"


def test_caps():
    rules = replace(Safety(), max_deletes=50, max_deletes_per_day=120)
    assert failed(judge_caps(rules, 40, 1000, 0)) == []
    assert failed(judge_caps(rules, 60, 1000, 0)) == ["max_deletes"]
    assert failed(judge_caps(rules, 40, 300, 0)) == ["max_delete_fraction"]
    assert failed(judge_caps(rules, 40, 1000, 100)) == ["max_deletes_per_day"]
    fraction_daily = replace(Safety(), max_deletes_per_day=0.05)
    assert failed(judge_caps(fraction_daily, 40, 1000, 20)) == ["max_deletes_per_day"]


def test_protection_by_id_glob_and_file():
    ids = pa.array(["GIFT-1", "SKU-1", "SKU-2", "KEEP", "x"])
    mask = protected_mask(ids, ("GIFT-*", "SKU-[2]", "KEEP"), pa.array(["x"]))
    assert mask.to_pylist() == [True, False, True, True, True]


@example("[?-.]", "")  # a reversed range: fnmatch treats it as empty
@given(st.text(alphabet="ab*?[]!.^$-", max_size=8), st.text(alphabet="ab.^$-!]", max_size=8))
def test_glob_translation_agrees_with_fnmatch(pattern, name):
    import re

    assert bool(re.match(glob_to_regex(pattern), name, re.S)) == fnmatch.fnmatchcase(name,
                                                                                     pattern)


def test_grace_needs_enough_runs_and_enough_time():
    rules = Safety()  # grace_runs = 2 and grace_period = 1 h
    hour = 3600.0
    due, pending, seen = grace_due(["a", "b"], {"a": (1, 0.0)}, rules, now=hour)
    assert (due, pending) == (["a"], ["b"])
    assert seen == {"a": (2, 0.0), "b": (1, hour)}
    # Two runs minutes apart over one bad export: enough runs, not enough time.
    due, pending, _ = grace_due(["a"], {"a": (1, 0.0)}, rules, now=300.0)
    assert (due, pending) == ([], ["a"])
    # Long enough, but not enough runs.
    due, pending, _ = grace_due(["a"], {}, replace(rules, grace_period=0.0), now=hour)
    assert (due, pending) == ([], ["a"])
    runs_only = replace(Safety(), grace_period=None)
    due, pending, _ = grace_due(["a", "b"], {"a": (1, 99.0)}, runs_only, now=100.0)
    assert (due, pending) == (["a"], ["b"])
    # A clock set back before the first miss makes an id wait, never go early.
    due, pending, _ = grace_due(["a"], {"a": (5, 10 * hour)}, rules, now=hour)
    assert (due, pending) == ([], ["a"])


def test_a_run_that_deletes_nothing_passes_every_cap():
    rules = replace(Safety(), max_deletes=0, max_deletes_per_day=10)
    assert failed(judge_caps(rules, 0, 1000, 5000)) == []
    assert failed(judge_caps(rules, 0, 0, 0)) == []
    assert failed(judge_caps(rules, 1, 1000, 5000)) == ["max_deletes", "max_deletes_per_day"]


def test_a_near_match_within_the_share_passes_and_a_small_skew_is_allowed():
    assert failed(judge_source(Safety(), replace(FACTS, near_matches=1))) == []
    assert failed(judge_source(Safety(), replace(FACTS, age_seconds=-299))) == []
    lenient = replace(Safety(), require_final_newline=False)
    gates = judge_source(lenient, replace(FACTS, final_newline=False))
    assert failed(gates) == []
    assert [g.detail for g in gates if g.name == "require_final_newline"] == [
        "the last row of the source has no line break: the export may be cut short (still "
        "being written?); accepted (require_final_newline = false)"]


@settings(max_examples=200)
@given(st.text(alphabet="ab *?[]!.-", min_size=1, max_size=8),
       st.lists(st.text(alphabet="ab .-!]", max_size=6), min_size=1, max_size=8))
def test_protection_globs_in_arrow_agree_with_fnmatch(pattern, names):
    if not set("*?[") & set(pattern):
        pattern += "*"  # make it a glob
    mask = protected_mask(pa.array(names, pa.string()), (pattern,), pa.array([], pa.string()))
    assert mask.to_pylist() == [fnmatch.fnmatchcase(n, pattern) for n in names]


@given(st.lists(st.sampled_from("abcdef"), unique=True),
       st.dictionaries(st.sampled_from("abcdefgh"),
                       st.tuples(st.integers(0, 4), st.sampled_from([0.0, 50.0, 3600.0, 9e9]))),
       st.integers(1, 4), st.sampled_from([None, 0.0, 100.0, 3600.0]))
def test_vectorised_grace_agrees_with_a_loop_over_ids(ids, absences, grace_runs, period):
    rules = replace(Safety(), grace_runs=grace_runs, grace_period=period)
    now = 4000.0
    due, pending, updated = [], [], {}
    for item_id in ids:
        runs, first = absences.get(item_id, (0, now))
        updated[item_id] = (runs + 1, first)
        ready = runs + 1 >= grace_runs and (period is None or now - first >= period)
        (due if ready else pending).append(item_id)
    assert grace_due(ids, absences, rules, now) == (due, pending, updated)


def test_an_export_older_than_the_last_runs_is_refused_unless_allowed():
    older = replace(FACTS, mtime=1_000.0, last_mtime=1_000.0 + 7200)
    (gate,) = [g for g in judge_source(Safety(), older) if g.name == "source_not_older"]
    assert not gate.passed and gate.detail == (
        "the source file's mtime is 2.0 h older than the export the last successful run "
        "read (an older export copied back?)")
    assert gate.numbers == {"older_seconds": 7200.0, "allow_older_source": False}
    allowed = judge_source(Safety(allow_older_source=True), older)
    assert failed(allowed) == []
    assert [g.detail for g in allowed if g.name == "source_not_older"] == [
        "the source file's mtime is 2.0 h older than the export the last successful run "
        "read (an older export copied back?); accepted (allow_older_source = true)"]
    # Newer, the same, or older only by a coarse filesystem's 2 s: passes.
    for last in (900.0, 1_000.0, 1_002.0):
        assert failed(judge_source(Safety(), replace(older, last_mtime=last))) == []
    # No baseline yet (a first run, or none of the recent runs read an export): no gate.
    assert "source_not_older" not in {g.name for g in judge_source(Safety(), FACTS)}
