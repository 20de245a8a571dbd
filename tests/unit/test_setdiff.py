"""The bucketed lookup gives exactly the one big ``index_in``'s answer (core/setdiff.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core import setdiff
from reconciler.core.setdiff import distinct, look_up

# Ids that share lengths, ends and middles, so buckets collide and repeat.
ids = st.text(alphabet="ab0é\u00a0-", max_size=9)


def _reference(probe: pa.Array, values: pa.Array) -> tuple[list[str], list[int]]:
    rows = pc.index_in(probe, value_set=values)
    missing = probe.filter(pc.is_null(rows)).to_pylist()
    return sorted(missing), sorted(set(pc.drop_null(rows).to_pylist()))


def _answer(probe: pa.Array, values: pa.Array, **sizes: int) -> tuple[list[str], list[int]]:
    found = look_up(probe, values, **sizes)
    return sorted(found.missing.to_pylist()), sorted(set(found.rows.tolist()))


@settings(max_examples=200)
@given(st.lists(ids, max_size=60), st.lists(ids, max_size=60), st.booleans(),
       st.integers(0, 3))
def test_buckets_answer_as_one_lookup_does(probe, values, large, cut):
    kind = pa.large_string() if large else pa.string()
    # A slice of a longer column: the key must read the slice's own bytes only.
    probe_array = pa.array(["zz"] * cut + probe, kind).slice(cut)
    values_array = pa.array(values + ["zz"] * cut, kind).slice(0, len(values))
    forced = {"bucket_ids": 1, "min_partitioned": 0, "max_skew": float("inf")}
    assert _answer(probe_array, values_array, **forced) == _reference(probe_array, values_array)


def test_the_first_row_of_a_repeated_value_is_the_one_named():
    values = pa.array(["x", "y", "x", "", "y", ""])
    found = look_up(pa.array(["y", "x", "", "q", "x"]), values, bucket_ids=1,
                    min_partitioned=0, max_skew=float("inf"))
    assert sorted(found.rows.tolist()) == [0, 0, 1, 3]
    assert found.missing.to_pylist() == ["q"]


def test_a_big_column_is_cut_into_buckets_of_about_the_aimed_size(monkeypatch):
    values = pa.array([f"SKU-{n:08d}" for n in range(40_000)])
    probe = pa.array([f"SKU-{n:08d}" for n in range(39_000, 41_000)])
    seen: list[int] = []
    real = setdiff._Buckets.of

    def spy(ids, buckets):
        seen.append(buckets)
        return real(ids, buckets)

    monkeypatch.setattr(setdiff._Buckets, "of", staticmethod(spy))
    found = look_up(probe, values, bucket_ids=1_000, min_partitioned=0)
    assert seen == [64, 64]  # 40,000 / 1,000 -> the next power of two above 40
    assert sorted(found.missing.to_pylist()) == [f"SKU-{n:08d}" for n in range(40_000, 41_000)]
    assert sorted(found.rows.tolist()) == list(range(39_000, 40_000))


def test_keys_spread_ids_that_differ_only_in_the_middle_or_the_end():
    values = pa.array([f"PROD-{n:06d}-EU" for n in range(20_000)])
    keys = setdiff._keys(values, 64)
    counts = np.bincount(keys, minlength=64)
    assert counts.max() <= 2 * len(values) / 64, counts


def test_ids_that_hash_into_few_buckets_take_the_one_lookup():
    # Same length, same last six bytes, same middle: one key for all, so no buckets.
    values = pa.array([f"{n:05d}-same-middle-x-tail42" for n in range(5_000)])
    assert setdiff._Buckets.of(values, 64).skewed(setdiff.MAX_SKEW)
    found = look_up(pa.array(["00001-same-middle-x-tail42", "nope"]), values,
                    bucket_ids=100, min_partitioned=0)
    assert found.missing.to_pylist() == ["nope"]
    assert found.rows.tolist() == [1]
    assert sorted(distinct(values, bucket_ids=100, min_partitioned=0).to_pylist()) == \
        sorted(values.to_pylist())


def test_empty_columns_and_columns_of_empty_ids():
    none = pa.array([], pa.string())
    blanks = pa.array(["", "", ""])
    forced = {"bucket_ids": 1, "min_partitioned": 0, "max_skew": float("inf")}
    assert _answer(none, blanks, **forced) == ([], [])
    assert _answer(blanks, none, **forced) == (["", "", ""], [])
    assert _answer(blanks, blanks, **forced) == ([], [0])
    assert _answer(pa.array(["a", ""]), blanks, **forced) == (["a"], [0])


@settings(max_examples=150)
@given(st.lists(ids, max_size=50), st.booleans())
def test_distinct_holds_each_id_once_as_unique_does(column, large):
    values = pa.array(column, pa.large_string() if large else pa.string())
    for sizes in ({}, {"bucket_ids": 1, "min_partitioned": 0, "max_skew": float("inf")}):
        got = distinct(values, **sizes).to_pylist()
        assert len(got) == len(set(got)) and set(got) == set(column)


few = st.lists(st.text(alphabet="ab ", max_size=3), max_size=50)  # repeats and empty ids


@settings(max_examples=150)
@given(few, few)
def test_a_plan_made_through_buckets_counts_as_a_plain_one(source, remote):
    import reconciler.core.plan as plan_module

    def plan() -> tuple:
        made = plan_module.make_plan(pa.array(source, pa.string()), pa.array(remote, pa.string()),
                                     plan_module.AddressRules())
        return made.to_delete.to_pylist(), made.skipped_ids.to_pylist(), made.source, made.remote

    plain = plan()
    sizes = {"BUCKET_IDS": 1, "MIN_PARTITIONED": 0, "MAX_SKEW": float("inf")}
    saved = {name: getattr(setdiff, name) for name in sizes}
    try:
        for name, value in sizes.items():
            setattr(setdiff, name, value)
        assert plan() == plain
    finally:
        for name, value in saved.items():
            setattr(setdiff, name, value)
    non_empty = {i for i in source if i}
    assert plain[2].unique == len(non_empty)
    assert sorted(plain[0]) == sorted({i for i in remote if i} - set(source))
