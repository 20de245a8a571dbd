"""Ownership: which ids of a shared catalog are a job's to delete.

A job's ``scope`` is a list of entries; an entry with a glob character (``*``, ``?``,
``[``) is a glob that must match the whole id, any other entry is an id prefix. An id
that matches no entry is never the job's to delete (skipped as ``out_of_scope``).

Two jobs whose targets have the same fingerprint may only run when both declare a scope
and the scopes are provably disjoint. The proof is conservative: two entries are
disjoint only when the literal text every matching id must start with (a prefix, or a
glob's text before its first glob character) differs, or when both must end with
literal text that differs. When that cannot be shown, the jobs are refused.

Pure: plain values and Arrow arrays in, masks and messages out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.core.globs import glob_to_regex
from reconciler.core.states import SkipReason

SKIP_OUT_OF_SCOPE = SkipReason.OUT_OF_SCOPE
_GLOB_CHARS = "*?["
_META = "*?[]"


def is_glob(entry: str) -> bool:
    return any(c in entry for c in _GLOB_CHARS)


def in_scope_mask(ids: pa.Array, scope: Sequence[str]) -> pa.Array:
    """True for ids the job owns; every id when the job declares no scope."""
    if not scope:
        return pc.or_(pc.is_valid(ids), pc.is_null(ids))  # all True, without a Python loop
    ids = ids.cast(pa.string())
    mask: pa.Array | None = None
    for entry in scope:
        hit = (pc.match_substring_regex(ids, glob_to_regex(entry)) if is_glob(entry)
               else pc.starts_with(ids, entry))
        mask = hit if mask is None else pc.or_(mask, hit)
    return pc.fill_null(mask, False)


def _literal_head(entry: str) -> str:
    """Text every id matched by ``entry`` starts with."""
    if not is_glob(entry):
        return entry
    cut = min(entry.index(c) for c in _GLOB_CHARS if c in entry)
    return entry[:cut]


def _literal_tail(entry: str) -> str | None:
    """Text every id matched by ``entry`` ends with (None: a prefix can end with anything)."""
    if not is_glob(entry):
        return None
    last = max(entry.rfind(c) for c in _META)
    return entry[last + 1:]


def _compatible(a: str, b: str, *, tail: bool) -> bool:
    """Whether some string could have both ``a`` and ``b`` at its start (or end)."""
    if tail:
        return a.endswith(b) or b.endswith(a)
    return a.startswith(b) or b.startswith(a)


def entries_disjoint(a: str, b: str) -> bool:
    """True only when no id can match both entries (False: not proven)."""
    if not _compatible(_literal_head(a), _literal_head(b), tail=False):
        return True
    tail_a, tail_b = _literal_tail(a), _literal_tail(b)
    return (tail_a is not None and tail_b is not None
            and not _compatible(tail_a, tail_b, tail=True))


def scopes_disjoint(a: Sequence[str], b: Sequence[str]) -> bool:
    """Two declared scopes that no id can share; an undeclared scope overlaps everything."""
    if not a or not b:
        return False
    return all(entries_disjoint(x, y) for x in a for y in b)


def ownership_conflicts(
    jobs: Mapping[str, tuple[str, Sequence[str]]],
) -> list[tuple[str, str, str]]:
    """(job, other job, why) for each pair of jobs on one catalog that may share ids.

    ``jobs`` maps a job name to (target fingerprint, scope).
    """
    conflicts = []
    for (name_a, (target_a, scope_a)), (name_b, (target_b, scope_b)) in combinations(
            sorted(jobs.items()), 2):
        if target_a != target_b or scopes_disjoint(scope_a, scope_b):
            continue
        if not scope_a or not scope_b:
            why = "declare a disjoint 'scope' in each"
        else:
            why = "their scopes are not provably disjoint"
        conflicts.append((name_a, name_b, why))
    return conflicts


def conflict_line(job: str, other: str, why: str) -> str:
    return (f"jobs {job!r} and {other!r} target the same catalog: {why} "
            "(an id may belong to one job only)")
