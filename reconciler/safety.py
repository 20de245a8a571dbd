"""Pure safety rules: source health gates, delete caps, protection and grace.

The order is fixed and matters (see the runner): ids outside the job's scope, protected
ids and near matches are taken out of the diff first (they are never deletions); the
source gates then judge the source as a whole, and a source they refuse records nothing;
grace then splits the rest into ids due now and ids still pending (the absences of a
healthy source are recorded even when a cap refuses, so grace moves on); the caps judge
only the ids due now, so a run that would delete nothing passes every cap, and a huge
bad diff is still refused on the run where it would be deleted. Every decision is a
``Gate`` with the numbers that decided it, for the report and the log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.config import Safety

SKIP_PROTECTED = "protected"
SKIP_PENDING_GRACE = "pending_grace"
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    detail: str
    numbers: Mapping[str, float | int | str | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"gate": self.name, "passed": self.passed, "detail": self.detail,
                **self.numbers}


@dataclass(frozen=True)
class SourceFacts:
    path: str
    age_seconds: float | None  # None when unknown
    rows: int
    unique: int
    empty: int
    last_unique: int | None  # distinct source ids of the last successful real run
    missing_canaries: tuple[str, ...]
    lost_leading_zeros: int  # ids to delete that equal a source id but for leading zeros


def judge_source(rules: Safety, facts: SourceFacts) -> list[Gate]:
    gates = []
    if rules.max_age is not None and facts.age_seconds is not None:
        gates.append(Gate(
            "max_age", facts.age_seconds <= rules.max_age,
            f"the source file is {_hours(facts.age_seconds)} old; max_age is "
            f"{_hours(rules.max_age)}",
            {"age_seconds": round(facts.age_seconds), "max_age_seconds": rules.max_age},
        ))
    gates.append(Gate(
        "min_ids", facts.unique >= rules.min_ids,
        f"the source holds {facts.unique} ids; min_ids is {rules.min_ids}",
        {"source_ids": facts.unique, "min_ids": rules.min_ids},
    ))
    if facts.last_unique:
        shrink = 1 - facts.unique / facts.last_unique
        gates.append(Gate(
            "max_shrink", shrink <= rules.max_shrink,
            f"the source shrank by {shrink:.1%} since the last successful run "
            f"({facts.last_unique} -> {facts.unique} ids); max_shrink is {rules.max_shrink:.0%}",
            {"last_source_ids": facts.last_unique, "source_ids": facts.unique,
             "shrink": round(shrink, 4), "max_shrink": rules.max_shrink},
        ))
    share = facts.empty / facts.rows if facts.rows else 0.0
    gates.append(Gate(
        "max_error_share", share <= rules.max_error_share,
        f"{facts.empty} of {facts.rows} source rows have an empty id ({share:.1%}); "
        f"max_error_share is {rules.max_error_share:.1%}",
        {"empty_ids": facts.empty, "rows": facts.rows, "max_error_share": rules.max_error_share},
    ))
    if rules.canary_ids:
        missing = facts.missing_canaries
        gates.append(Gate(
            "canary_ids", not missing,
            f"canary ids missing from the source: {', '.join(missing[:5])}" if missing
            else f"all {len(rules.canary_ids)} canary ids are present",
            {"missing_canaries": len(missing)},
        ))
    gates.append(Gate(
        "leading_zeros", facts.lost_leading_zeros == 0,
        f"{facts.lost_leading_zeros} ids to delete equal a source id but for leading zeros "
        "(was the export read as numbers?)" if facts.lost_leading_zeros
        else "no id differs from the source only by leading zeros",
        {"lost_leading_zeros": facts.lost_leading_zeros},
    ))
    return gates


def judge_caps(rules: Safety, to_delete: int, remote: int, deleted_today: int) -> list[Gate]:
    """The caps, on the ids this run would delete now (after grace): deleting nothing
    passes every cap, whatever was deleted earlier today."""
    gates = []
    if rules.max_deletes is not None:
        gates.append(Gate(
            "max_deletes", to_delete <= rules.max_deletes,
            f"{to_delete} ids to delete; max_deletes is {rules.max_deletes}",
            {"to_delete": to_delete, "max_deletes": rules.max_deletes},
        ))
    fraction = to_delete / remote if remote else 0.0
    gates.append(Gate(
        "max_delete_fraction", fraction <= rules.max_delete_fraction,
        f"{to_delete} of {remote} remote ids ({fraction:.1%}) to delete; "
        f"max_delete_fraction is {rules.max_delete_fraction:.0%}",
        {"to_delete": to_delete, "remote_ids": remote, "fraction": round(fraction, 4),
         "max_delete_fraction": rules.max_delete_fraction},
    ))
    if rules.max_deletes_per_day is not None:
        daily = rules.max_deletes_per_day
        budget = int(daily) if daily >= 1 else int(daily * remote)
        gates.append(Gate(
            "max_deletes_per_day", to_delete == 0 or deleted_today + to_delete <= budget,
            f"{deleted_today} deleted in the last 24 h plus {to_delete} now; the daily budget "
            f"is {budget}",
            {"deleted_last_24h": deleted_today, "to_delete": to_delete, "daily_budget": budget},
        ))
    return gates


def refusal(gates: list[Gate]) -> str | None:
    """One line naming every failed gate, or None when all passed."""
    failed = [g for g in gates if not g.passed]
    if not failed:
        return None
    return "; ".join(f"{g.name}: {g.detail}" for g in failed)


def protected_mask(ids: pa.Array, patterns: tuple[str, ...], listed: pa.Array) -> pa.Array:
    """True for ids named exactly, matched by a glob, or listed in a protect file."""
    exact = [p for p in patterns if not _GLOB_CHARS & set(p)]
    globs = [p for p in patterns if _GLOB_CHARS & set(p)]
    mask = pc.is_in(ids, value_set=pa.concat_arrays([
        pa.array(exact, type=pa.string()), listed.cast(pa.string())]))
    for pattern in globs:
        mask = pc.or_(mask, pc.match_substring_regex(ids, glob_to_regex(pattern)))
    return pc.fill_null(mask, False)


def glob_to_regex(pattern: str) -> str:
    """A shell glob as an anchored RE2 pattern: ``*`` any run, ``?`` one char, ``[...]`` a set."""
    out, i = ["^"], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and (end := _set_end(pattern, i)) > 0:
            body = pattern[i + 1:end]
            negate = body.startswith("!")
            out.append(_set_regex(body[1:] if negate else body, negate))
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    out.append("$")
    return "".join(out)


def _set_regex(body: str, negate: bool) -> str:
    """A glob set as a regex class (valid for RE2 and Python); like fnmatch, a reversed
    range such as ``z-a`` is empty, and a set left empty matches nothing."""
    items, i = [], 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            low, high = body[i], body[i + 2]
            if low <= high:
                items.append(f"{re.escape(low)}-{re.escape(high)}")
            i += 3
        else:
            items.append(re.escape(body[i]))
            i += 1
    if not items:
        return "[\\s\\S]" if negate else "[^\\s\\S]"
    return ("[^" if negate else "[") + "".join(items) + "]"


def _set_end(pattern: str, start: int) -> int:
    """Index of the "]" closing the set opened at ``start`` (a leading "!" or "]" is part of
    the set), or -1 when it is not closed and "[" is a literal."""
    first = start + 1
    if pattern[first:first + 1] == "!":
        first += 1
    if pattern[first:first + 1] == "]":
        first += 1
    return pattern.find("]", first)


def grace_due(
    ids: list[str], absences: Mapping[str, tuple[int, float]], rules: Safety, now: float
) -> tuple[list[str], list[str], dict[str, tuple[int, float]]]:
    """Split ids into (due, pending) and the absence records this run would leave.

    ``absences`` maps an id to (consecutive runs it was missing, when first missed) as
    of the previous real run. An id is due once missing in ``grace_runs`` consecutive
    runs, this one included, **and** for ``grace_period`` (None: runs only), so a few
    runs in quick succession over one bad export delete nothing. A clock set back makes
    ids wait longer, never shorter.
    """
    due: list[str] = []
    pending: list[str] = []
    updated: dict[str, tuple[int, float]] = {}
    for item_id in ids:
        runs, first = absences.get(item_id, (0, now))
        runs += 1
        updated[item_id] = (runs, first)
        by_period = rules.grace_period is None or now - first >= rules.grace_period
        (due if runs >= rules.grace_runs and by_period else pending).append(item_id)
    return due, pending, updated


def lost_leading_zeros(to_delete: pa.Array, source: pa.Array) -> int:
    """How many ids to delete equal a source id once their leading zeros are dropped.

    Like every membership test against the whole source here, it hashes the small side
    and probes the source, never the other way round (that would hash ten million ids).
    """
    padded = to_delete.filter(pc.starts_with(to_delete, "0"))
    if not len(padded):
        return 0
    stripped = pc.utf8_ltrim(padded, "0")
    stripped = pc.unique(stripped.filter(pc.greater(pc.binary_length(stripped), 0)))
    return _present_count(source, stripped)


def missing_from(source: pa.Array, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """Which of a few ``wanted`` ids (the canaries) the source lacks."""
    if not wanted:
        return ()
    present = set(source.filter(pc.is_in(source, value_set=pa.array(list(wanted),
                                                                     source.type))).to_pylist())
    return tuple(w for w in wanted if w not in present)


def _present_count(source: pa.Array, values: pa.Array) -> int:
    """How many distinct ``values`` occur in ``source``."""
    if not len(values):
        return 0
    hits = source.filter(pc.is_in(source, value_set=values.cast(source.type)))
    return int(pc.count_distinct(hits).as_py() or 0)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"
