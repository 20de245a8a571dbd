from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.plan import AddressRules, IdStats, Plan, defer, make_plan

RULES = AddressRules(forbidden_substrings=("/",))
ids = st.lists(st.text(alphabet="ab/ 0é", max_size=4), max_size=40)


def plan_of(source, remote, rules=RULES):
    return make_plan(pa.array(source, pa.string()), pa.array(remote, pa.string()), rules)


def test_table_case():
    plan = plan_of(
        source=["a", "b", "b", "", " c", "x/y"],
        remote=["a", "z", "y/1", "", "m", "m", "x/y", "00123"],
    )
    assert plan.to_delete.to_pylist() == ["00123", "m", "z"]
    skipped = zip(plan.skipped_ids.to_pylist(), plan.skipped_reasons.to_pylist(), strict=True)
    assert list(skipped) == [("y/1", "unaddressable")]
    assert (plan.source.rows, plan.source.empty, plan.source.duplicates) == (6, 1, 1)
    assert (plan.source.whitespace, plan.source.unique) == (1, 4)
    assert (plan.remote.rows, plan.remote.duplicates, plan.remote.unique) == (8, 1, 6)


def test_remote_empty_id_is_skipped_not_sent():
    plan = plan_of(source=["a"], remote=["a", ""])
    assert plan.to_delete.to_pylist() == []
    assert plan.skipped_counts() == {"empty_id": 1}


def test_too_long_ids_are_skipped():
    rules = AddressRules(fits=lambda i: len(i) < 5, fits_below_bytes=5)
    plan = plan_of(source=[], remote=["short", "longer-id", "abc"], rules=rules)
    assert plan.to_delete.to_pylist() == ["abc"]
    assert plan.skipped_counts() == {"too_long": 2}


def test_leading_zeros_and_lookalikes_are_different_ids():
    plan = plan_of(source=["123", "1e5", "NA"], remote=["00123", "100000", "NA", "na"])
    assert plan.to_delete.to_pylist() == ["00123", "100000", "na"]


@given(ids, ids)
def test_never_plans_an_id_in_the_source(source, remote):
    plan = plan_of(source, remote)
    assert not set(plan.to_delete.to_pylist()) & set(source)


@given(ids, ids)
def test_plan_partitions_remote_minus_source(source, remote):
    plan = plan_of(source, remote)
    deletes, skipped = plan.to_delete.to_pylist(), plan.skipped_ids.to_pylist()
    assert set(deletes) | set(skipped) == set(remote) - set(source)
    assert not set(deletes) & set(skipped)
    assert deletes == sorted(set(deletes), key=lambda s: s.encode())
    assert all("/" not in i and i for i in deletes)
    assert all(("/" in i) or not i for i in skipped)


@given(ids, ids)
def test_plan_is_deterministic_under_input_order(source, remote):
    a = plan_of(source, remote)
    b = plan_of(list(reversed(source)), list(reversed(remote)))
    assert a.to_delete.equals(b.to_delete)
    assert a.skipped_ids.equals(b.skipped_ids)
    assert a.source == b.source


@given(ids, ids)
def test_id_statistics_match_a_plain_count(source, remote):
    plan = plan_of(source, remote)
    for column, stats in ((source, plan.source), (remote, plan.remote)):
        non_empty = [i for i in column if i]
        assert stats.rows == len(column)
        assert stats.empty == column.count("")
        assert stats.unique == len(set(non_empty))
        assert stats.duplicates == len(non_empty) - len(set(non_empty))
    assert plan.source.whitespace == sum(1 for i in source if i != i.strip())


@given(st.lists(st.text(alphabet=" \t\x0b\x1f\x85\xa0\u2003\u3000aé😀-", max_size=4), max_size=30),
       st.integers(0, 5))
def test_whitespace_count_agrees_with_trimming_every_id(column, skip):
    import pyarrow.compute as pc

    from reconciler.core.plan import _whitespace_count

    ids = pa.array(column, pa.string()).slice(min(skip, len(column)))  # an offset, too
    trimmed = pc.binary_length(pc.utf8_trim_whitespace(ids))
    expected = pc.sum(pc.not_equal(trimmed, pc.binary_length(ids))).as_py() or 0
    assert _whitespace_count(ids) == expected
    assert _whitespace_count(ids.cast(pa.large_string())) == expected


few = st.lists(st.text(alphabet="ab", max_size=2), max_size=60)  # many repeats and empty ids


@given(few, few, st.booleans())
def test_diff_and_counts_with_repeated_ids_on_both_sides(source, remote, large):
    kind = pa.large_string() if large else pa.string()
    plan = make_plan(pa.array(source, kind), pa.array(remote, pa.string()), RULES)
    assert set(plan.to_delete.to_pylist()) | set(plan.skipped_ids.to_pylist()) == \
        set(remote) - set(source)
    for column, stats in ((source, plan.source), (remote, plan.remote)):
        assert stats.unique == len(set(column) - {""})
        assert stats.empty == column.count("")


IDS = st.text(alphabet="aAb1 é", max_size=3)
REASONS = st.sampled_from(["protected", "near_match", "pending_grace", "out_of_scope"])


@given(st.lists(IDS, unique=True), st.lists(st.tuples(IDS, REASONS)), st.data(), REASONS,
       st.booleans())
def test_defer_keeps_skipped_sorted_by_reason_then_id(to_delete, skipped, data, reason,
                                                       sort_skipped):
    # Plans from make_plan hold sorted lists (defer then inserts a block); others, such as
    # a resumed run's, may not (defer then sorts every row): the result is the same.
    to_delete = sorted(to_delete, key=lambda i: i.encode())
    if sort_skipped:
        skipped = sorted(skipped, key=lambda row: (row[1].encode(), row[0].encode()))
    mask = data.draw(st.lists(st.booleans(), min_size=len(to_delete), max_size=len(to_delete)))
    plan = Plan(to_delete=pa.array(to_delete, pa.string()),
                skipped_ids=pa.array([i for i, _ in skipped], pa.string()),
                skipped_reasons=pa.array([r for _, r in skipped], pa.string()),
                source=IdStats(0, 0, 0), remote=IdStats(0, 0, 0))
    moved = [i for i, m in zip(to_delete, mask, strict=True) if m]
    deferred = defer(plan, pa.array(mask, pa.bool_()), reason)
    assert deferred.to_delete.to_pylist() == [
        i for i, m in zip(to_delete, mask, strict=True) if not m]
    expected = skipped + [(i, reason) for i in moved] if moved else skipped
    if moved:
        expected = sorted(expected, key=lambda row: (row[1].encode(), row[0].encode()))
    assert list(zip(deferred.skipped_ids.to_pylist(), deferred.skipped_reasons.to_pylist(),
                    strict=True)) == expected
