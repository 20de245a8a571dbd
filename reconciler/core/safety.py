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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reconciler.core.settings import Safety

SKIP_PROTECTED = "protected"
SKIP_PENDING_GRACE = "pending_grace"
SKIP_NEAR_MATCH = "near_match"
# What makes two ids a near match, in the order the normal form applies it.
NEAR_MATCH_KINDS = ("whitespace", "unicode", "case", "leading_zeros")
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
    near_matches: int = 0  # ids to delete whose normal form equals a source id's (skipped)
    near_match_kinds: Mapping[str, int] = field(default_factory=dict)
    final_newline: bool | None = None  # CSV: the last row ends with a line break


def judge_source(rules: Safety, facts: SourceFacts) -> list[Gate]:
    gates = []
    if facts.age_seconds is not None and facts.age_seconds < -rules.max_clock_skew:
        gates.append(Gate(
            "max_clock_skew", False,
            f"the source file's mtime is {_hours(-facts.age_seconds)} in the future; "
            f"max_clock_skew is {rules.max_clock_skew / 60:.0f} min (is a clock wrong?)",
            {"age_seconds": round(facts.age_seconds),
             "max_clock_skew_seconds": rules.max_clock_skew},
        ))
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
    if facts.final_newline is False:
        gates.append(Gate(
            "require_final_newline", not rules.require_final_newline,
            "the last row of the source has no line break: the export may be cut short "
            "(still being written?)" + ("" if rules.require_final_newline
                                        else "; accepted (require_final_newline = false)"),
            {"final_newline": False},
        ))
    allowed = rules.max_near_match_share * facts.unique
    kinds = ", ".join(f"{k} {n}" for k, n in facts.near_match_kinds.items() if n)
    gates.append(Gate(
        "near_match", facts.near_matches <= allowed,
        f"{facts.near_matches} ids to delete equal a source id but for whitespace, letter "
        f"case, Unicode normalization or leading zeros ({kinds}); they are skipped as "
        f"near_match; max_near_match_share is {rules.max_near_match_share:.2%} of "
        f"{facts.unique} source ids (was the export re-encoded or read as numbers?)"
        if facts.near_matches else "no id to delete is a near match of a source id",
        {"near_matches": facts.near_matches,
         **{k: facts.near_match_kinds.get(k, 0) for k in NEAR_MATCH_KINDS},
         "max_near_match_share": rules.max_near_match_share},
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


@dataclass(frozen=True)
class Grace:
    """How long each id to delete has been missing, as of this run, and which are due."""

    ids: pa.Array
    runs: np.ndarray  # consecutive runs missing, this one included
    first_missing: np.ndarray  # when first missed (epoch seconds)
    due: np.ndarray  # bool: missing long enough, in runs and in time

    def absences(self) -> dict[str, tuple[int, float]]:
        """The absence records this run would leave (built only when they are stored)."""
        return dict(zip(self.ids.to_pylist(),
                        zip(self.runs.tolist(), self.first_missing.tolist(), strict=True),
                        strict=True))


def grace_split(
    ids: pa.Array, absences: Mapping[str, tuple[int, float]], rules: Safety, now: float
) -> Grace:
    """Which of the (unique) ids to delete are due and the absence records this run leaves.

    ``absences`` maps an id to (consecutive runs it was missing, when first missed) as
    of the previous real run. An id is due once missing in ``grace_runs`` consecutive
    runs, this one included, **and** for ``grace_period`` (None: runs only), so a few
    runs in quick succession over one bad export delete nothing. A clock set back makes
    ids wait longer, never shorter. Vectorised: one ``index_in`` against the records.
    """
    ids = ids.cast(pa.string())
    known = pa.array(list(absences), pa.string())
    # The last slot is what an id never missed before starts from: 0 runs, missed now.
    past_runs = np.fromiter((r for r, _ in absences.values()), np.int64, len(absences))
    past_first = np.fromiter((f for _, f in absences.values()), np.float64, len(absences))
    past_runs, past_first = np.append(past_runs, 0), np.append(past_first, now)
    slot = pc.fill_null(pc.index_in(ids, value_set=known), -1).to_numpy().astype(np.int64)
    runs = past_runs[slot] + 1
    first = past_first[slot]
    due = runs >= rules.grace_runs
    if rules.grace_period is not None:
        due &= now - first >= rules.grace_period
    return Grace(ids, runs, first, due)


def grace_due(
    ids: list[str], absences: Mapping[str, tuple[int, float]], rules: Safety, now: float
) -> tuple[list[str], list[str], dict[str, tuple[int, float]]]:
    """``grace_split`` on a list: (due, pending, the absence records this run would leave)."""
    grace = grace_split(pa.array(ids, pa.string()), absences, rules, now)
    due = pa.array(grace.due, pa.bool_())
    return (grace.ids.filter(due).to_pylist(), grace.ids.filter(pc.invert(due)).to_pylist(),
            grace.absences())


@dataclass(frozen=True)
class NearMatches:
    """Ids to delete whose normal form equals a source id's, and what made them differ."""

    ids: pa.Array
    kinds: Mapping[str, int]


_NORMALISE_SLICE = 1_000_000  # source ids normalised at a time: bounds the temporaries
# Invisible characters stripped with the whitespace: a BOM left on a row of a concatenated
# export, zero-width spaces and joiners pasted along with an id.
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"


def normal_forms(ids: pa.Array, ascii_only: bool = False) -> list[pa.Array]:
    """The steps of an id's normal form: stripped (of whitespace and invisible characters
    such as a BOM or zero-width space), NFC, lower case, and for ids of ASCII
    digits only, without leading zeros ("000" -> "0"). The last one is the normal form.

    ``ascii_only`` (every id is ASCII) takes the ASCII kernels; NFC is then the identity.
    """
    if ascii_only:
        stripped = pc.ascii_trim_whitespace(ids)
        composed = stripped
        lowered = pc.ascii_lower(composed)
    else:
        stripped = pc.utf8_trim(pc.utf8_trim_whitespace(ids), _INVISIBLE)
        stripped = pc.utf8_trim_whitespace(stripped)
        composed = pc.utf8_normalize(stripped, "NFC")
        lowered = pc.utf8_lower(composed)
    number = pc.ascii_is_decimal(lowered)
    if not pc.any(number).as_py():  # no number: nothing to unpad (the usual case)
        return [stripped, composed, lowered, lowered]
    unpadded = pc.utf8_ltrim(lowered, "0")
    unpadded = pc.if_else(pc.equal(pc.binary_length(unpadded), 0), "0", unpadded)
    return [stripped, composed, lowered, pc.if_else(number, unpadded, lowered)]


def near_matches(to_delete: pa.Array, source: pa.Array) -> NearMatches:
    """Which ids to delete equal a source id once both are in normal form (``to_delete``
    holds no source id: it is the diff).

    Arrow-native and one pass over the source: the small side (the ids to delete) is
    normalised and hashed, the source is normalised slice by slice (ASCII kernels when
    it is all ASCII) and probed against it; only the few source ids that hit are kept,
    and only they are normalised again to tell what kind of near match each one is.
    """
    empty = NearMatches(pa.array([], pa.string()), dict.fromkeys(NEAR_MATCH_KINDS, 0))
    to_delete = to_delete.cast(pa.string())
    if not len(to_delete) or not len(source):
        return empty
    wanted = normal_forms(to_delete)
    value_set = pc.unique(wanted[-1].filter(pc.greater(pc.binary_length(wanted[-1]), 0)))
    if not len(value_set):
        return empty
    ascii_only = _is_ascii(source)
    # A source id already in normal form can only match an id to delete that is not:
    # equal ids are never in both (``to_delete`` is a diff against this source). So when
    # every id to delete is in normal form (the usual case) only the source ids that
    # normalising changes are probed, which spares hashing every source id.
    changed_only = bool(pc.all(pc.equal(wanted[-1], to_delete)).as_py())
    partners = []
    for start in range(0, len(source), _NORMALISE_SLICE):
        piece = source.slice(start, _NORMALISE_SLICE).cast(pa.string())
        forms = normal_forms(piece, ascii_only)[-1].cast(pa.string())
        if changed_only:
            changed = pc.not_equal(forms, piece)
            piece, forms = piece.filter(changed), forms.filter(changed)
        hit = pc.is_in(forms, value_set=value_set)
        if pc.any(hit).as_py():
            partners.append(piece.filter(hit))
    if not partners:
        return empty
    source_ids = pa.concat_arrays(partners)
    source_forms = normal_forms(source_ids)
    matched = pc.is_in(wanted[-1], value_set=source_forms[-1])
    return NearMatches(to_delete.filter(matched),
                       _kinds(to_delete, wanted, source_ids, source_forms))


def _kinds(ids: pa.Array, forms: list[pa.Array], source_ids: pa.Array,
           source_forms: list[pa.Array]) -> dict[str, int]:
    """Per kind, how many near-matched ids needed that step of the normal form: the step
    changed one side of a pair that was still different before it."""
    names = [f"f{i}" for i in range(5)]
    left = pa.table(dict(zip(names, [ids, *forms], strict=True)))
    right = pa.table(dict(zip([f"s{n}" for n in names], [source_ids, *source_forms],
                              strict=True)))
    pairs = left.join(right, keys="f4", right_keys="sf4", join_type="inner")
    pairs = pairs.append_column("sf4", pairs["f4"])  # the join keeps one key column
    flags = {}
    for step, kind in enumerate(NEAR_MATCH_KINDS, start=1):
        before, after = f"f{step - 1}", f"f{step}"
        differed = pc.not_equal(pairs[before], pairs[f"s{before}"])
        changed = pc.or_(pc.not_equal(pairs[after], pairs[before]),
                         pc.not_equal(pairs[f"s{after}"], pairs[f"s{before}"]))
        flags[kind] = pc.and_(differed, changed)
    per_id = pa.table({"id": pairs["f0"], **flags}).group_by("id").aggregate(
        [(kind, "max") for kind in NEAR_MATCH_KINDS])
    return {kind: int(pc.sum(per_id[f"{kind}_max"]).as_py() or 0) for kind in NEAR_MATCH_KINDS}


def _is_ascii(ids: pa.Array) -> bool:
    """Whether every byte of the ids' character data is ASCII (one vectorised pass)."""
    data = ids.buffers()[2]
    if data is None or not len(ids):
        return True
    return bool(np.frombuffer(data, dtype=np.uint8).max(initial=0) < 0x80)


def missing_from(source: pa.Array, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """Which of a few ``wanted`` ids (the canaries) the source lacks."""
    if not wanted:
        return ()
    present = set(source.filter(pc.is_in(source, value_set=pa.array(list(wanted),
                                                                     source.type))).to_pylist())
    return tuple(w for w in wanted if w not in present)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"
