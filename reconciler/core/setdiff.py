"""Which probe ids are in a column of values, bucket by bucket so each hash table fits a cache.

One ``index_in`` over millions of ids builds a hash table of hundreds of megabytes and
then probes it at random: nearly every lookup is a cache miss, and that is most of a
plan's time. Cut both columns into buckets by a hash of each id's bytes instead: equal
ids fall in the same bucket, so looking each bucket's probe ids up in that bucket's
values gives exactly the answer of the one big lookup, from tables of a few tens of
thousands of ids. Gathering the buckets (one stable radix sort of a small key per
column, then an Arrow ``take`` per bucket, so only one bucket's copy lives at a time)
costs far less than the cache misses it spares; ``benchmarks/diff.py`` measures it.

``distinct`` (``pc.unique``) gains the same way. Small columns, and columns whose ids
hash into a few buckets only (the key reads a few bytes of each id, not all of them),
take the one big lookup. Pure: Arrow and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reconciler.core.strbuf import offsets

BUCKET_IDS = 1 << 15  # ids per bucket aimed at: a bucket's hash table stays in cache
MIN_PARTITIONED = 1 << 18  # below this many values one lookup is as fast
MAX_SKEW = 4  # a bucket holding this many times its share of the ids: not worth it
_KEY_BYTES_FROM_END = (1, 2, 3, 4, 5, 6)  # which bytes of an id (from its end) its key reads


@dataclass(frozen=True)
class Lookup:
    """The answer of ``pc.index_in(probe, value_set=values)``, as the diff needs it."""

    missing: pa.Array  # the probe ids not among the values, repeats kept, in no set order
    rows: np.ndarray  # the values' rows holding a probe id (the first row of each such id)


@dataclass(frozen=True)
class _Buckets:
    """A column's rows in bucket order (stable: column order within a bucket), and where
    each bucket ends in that order."""

    order: np.ndarray
    ends: np.ndarray

    @staticmethod
    def of(ids: pa.Array, buckets: int) -> _Buckets:
        keys = _keys(ids, buckets)
        # A stable sort keeps each bucket's rows in column order, so the first row of an
        # id in a bucket is its first row in the column. numpy radix-sorts 16-bit keys.
        rows_type = np.int32 if len(ids) < 1 << 31 else np.int64
        return _Buckets(np.argsort(keys, kind="stable").astype(rows_type),
                        np.cumsum(np.bincount(keys, minlength=buckets)))

    def rows(self, bucket: int) -> np.ndarray:
        return self.order[self.ends[bucket - 1] if bucket else 0:self.ends[bucket]]

    def skewed(self, max_skew: float) -> bool:
        """Whether a bucket holds more than ``max_skew`` times its share of the rows: the
        key reads a few bytes of each id, and ids alike in those gain nothing from buckets."""
        largest = int(np.diff(self.ends, prepend=0).max())
        return largest > max_skew * int(self.ends[-1]) / len(self.ends)


@dataclass(frozen=True)
class _Sizes:
    bucket_ids: int
    min_partitioned: int
    max_skew: float

    @staticmethod
    def now(bucket_ids: int | None, min_partitioned: int | None,
            max_skew: float | None) -> _Sizes:
        """The sizes asked for, else the module's constants as they are at the call."""
        return _Sizes(BUCKET_IDS if bucket_ids is None else bucket_ids,
                      MIN_PARTITIONED if min_partitioned is None else min_partitioned,
                      MAX_SKEW if max_skew is None else max_skew)

    def buckets(self, ids: int) -> int:
        """A power of two (at most 2**16, the key's width) giving about ``bucket_ids`` a
        bucket; 1 when the column is too small to gain from buckets."""
        if ids < max(self.min_partitioned, 2 * self.bucket_ids):
            return 1
        return 1 << min(16, (ids // self.bucket_ids).bit_length())


def look_up(probe: pa.Array, values: pa.Array, *, bucket_ids: int | None = None,
            min_partitioned: int | None = None, max_skew: float | None = None) -> Lookup:
    """Which ``probe`` ids are not among ``values``, and which value rows some probe id hit.

    Both are string arrays of one type without nulls. ``rows`` names, for every distinct
    probe id found, the first row of ``values`` holding it, as ``index_in`` does. The
    sizes default to the module's constants, read at each call.
    """
    sizes = _Sizes.now(bucket_ids, min_partitioned, max_skew)
    count = sizes.buckets(len(values)) if len(probe) else 1
    by_value = _cut(values, count)
    if by_value is None or by_value.skewed(sizes.max_skew):
        found = pc.index_in(probe, value_set=values)
        return Lookup(missing=probe.filter(pc.is_null(found)),
                      rows=pc.drop_null(found).to_numpy().astype(np.int64, copy=False))
    by_probe = _Buckets.of(probe, count)
    missing: list[pa.Array] = []
    rows: list[np.ndarray] = []
    for bucket in range(count):
        probe_rows = by_probe.rows(bucket)
        if not len(probe_rows):
            continue
        probed = probe.take(pa.array(probe_rows))
        value_rows = by_value.rows(bucket)
        found = pc.index_in(probed, value_set=values.take(pa.array(value_rows)))
        if found.null_count:
            missing.append(probed.filter(pc.is_null(found)))
        rows.append(value_rows[pc.drop_null(found).to_numpy()])
    return Lookup(
        missing=pa.concat_arrays(missing) if missing else probe.slice(0, 0),
        rows=np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64),
    )


def distinct(ids: pa.Array, *, bucket_ids: int | None = None,
             min_partitioned: int | None = None, max_skew: float | None = None) -> pa.Array:
    """The ids without repeats, in no set order: ``pc.unique`` bucket by bucket."""
    sizes = _Sizes.now(bucket_ids, min_partitioned, max_skew)
    split = _cut(ids, sizes.buckets(len(ids)))
    if split is None or split.skewed(sizes.max_skew):
        return pc.unique(ids)
    parts = [pc.unique(ids.take(pa.array(split.rows(bucket))))
             for bucket in range(len(split.ends))]
    return pa.concat_arrays(parts)


def _cut(ids: pa.Array, buckets: int) -> _Buckets | None:
    """The column cut into ``buckets`` by its ids' keys; None for a single bucket."""
    return _Buckets.of(ids, buckets) if buckets > 1 else None


def _keys(ids: pa.Array, buckets: int) -> np.ndarray:
    """A bucket per id (uint16), a hash of its length and of a few of its bytes: its last
    six and its middle one. Equal ids get equal keys; only an id's own bytes are read.
    One byte position at a time, in place: the column's size in scratch, not seven."""
    bounds = offsets(ids)
    starts, ends = bounds[:-1], bounds[1:]
    lengths = ends - starts
    data = ids.buffers()[2]
    chars = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    if not len(chars):  # every id empty: only the lengths tell them apart
        chars = np.zeros(1, dtype=np.uint8)
    key = lengths.astype(np.uint32)
    key *= np.uint32(0x9E3779B1)
    at = np.empty_like(ends)
    for back in (*_KEY_BYTES_FROM_END, 0):
        if back:  # the id's ``back``-th byte from its end
            np.subtract(ends, back, out=at)
        else:  # its middle byte
            np.floor_divide(lengths, 2, out=at)
            at += starts
        np.clip(at, 0, len(chars) - 1, out=at)
        byte = chars[at]
        byte[lengths < max(back, 1)] = 0  # past the id's start: not its own byte
        key ^= byte
        key *= np.uint32(0x01000193)
    key ^= key >> np.uint32(15)
    key *= np.uint32(0x2C1B3C6D)
    key ^= key >> np.uint32(16)
    bucket: np.ndarray = (key & np.uint32(buckets - 1)).astype(np.uint16)
    return bucket
