"""Pure planning: which remote ids to delete, which to skip and why, and the id statistics.

Everything here is a function of Arrow arrays and plain values, so the same inputs give
the same plan whether the inventory came from the API or from an export file. The set
difference is Arrow-native (one hash pass, then integer work): a Python set of ten million
strings costs several times the memory and time (see benchmarks/diff.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reconciler.core.setdiff import distinct, look_up
from reconciler.core.states import SkipReason
from reconciler.core.strbuf import offsets

SKIP_UNADDRESSABLE = SkipReason.UNADDRESSABLE
SKIP_EMPTY = SkipReason.EMPTY
SKIP_TOO_LONG = SkipReason.TOO_LONG


@dataclass(frozen=True)
class IdStats:
    """What a column of ids held, for the report; never used to decide a delete."""

    rows: int
    empty: int
    duplicates: int  # rows repeating a non-empty id seen earlier in the column
    whitespace: int | None = None  # ids with leading/trailing whitespace (source only)

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


def make_plan(source: pa.Array, remote: pa.Array, rules: AddressRules) -> Plan:
    """to_delete = remote - source, minus what the backend cannot address, sorted.

    One lookup of every remote id in the source (``setdiff.look_up``: ``index_in`` bucket
    by bucket, faster than the bare ``is_in`` diff of benchmarks/diff.py) tells, for each
    remote id, the first source row holding it. The diff and the distinct counts follow
    from integer work on those rows and from the source rows no remote id pointed at
    (usually none); see ``_Hits``.
    """
    source, remote = _same_string_type(_no_nulls(source), _no_nulls(remote))
    whitespace = _whitespace_count(source)
    hits = _Hits(source, remote)
    stale = hits.stale
    reasons = _skip_reasons(stale, rules)
    sendable = stale.filter(pc.is_null(reasons))
    skipped = pa.table({"item_id": stale, "reason": reasons}).filter(pc.is_valid(reasons))
    skipped = skipped.sort_by([("reason", "ascending"), ("item_id", "ascending")])
    return Plan(
        to_delete=pc.take(sendable, pc.sort_indices(sendable)),
        skipped_ids=as_string_array(skipped.column("item_id")),
        skipped_reasons=as_string_array(skipped.column("reason")),
        source=IdStats(rows=len(source), empty=hits.source_empty,
                       duplicates=len(source) - hits.source_empty - hits.source_unique,
                       whitespace=whitespace),
        remote=IdStats(rows=len(remote), empty=hits.remote_empty,
                       duplicates=len(remote) - hits.remote_empty - hits.remote_unique),
    )


def column_stats(ids: pa.Array) -> IdStats:
    """Rows, empty and repeated ids of one column (a resume's or an apply's source, which
    has no remote column to be diffed against): the shrink baseline counts distinct ids."""
    lengths = pc.binary_length(ids)
    empty = int(pc.sum(pc.equal(lengths, 0)).as_py() or 0)
    unique = len(distinct(ids.filter(pc.greater(lengths, 0))))
    return IdStats(rows=len(ids), empty=empty, duplicates=len(ids) - empty - unique)


def _no_nulls(ids: pa.Array) -> pa.Array:
    """Nulls as empty ids (a no-op, without a copy, when there is none)."""
    return pc.fill_null(ids, "") if ids.null_count else ids


# Bytes an id that starts or ends with whitespace can start or end with: ASCII control
# characters and space, and any byte of a multi-byte UTF-8 character.
_MAYBE_SPACE = np.zeros(256, dtype=bool)
_MAYBE_SPACE[:0x21] = _MAYBE_SPACE[0x7F:] = True


def _whitespace_count(ids: pa.Array) -> int:
    """How many ids have leading or trailing whitespace, as ``utf8_trim_whitespace`` sees it.

    Only ids whose first or last byte could be whitespace (looked up in numpy on the
    string buffers, without a copy) are trimmed and compared, so the usual source of
    clean ids costs two byte lookups per id instead of a trimmed copy of the column.
    """
    if not len(ids):
        return 0
    bounds = offsets(ids)
    data = ids.buffers()[2]
    if data is None:
        return 0
    chars = np.frombuffer(data, dtype=np.uint8)
    if not len(chars):
        return 0
    starts, ends = bounds[:-1], bounds[1:]
    last = len(chars) - 1  # an empty id's start may be the end of the buffer: clipped
    maybe = _MAYBE_SPACE[chars[np.minimum(starts, last)]] | _MAYBE_SPACE[chars[ends - 1]]
    maybe &= ends > starts  # empty ids have no whitespace
    candidates = ids.take(pa.array(np.flatnonzero(maybe)))
    # Trimming and comparing lengths is several times faster than a regex over every id.
    trimmed = pc.binary_length(pc.utf8_trim_whitespace(candidates))
    return int(pc.sum(pc.not_equal(trimmed, pc.binary_length(candidates))).as_py() or 0)


class _Hits:
    """The diff and the distinct counts from one lookup of the remote ids in the source.

    The lookup (``setdiff.look_up``, an ``index_in``) gives each remote id the first
    source row holding it (none: not in the source), so the stale ids are the remote ids
    with no row. Those rows, ``marked``, are the distinct ids in both columns, one row
    each. The source rows left unmarked are ids only in the source and repeats of any id:
    none in the usual export, and then nothing more is hashed. Otherwise an unmarked id
    is in the remote exactly when some marked row holds it too, which a lookup of the
    unmarked rows among the marked ones tells. Empty ids count as ids here and are taken
    out at the end.
    """

    def __init__(self, source: pa.Array, remote: pa.Array) -> None:
        lookup = look_up(remote, source)
        self.stale = distinct(lookup.missing)
        marked = np.zeros(len(source), dtype=bool)
        marked[lookup.rows] = True
        del lookup
        both = int(np.count_nonzero(marked))
        source_only = 0
        if both < len(source):
            # The unmarked rows whose id no marked row holds: ids only in the source.
            rest = source.filter(pa.array(~marked))
            source_only = len(distinct(look_up(rest, source.filter(pa.array(marked))).missing))
        self.source_empty = _empties(source)
        self.remote_empty = _empties(remote)
        self.source_unique = both + source_only - (1 if self.source_empty else 0)
        self.remote_unique = both + len(self.stale) - (1 if self.remote_empty else 0)


def _empties(ids: pa.Array) -> int:
    return int(pc.sum(pc.equal(pc.binary_length(ids), 0)).as_py() or 0)


def _same_string_type(a: pa.Array, b: pa.Array) -> tuple[pa.Array, pa.Array]:
    if a.type == b.type:
        return a, b
    return a.cast(pa.large_string()), b.cast(pa.large_string())


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


def defer(plan: Plan, mask: pa.Array, reason: str) -> Plan:
    """Move the ids of ``to_delete`` where ``mask`` is true to the skipped list with ``reason``."""
    moved = plan.to_delete.filter(mask)
    if not len(moved):
        return plan
    ids = plan.skipped_ids.cast(pa.string())
    reasons = plan.skipped_reasons.cast(pa.string())
    added = pa.repeat(pa.scalar(reason, pa.string()), len(moved))
    moved = moved.cast(pa.string())
    if (not pc.any(pc.equal(reasons, reason)).as_py() and _sorted(moved)
            and _sorted(reasons, ids)):
        # A reason not skipped yet (the usual case) and ``moved`` sorted, as ``to_delete``
        # is: it goes in as one block where its reason sorts, with no sort of every row.
        at = int(pc.sum(pc.less(reasons, reason)).as_py() or 0)
        skipped_ids = pa.concat_arrays([ids.slice(0, at), moved, ids.slice(at)])
        skipped_reasons = pa.concat_arrays([reasons.slice(0, at), added, reasons.slice(at)])
    else:
        skipped = pa.table({
            "item_id": pa.concat_arrays([ids, moved]),
            "reason": pa.concat_arrays([reasons, added]),
        }).sort_by([("reason", "ascending"), ("item_id", "ascending")])
        skipped_ids = skipped.column("item_id").combine_chunks()
        skipped_reasons = skipped.column("reason").combine_chunks()
    return Plan(
        to_delete=plan.to_delete.filter(pc.invert(mask)),
        skipped_ids=skipped_ids,
        skipped_reasons=skipped_reasons,
        source=plan.source,
        remote=plan.remote,
    )


def _sorted(first: pa.Array, then: pa.Array | None = None) -> bool:
    """Whether the rows are in ascending order (by ``first``, then by ``then``)."""
    if len(first) < 2:
        return True
    a, b = first.slice(0, len(first) - 1), first.slice(1)
    if then is None:
        return bool(pc.all(pc.less_equal(a, b)).as_py())
    c, d = then.slice(0, len(then) - 1), then.slice(1)
    ordered = pc.or_(pc.less(a, b), pc.and_(pc.equal(a, b), pc.less_equal(c, d)))
    return bool(pc.all(ordered).as_py())
