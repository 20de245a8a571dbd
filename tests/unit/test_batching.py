from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.batching import BatchShape, split_batches


def test_splits_by_count():
    shape = BatchShape(max_ids=3, max_bytes=10_000)
    assert list(split_batches([str(i) for i in range(7)], shape)) == [
        ["0", "1", "2"], ["3", "4", "5"], ["6"],
    ]


def test_splits_by_bytes_exactly_at_the_limit():
    # ["aaaa","bbbb"] is 15 bytes: a 15-byte limit holds two, 14 holds one.
    ids = ["aaaa", "bbbb", "cccc"]
    assert list(split_batches(ids, BatchShape(max_ids=10, max_bytes=15))) == [
        ["aaaa", "bbbb"], ["cccc"],
    ]
    assert list(split_batches(ids, BatchShape(max_ids=10, max_bytes=14))) == [
        ["aaaa"], ["bbbb"], ["cccc"],
    ]


def test_unicode_and_escapes_count_as_encoded():
    shape = BatchShape(max_ids=10, max_bytes=100)
    assert shape.entry_bytes("é") == 4  # "é" is two UTF-8 bytes plus quotes
    assert shape.entry_bytes('a"b') == 6  # the quote is escaped
    assert shape.entry_bytes("\x01") == 8  # \u0001


def test_an_id_that_cannot_fit_alone_is_refused():
    shape = BatchShape(max_ids=10, max_bytes=10)
    assert not shape.fits_alone("x" * 9)
    with pytest.raises(ValueError, match="cannot fit"):
        list(split_batches(["x" * 9], shape))


@given(
    st.lists(st.text(max_size=30), max_size=60),
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=130, max_value=400),
)
def test_batches_never_exceed_either_limit_and_keep_every_id_in_order(ids, max_ids, max_bytes):
    shape = BatchShape(max_ids=max_ids, max_bytes=max_bytes)
    batches = list(split_batches(ids, shape))
    assert [i for b in batches for i in b] == ids
    for batch in batches:
        assert 0 < len(batch) <= max_ids
        body = shape.body(batch)
        assert len(body) <= max_bytes
        assert json.loads(body) == batch


def test_object_entries_are_costed_as_sent():
    shape = BatchShape(max_ids=10, max_bytes=40, entry=lambda i: {"item_id": i})
    batches = list(split_batches(["a", "b", "c"], shape))
    assert all(len(shape.body(b)) <= 40 for b in batches)
    assert shape.body(["a"]) == b'[{"item_id":"a"}]'
