"""Pure planning: which remote ids to delete, which to skip and why, and the id statistics.

Everything here is a function of Arrow arrays and plain values, so the same inputs give
the same plan whether the inventory came from the API or from an export file. The set
difference uses Arrow's hash-based ``is_in``: a Python set of ten million strings costs
several times the memory and time (see benchmarks/diff.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

SKIP_UNADDRESSABLE = "unaddressable"
SKIP_EMPTY = "empty_id"
SKIP_TOO_LONG = "too_long"


@dataclass(frozen=True)
class IdStats:
    """What a column of ids held, for the report; never used to decide a delete."""

    rows: int
    empty: int
    duplicates: int  # rows repeating an id seen earlier in the column
    whitespace: int  # ids with leading or trailing whitespace, kept exactly as written

    @property
    def unique(self) -> int:
        """Distinct non-empty ids."""
        return self.rows - self.empty - self.duplicates


def _always_fits(_item_id: str) -> bool:
    return True


@dataclass(frozen=True)
class AddressRules:
    """What one backend can address.

    Ids containing a forbidden substring cannot be sent (``unaddressable``); ids for which
    ``fits`` is false cannot fit a request on their own (``too_long``). ``fits`` is only
    asked about ids longer than ``fits_below_bytes``, which keeps planning vectorised.
    """

    forbidden_substrings: tuple[str, ...] = ()
    fits: Callable[[str], bool] = field(default=_always_fits)
    fits_below_bytes: int = 1 << 62


@dataclass(frozen=True)
class Plan:
    to_delete: pa.Array  # sorted, unique, sendable
    skipped_ids: pa.Array  # sorted by reason then id
    skipped_reasons: pa.Array
    source: IdStats
    remote: IdStats

    def skipped_counts(self) -> dict[str, int]:
        counts = pc.value_counts(self.skipped_reasons).to_pylist()
        return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}


def as_string_array(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous string array (large_string when offsets would overflow)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks() if ids.num_chunks != 1 else ids.chunk(0)
    if pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type):
        return ids
    return ids.cast(pa.large_string())


def id_stats(ids: pa.Array) -> IdStats:
    rows = len(ids)
    empty_mask = pc.equal(pc.binary_length(ids), 0)
    empty = pc.sum(empty_mask).as_py() or 0
    distinct = pc.count_distinct(ids).as_py()
    # count_distinct counts "" once when present; duplicates are among non-empty ids only.
    duplicates = (rows - empty) - (distinct - (1 if empty else 0))
    trimmed_differs = pc.match_substring_regex(ids, r"^\s|\s$")
    whitespace = pc.sum(trimmed_differs).as_py() or 0
    return IdStats(rows=rows, empty=empty, duplicates=duplicates, whitespace=whitespace)


def make_plan(source: pa.Array, remote: pa.Array, rules: AddressRules) -> Plan:
    """to_delete = remote - source, minus what the backend cannot address, sorted."""
    stale_mask = pc.invert(pc.is_in(remote, value_set=source))
    stale = pc.unique(remote.filter(stale_mask))
    reasons = _skip_reasons(stale, rules)
    sendable = stale.filter(pc.is_null(reasons))
    skipped = pa.table({"item_id": stale, "reason": reasons}).filter(pc.is_valid(reasons))
    skipped = skipped.sort_by([("reason", "ascending"), ("item_id", "ascending")])
    return Plan(
        to_delete=pc.take(sendable, pc.sort_indices(sendable)),
        skipped_ids=as_string_array(skipped.column("item_id")),
        skipped_reasons=as_string_array(skipped.column("reason")),
        source=id_stats(source),
        remote=id_stats(remote),
    )


def _skip_reasons(ids: pa.Array, rules: AddressRules) -> pa.Array:
    """A reason per id, null where the id can be sent. The first rule that matches wins."""
    lengths = pc.binary_length(ids)
    empty = pc.equal(lengths, 0)
    unaddressable = pa.array([False] * len(ids), type=pa.bool_())
    for needle in rules.forbidden_substrings:
        unaddressable = pc.or_(unaddressable, pc.match_substring(ids, needle))
    long_ids = ids.filter(pc.greater_equal(lengths, rules.fits_below_bytes)).to_pylist()
    refused = pa.array([i for i in long_ids if not rules.fits(i)], type=ids.type)
    too_long = pc.is_in(ids, value_set=refused)
    null = pa.scalar(None, type=pa.string())
    return pc.if_else(
        empty,
        SKIP_EMPTY,
        pc.if_else(unaddressable, SKIP_UNADDRESSABLE, pc.if_else(too_long, SKIP_TOO_LONG, null)),
    )
