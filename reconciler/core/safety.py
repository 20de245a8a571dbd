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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reconciler.core.globs import glob_to_regex
from reconciler.core.nearmatch import NEAR_MATCH_KINDS, NearMatches, near_matches, normal_forms
from reconciler.core.settings import Safety
from reconciler.core.states import SkipReason
from reconciler.core.strbuf import offsets

SKIP_PROTECTED = SkipReason.PROTECTED
SKIP_PENDING_GRACE = SkipReason.PENDING_GRACE
SKIP_NEAR_MATCH = SkipReason.NEAR_MATCH
__all__ = [  # near matches live in nearmatch.py; these names are the gates' vocabulary too
    "NEAR_MATCH_KINDS", "NearMatches", "near_matches", "normal_forms",
]
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
    mtime: float | None = None  # the export's mtime, and the one the last successful run read
    last_mtime: float | None = None
    placeholders: int = 0  # source rows whose id is a placeholder (#N/A, nan, NULL, blank)
    placeholder: str | None = None  # the first of them, as written


# Coarse filesystems keep mtimes to 2 s (FAT) or 1 s: within this, "older" is noise.
MTIME_RESOLUTION = 2.0


def judge_source(rules: Safety, facts: SourceFacts) -> list[Gate]:
    """Every source gate, in the order the report lists them; a gate that has nothing to
    judge (no baseline yet, no canaries, a Parquet file's line ends) is left out."""
    judged = (gate(rules, facts) for gate in _SOURCE_GATES)
    return [gate for gate in judged if gate is not None]


def _clock_skew_gate(rules: Safety, facts: SourceFacts) -> Gate | None:
    if facts.age_seconds is None or facts.age_seconds >= -rules.max_clock_skew:
        return None
    return Gate(
        "max_clock_skew", False,
        f"the source file's mtime is {_hours(-facts.age_seconds)} in the future; "
        f"max_clock_skew is {rules.max_clock_skew / 60:.0f} min (is a clock wrong?)",
        {"age_seconds": round(facts.age_seconds),
         "max_clock_skew_seconds": rules.max_clock_skew},
    )


def _age_gate(rules: Safety, facts: SourceFacts) -> Gate | None:
    if rules.max_age is None or facts.age_seconds is None:
        return None
    return Gate(
        "max_age", facts.age_seconds <= rules.max_age,
        f"the source file is {_hours(facts.age_seconds)} old; max_age is "
        f"{_hours(rules.max_age)}",
        {"age_seconds": round(facts.age_seconds), "max_age_seconds": rules.max_age},
    )


def _not_older_gate(rules: Safety, facts: SourceFacts) -> Gate | None:
    if facts.mtime is None or facts.last_mtime is None:
        return None
    return _older_source_gate(rules, facts.mtime, facts.last_mtime)


def _min_ids_gate(rules: Safety, facts: SourceFacts) -> Gate:
    return Gate(
        "min_ids", facts.unique >= rules.min_ids,
        f"the source holds {facts.unique} ids; min_ids is {rules.min_ids}",
        {"source_ids": facts.unique, "min_ids": rules.min_ids},
    )


def _shrink_gate(rules: Safety, facts: SourceFacts) -> Gate | None:
    if not facts.last_unique:
        return None
    shrink = 1 - facts.unique / facts.last_unique
    return Gate(
        "max_shrink", shrink <= rules.max_shrink,
        f"the source shrank by {shrink:.1%} since the last successful run "
        f"({facts.last_unique} -> {facts.unique} ids); max_shrink is {rules.max_shrink:.0%}",
        {"last_source_ids": facts.last_unique, "source_ids": facts.unique,
         "shrink": round(shrink, 4), "max_shrink": rules.max_shrink},
    )


def _error_share_gate(rules: Safety, facts: SourceFacts) -> Gate:
    lost = facts.empty + facts.placeholders
    share = lost / facts.rows if facts.rows else 0.0
    what = (f"an empty id or a placeholder for one such as {facts.placeholder!r}"
            if facts.placeholders else "an empty id")
    return Gate(
        "max_error_share", share <= rules.max_error_share,
        f"{lost} of {facts.rows} source rows have {what} ({share:.1%}); "
        f"max_error_share is {rules.max_error_share:.1%}",
        {"empty_ids": facts.empty, "placeholder_ids": facts.placeholders, "rows": facts.rows,
         "max_error_share": rules.max_error_share},
    )


# What a spreadsheet, a dataframe or a database client writes where a value is missing
# (compared trimmed and in lower case); a blank id (whitespace only) is one too.
PLACEHOLDERS = ("", "#n/a", "#n/a n/a", "#na", "#ref!", "#value!", "#name?", "#div/0!",
                "#null!", "#num!", "#error!", "#error", "n/a", "nan", "none", "null",
                "<na>", "nat", "undefined", "(null)", "(blank)", "-", "--", "?", "\u2013",
                "\u2014")
_PLACEHOLDER_LONGEST = max(map(len, PLACEHOLDERS))  # bytes, when not blank-padded
# The first bytes of a blank: ASCII whitespace, or the lead byte of a no-break or another
# Unicode space (U+00A0, U+1680, U+2000-U+205F, U+3000).
_BLANK_LEADS = (*b" \t\x0b\x0c", 0xC2, 0xE1, 0xE2, 0xE3)


def _placeholder_pairs() -> np.ndarray:
    """The (first byte, second byte) pairs a placeholder not padded with blanks can start
    with (any case), as a 65,536-flag table."""
    pairs = np.zeros(1 << 16, dtype=bool)
    for word in PLACEHOLDERS:
        for spelling in {word, word.upper(), word.capitalize(), word.title()}:
            head = spelling.encode()
            if len(head) >= 2:
                pairs[head[0] << 8 | head[1]] = True
    return pairs


