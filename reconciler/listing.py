"""Pure pagination state for enumerating a catalog through a small offset window.

Bloomreach answers at most ``window`` (1001) items of any one query by offset, so a
larger catalog is split by id prefix. ``enumerate_catalog`` is a generator: it yields
the ``PageRequest`` it needs next and is sent the ``Page`` that came back, so the walk
is testable against any in-memory function and the HTTP adapter stays a thin loop.

How a too-large partition with prefix ``P`` is split, without knowing the id alphabet:
the first page in ascending and in descending id order gives the smallest and largest
ids. In lexicographic order every id between two strings shares their common prefix,
so the walk jumps straight to it; and the next characters that occur can only be those
seen on the two pages, or characters strictly between the largest seen on the ascending
page and the smallest seen on the descending page, which the configured alphabet
supplies. If the children then do not add up to the partition's count (the server
orders differently, or an id uses a character outside the alphabet), every remaining
alphabet character is tried too. Completeness is proven only by the ids found adding up
to the unfiltered total; anything less is reported, never hidden.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

MAX_PREFIX_LENGTH = 512


@dataclass(frozen=True)
class PageRequest:
    prefix: str  # "" is the unfiltered catalog
    skip: int
    count: int
    descending: bool = False


@dataclass(frozen=True)
class Page:
    ids: tuple[str, ...]
    matched: int  # items matching the prefix
    total: int  # items in the whole catalog
    matched_is_exact: bool = True  # False when the server caps the count it reports


@dataclass(frozen=True)
class Shortfall:
    """A partition whose children did not add up to its count."""

    prefix: str
    expected: int
    found: int


@dataclass(frozen=True)
class ListingResult:
    ids: list[str]
    expected: int  # the unfiltered total reported by the server
    requests: int
    shortfalls: tuple[Shortfall, ...] = ()

    @property
    def found(self) -> int:
        return len(self.ids)

    @property
    def complete(self) -> bool:
        return self.found == self.expected


@dataclass
class _Walk:
    window: int
    page_size: int
    alphabet: str
    found: set[str] = field(default_factory=set)
    requests: int = 0
    shortfalls: list[Shortfall] = field(default_factory=list)


Walker = Generator[PageRequest, Page, ListingResult]
_Sub = Generator[PageRequest, Page, int]


def enumerate_catalog(window: int, page_size: int, alphabet: str) -> Walker:
    """Drive with ``send``: yields requests, returns the ids found and the proof of completeness."""
    if not 0 < page_size < window:
        raise ValueError("page_size must be between 1 and window - 1")
    walk = _Walk(window, page_size, "".join(sorted(set(alphabet))))
    first = yield from _ask(walk, PageRequest("", 0, page_size))
    yield from _partition(walk, "", first)
    return ListingResult(
        ids=sorted(walk.found),
        expected=first.total,
        requests=walk.requests,
        shortfalls=tuple(walk.shortfalls),
    )


def _ask(walk: _Walk, request: PageRequest) -> Generator[PageRequest, Page, Page]:
    walk.requests += 1
    page = yield request
    walk.found.update(page.ids)
    return page


def _fits_window(walk: _Walk, page: Page) -> bool:
    return page.matched_is_exact and page.matched <= walk.window


def _partition(walk: _Walk, prefix: str, first: Page) -> _Sub:
    """Enumerate one prefix partition; return how many distinct ids it holds."""
    if _fits_window(walk, first):
        return (yield from _page_through(walk, prefix, first))
    if len(prefix) >= MAX_PREFIX_LENGTH or not first.ids:
        walk.shortfalls.append(Shortfall(prefix, first.matched, len(first.ids)))
        return len(set(first.ids))
    last = yield from _ask(walk, PageRequest(prefix, 0, walk.page_size, descending=True))
    lowest, highest = first.ids[0], last.ids[0] if last.ids else first.ids[-1]
    # Every id between the lowest and highest shares their common prefix: jump to it.
    prefix = max(prefix, _common_prefix(lowest, highest), key=len)
    depth = len(prefix)
    exact = 1 if lowest == prefix else 0  # the prefix itself is an id
    low_chars = {i[depth] for i in first.ids if len(i) > depth and i.startswith(prefix)}
    high_chars = {i[depth] for i in last.ids if len(i) > depth and i.startswith(prefix)}
    candidates = low_chars | high_chars
    if low_chars and high_chars:
        lo, hi = max(low_chars), min(high_chars)
        candidates |= {c for c in walk.alphabet if lo < c < hi}
    else:
        candidates |= set(walk.alphabet)
    count = exact + (yield from _children(walk, prefix, sorted(candidates)))
    if count < first.matched:
        remaining = sorted(set(walk.alphabet) - candidates)
        count += yield from _children(walk, prefix, remaining)
    if first.matched_is_exact and count != first.matched:
        walk.shortfalls.append(Shortfall(prefix, first.matched, count))
    return count


def _children(walk: _Walk, prefix: str, chars: list[str]) -> _Sub:
    count = 0
    for char in chars:
        child = prefix + char
        first = yield from _ask(walk, PageRequest(child, 0, walk.page_size))
        if first.matched:
            count += yield from _partition(walk, child, first)
    return count


def _page_through(walk: _Walk, prefix: str, first: Page) -> _Sub:
    """Offset-page a partition that fits the window: skip + count never exceeds it."""
    ids = set(first.ids)
    skip = len(first.ids)
    while first.ids and skip < min(first.matched, walk.window):
        count = min(walk.page_size, walk.window - skip)
        page = yield from _ask(walk, PageRequest(prefix, skip, count))
        if not page.ids:
            break
        ids.update(page.ids)
        skip += len(page.ids)
    if len(ids) != first.matched:
        walk.shortfalls.append(Shortfall(prefix, first.matched, len(ids)))
    return len(ids)


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]
