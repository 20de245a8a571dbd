from __future__ import annotations

import bisect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.listing import Page, PageRequest, enumerate_catalog


class FakeCatalogServer:
    """Answers page requests the way the contract describes the API (window enforced)."""

    def __init__(self, ids, window=1001, *, case_insensitive=False):
        self.ids = sorted(set(ids))
        self.window = window
        self.case_insensitive = case_insensitive
        self.requests: list[PageRequest] = []

    def answer(self, request: PageRequest) -> Page:
        self.requests.append(request)
        assert request.skip + request.count <= self.window, "window exceeded"
        if self.case_insensitive:
            matched = [i for i in self.ids if i.lower().startswith(request.prefix.lower())]
        else:
            lo = bisect.bisect_left(self.ids, request.prefix)
            matched = []
            for i in self.ids[lo:]:
                if not i.startswith(request.prefix):
                    break
                matched.append(i)
        ordered = matched[::-1] if request.descending else matched
        page = ordered[request.skip:request.skip + request.count]
        return Page(ids=tuple(page), matched=len(matched), total=len(self.ids))


def walk(server, window=1001, page_size=1000, alphabet="0123456789abcdef"):
    walker = enumerate_catalog(window, page_size, alphabet)
    request = next(walker)
    while True:
        try:
            request = walker.send(server.answer(request))
        except StopIteration as done:
            return done.value


def test_small_catalog_in_two_pages():
    server = FakeCatalogServer([f"{n:04d}" for n in range(1001)])
    result = walk(server)
    assert result.complete and result.found == 1001
    assert [(r.skip, r.count) for r in server.requests] == [(0, 1000), (1000, 1)]


def test_large_catalog_is_enumerated_completely_through_the_window():
    ids = [f"SKU-{n:06d}" for n in range(60_000)]
    server = FakeCatalogServer(ids)
    result = walk(server)
    assert result.complete and result.ids == sorted(ids)
    assert result.requests == len(server.requests) < 300


def test_a_prefix_that_is_itself_an_id_is_counted():
    ids = ["a"] + [f"a{n:04d}" for n in range(50)] + [f"b{n:04d}" for n in range(50)]
    result = walk(FakeCatalogServer(ids, window=20), window=20, page_size=10)
    assert result.complete and result.ids == sorted(ids)


def test_characters_outside_the_alphabet_are_learned_from_the_pages():
    # Neither "X" nor "Z" is in the alphabet; the first and last pages reveal both.
    ids = [f"{c}{n:03d}" for c in "XZ" for n in range(30)]
    result = walk(FakeCatalogServer(ids, window=20), window=20, page_size=10,
                  alphabet="0123456789")
    assert result.complete and result.found == 60


def test_a_hidden_character_is_reported_not_hidden():
    # "Q..." lies strictly between the first and last pages and "Q" is not in the alphabet.
    ids = [f"A{n:03d}" for n in range(30)] + [f"Q{n:03d}" for n in range(30)] + \
          [f"Z{n:03d}" for n in range(30)]
    result = walk(FakeCatalogServer(ids, window=20), window=20, page_size=10,
                  alphabet="AZ0123456789")
    assert not result.complete
    assert (result.found, result.expected) == (60, 90)
    assert result.shortfalls


def test_case_insensitive_server_still_finds_every_id():
    ids = [f"{c}{n:03d}" for c in "aAbB" for n in range(40)]
    server = FakeCatalogServer(ids, window=20, case_insensitive=True)
    result = walk(server, window=20, page_size=10, alphabet="abAB0123456789")
    assert set(result.ids) <= set(ids)
    assert result.complete == (set(result.ids) == set(ids))


def test_page_size_must_fit_the_window():
    with pytest.raises(ValueError):
        next(enumerate_catalog(10, 10, "a"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="ab0-é", min_size=1, max_size=8), max_size=400),
       st.integers(min_value=5, max_value=40))
def test_any_catalog_is_enumerated_exactly(ids, window):
    server = FakeCatalogServer(ids, window=window)
    result = walk(server, window=window, page_size=window - 1, alphabet="ab0-é")
    assert result.ids == sorted(set(ids))
    assert result.complete
