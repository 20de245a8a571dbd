"""Scopes: which ids a job owns, and when two jobs on one catalog provably own none alike."""

from __future__ import annotations

import fnmatch
import itertools

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.scope import (
    conflict_line,
    entries_disjoint,
    in_scope_mask,
    ownership_conflicts,
    scopes_disjoint,
)


def matches(entry, item_id):
    return fnmatch.fnmatchcase(item_id, entry) if set("*?[") & set(entry) \
        else item_id.startswith(entry)


def test_prefixes_and_globs_select_ids():
    ids = pa.array(["EU-1", "EUR-2", "US-3", "x-eu", None], pa.string())
    assert in_scope_mask(ids, ("EU-", "*-eu")).to_pylist() == [True, False, False, True,
                                                               False]
    assert in_scope_mask(ids, ()).to_pylist() == [True] * 5


@pytest.mark.parametrize(("a", "b", "disjoint"), [
    ("EU-", "US-", True),
    ("EU-", "EU-DE-", False),  # one prefix holds the other
    ("EU-*", "US-*", True),
    ("EU-*", "E*", False),
    ("*-eu", "*-us", True),  # different literal endings
    ("*-eu", "*eu", False),
    ("*-eu", "EU-", False),  # a prefix may end with anything
    ("[AB]-1", "C-1", False),  # not proven (a set): refused, conservatively
    ("a?c", "a?d", True),  # literal endings c / d differ
    ("a?c", "abd", False),  # true, but not proven: a prefix may end with anything
    ("", "x", False),
])
def test_disjointness_is_proven_or_refused(a, b, disjoint):
    assert entries_disjoint(a, b) is disjoint
    assert entries_disjoint(b, a) is disjoint


def test_an_undeclared_scope_overlaps_everything():
    assert not scopes_disjoint((), ("EU-",))
    assert not scopes_disjoint((), ())
    assert scopes_disjoint(("EU-", "DE-"), ("US-", "CA-*"))
    assert not scopes_disjoint(("EU-",), ("*-ca",))  # EU-1-ca is in both
    assert not scopes_disjoint(("EU-", "DE-"), ("US-", "DE-1"))


@settings(max_examples=300)
@given(st.text(alphabet="ab-*?", min_size=1, max_size=4),
       st.text(alphabet="ab-*?", min_size=1, max_size=4))
def test_a_proof_of_disjointness_is_never_wrong(a, b):
    """Whenever two entries are called disjoint, no short id matches both."""
    if not entries_disjoint(a, b):
        return
    for length in range(0, 6):
        for chars in itertools.product("ab-", repeat=length):
            item_id = "".join(chars)
            assert not (matches(a, item_id) and matches(b, item_id)), (a, b, item_id)


def test_conflicts_name_both_jobs():
    jobs = {"eu": ("T1", ("EU-",)), "all": ("T1", ()), "us": ("T1", ("US-",)),
            "elsewhere": ("T2", ())}
    assert ownership_conflicts(jobs) == [
        ("all", "eu", "declare a disjoint 'scope' in each"),
        ("all", "us", "declare a disjoint 'scope' in each"),
    ]
    assert ownership_conflicts({"a": ("T", ("X",)), "b": ("T", ("X1",))}) == [
        ("a", "b", "their scopes are not provably disjoint")]
    assert conflict_line("a", "b", "why") == (
        "jobs 'a' and 'b' target the same catalog: why (an id may belong to one job only)")