_PLACEHOLDER_PAIRS = _placeholder_pairs()
_PLACEHOLDER_SLICE = 1 << 20  # ids looked at a time


def placeholder_ids(ids: pa.Array) -> tuple[int, str | None]:
    """How many ids are a placeholder for a missing value (``#N/A``, ``nan``, ``NULL``,
    a blank): rows whose item is in the source but whose id is lost, as with an empty id.
    And the first one, as written. Empty ids are not counted (they are counted apart).
    Only the ids whose first two bytes a placeholder (or a blank) can start with are
    compared, found by numpy over the offsets: the usual catalog pays a few table lookups
    per id."""
    if not len(ids) or ids.buffers()[2] is None:
        return 0, None
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        ids = ids.cast(pa.string())
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)
    if not len(data):
        return 0, None
    blank_lead = np.zeros(256, dtype=bool)
    blank_lead[list(_BLANK_LEADS)] = True
    lone = np.zeros(256, dtype=bool)  # one-byte placeholders: "-", "?"
    lone[[ord(word) for word in PLACEHOLDERS if len(word.encode()) == 1]] = True
    valid = np.asarray(ids.is_valid()) if ids.null_count else None
    rows = []
    for at in range(0, len(ids), _PLACEHOLDER_SLICE):  # slices bound the temporaries
        bounds = offsets(ids.slice(at, _PLACEHOLDER_SLICE))
        starts, lengths = bounds[:-1], np.diff(bounds)
        first = data[np.minimum(starts, len(data) - 1)].astype(np.uint16)
        second = data[np.minimum(starts + 1, len(data) - 1)]
        maybe = (lengths > 0) & (blank_lead[first] | ((lengths == 1) & lone[first]) | (
            (lengths >= 2) & (lengths <= _PLACEHOLDER_LONGEST)
            & _PLACEHOLDER_PAIRS[first << 8 | second]))
        if valid is not None:
            maybe &= valid[at:at + len(maybe)]
        rows.append(np.flatnonzero(maybe) + at)
    found = np.concatenate(rows)
    if not len(found):
        return 0, None
    candidates = ids.take(pa.array(found))
    trimmed = pc.utf8_trim_whitespace(candidates)
    hit = pc.or_(pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(PLACEHOLDERS)),
                 pc.equal(pc.binary_length(trimmed), 0))
    count = hit.true_count
    return count, (candidates[pc.index(hit, True).as_py()].as_py() if count else None)


def _canary_gate(rules: Safety, facts: SourceFacts) -> Gate | None:
    if not rules.canary_ids:
        return None
    missing = facts.missing_canaries
    return Gate(
        "canary_ids", not missing,
        f"canary ids missing from the source: {', '.join(missing[:5])}" if missing
        else f"all {len(rules.canary_ids)} canary ids are present",
        {"missing_canaries": len(missing)},
    )


def _final_newline_gate(rules: Safety, facts: SourceFacts) -> Gate | None:
    if facts.final_newline is not False:
        return None
    return Gate(
        "require_final_newline", not rules.require_final_newline,
        "the last row of the source has no line break: the export may be cut short "
        "(still being written?)" + ("" if rules.require_final_newline
                                    else "; accepted (require_final_newline = false)"),
        {"final_newline": False},
    )


def _near_match_gate(rules: Safety, facts: SourceFacts) -> Gate:
    allowed = rules.max_near_match_share * facts.unique
    kinds = ", ".join(f"{k} {n}" for k, n in facts.near_match_kinds.items() if n)
    return Gate(
        "near_match", facts.near_matches <= allowed,
        f"{facts.near_matches} ids to delete equal a source id but for their spelling "
        f"({kinds}); they are skipped as near_match; max_near_match_share is "
        f"{rules.max_near_match_share:.2%} of {facts.unique} source ids (was the export "
        "re-encoded or read as numbers?)"
        if facts.near_matches else "no id to delete is a near match of a source id",
        {"near_matches": facts.near_matches,
         **{k: facts.near_match_kinds.get(k, 0) for k in NEAR_MATCH_KINDS},
         "max_near_match_share": rules.max_near_match_share},
    )


_SOURCE_GATES: tuple[Callable[[Safety, SourceFacts], Gate | None], ...] = (
    _clock_skew_gate, _age_gate, _not_older_gate, _min_ids_gate, _shrink_gate,
    _error_share_gate, _canary_gate, _final_newline_gate, _near_match_gate,
)


def _older_source_gate(rules: Safety, mtime: float, last_mtime: float) -> Gate:
    """An export older than the one the last successful run read is an old file put back
    (``cp -p`` of yesterday's export after a failed job): fresh enough for ``max_age``, it
    lacks every item created since, and those would be deleted after grace."""
    older = last_mtime - mtime
    passed = older <= MTIME_RESOLUTION or rules.allow_older_source
    detail = (f"the source file's mtime is {_hours(older)} older than the export the last "
              "successful run read (an older export copied back?)"
              + ("; accepted (allow_older_source = true)" if rules.allow_older_source else "")
              if older > MTIME_RESOLUTION else
              "the source file is not older than the export the last successful run read")
    return Gate("source_not_older", passed, detail,
                {"older_seconds": round(max(older, 0.0), 3),
                 "allow_older_source": rules.allow_older_source})


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


def missing_from(source: pa.Array, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """Which of a few ``wanted`` ids (the canaries) the source lacks."""
    if not wanted:
        return ()
    present = set(source.filter(pc.is_in(source, value_set=pa.array(list(wanted),
                                                                     source.type))).to_pylist())
    return tuple(w for w in wanted if w not in present)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"
