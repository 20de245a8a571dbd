"""Pure pagination state for enumerating a catalog through a small offset window.

Bloomreach answers at most ``window`` (1001) items of any one query by offset, so a
larger catalog is split by id prefix. ``enumerate_catalog`` is a generator: it yields
the ``PageRequest`` it needs next and is sent the ``Page`` that came back, so the walk
is testable against any in-memory function and the HTTP adapter stays a thin loop.

Each prefix query returns one contiguous run of the sorted catalog, so the walk aims at
the fewest such runs that cover it:

* a partition is asked for its first page ascending (``window`` ids); if it holds more,
  for its first page descending. When the two pages together hold the partition's
  ``matched`` count, it is done.
* Otherwise only the *gap* between the largest id of the ascending page (``lo``) and the
  smallest of the descending page (``hi``) is unseen. Every id in it shares their common
  prefix ``C``. The child ``C + lo[|C|]`` is asked descending (its ids up to ``lo`` are
  already seen, so its tail is what is new), the child ``C + hi[|C|]`` ascending, and
  their remaining gaps recursively; the children in between are probed, characters
  most frequent at that depth first, then the configured alphabet, and only while the
  counts say ids are still unaccounted for.

Every answer is also checked against the assumptions the walk rests on (ids start with
the prefix, case-sensitively; pages in code-point order; counts that agree): see
``check_page``. Completeness is proven only by the ids found adding up to the unfiltered
total; anything less is reported, never hidden, and only listed ids are ever returned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field

from reconciler.core.assumptions import CONTRADICTED, Assumption, Evidence

MAX_PREFIX_LENGTH = 512

# The names of the assumptions a listing checks on every page (see ``check_page``).
PREFIX_MATCH = "prefix_query_is_case_sensitive_prefix"
CODEPOINT_ORDER = "item_id_order_is_codepoint"
COUNTS_AGREE = "matched_and_total_counts_agree"


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
    """A partition (or gap) whose ids did not add up to its count."""

    prefix: str
    expected: int
    found: int


@dataclass(frozen=True)
class ListingResult:
    ids: list[str]
    expected: int  # the unfiltered total reported by the server
    requests: int
    shortfalls: tuple[Shortfall, ...] = ()
    assumptions: tuple[Assumption, ...] = ()

    @property
    def found(self) -> int:
        return len(self.ids)

    @property
    def complete(self) -> bool:
        """Every id found was listed by the API itself, so reaching the unfiltered total
        proves completeness whatever the query semantics turned out to be, as long as the
        counts themselves held together."""
        return self.found == self.expected and self.counts_held

    @property
    def counts_held(self) -> bool:
        return all(a.status != CONTRADICTED for a in self.assumptions if a.name == COUNTS_AGREE)


def check_page(request: PageRequest, page: Page, first_total: int | None) -> dict[str, str]:
    """The assumptions one answer contradicts, by name, with the evidence (empty: none)."""
    checks = {
        PREFIX_MATCH: ids_start_with_prefix(request, page),
        CODEPOINT_ORDER: ids_in_codepoint_order(request, page),
        COUNTS_AGREE: counts_agree(request, page, first_total),
    }
    return {name: problem for name, problem in checks.items() if problem is not None}


def ids_start_with_prefix(request: PageRequest, page: Page) -> str | None:
    """``query`` + ``field=item_id`` is a case-sensitive prefix match."""
    stray = [i for i in page.ids if not i.startswith(request.prefix)]
    if not stray:
        return None
    return (f"query {request.prefix!r} returned {len(stray)} id(s) not starting with it, "
            f"e.g. {stray[0]!r}")


def ids_in_codepoint_order(request: PageRequest, page: Page) -> str | None:
    """``order=item_id asc|desc`` sorts by code point (as Python compares strings)."""
    if list(page.ids) == sorted(page.ids, reverse=request.descending):
        return None
    return (f"query {request.prefix!r} ({'desc' if request.descending else 'asc'}) "
            "returned ids out of code-point order")


def counts_agree(request: PageRequest, page: Page, first_total: int | None) -> str | None:
    """A page holds ``min(count, matched - skip)`` ids; ``matched <= total``; ``total``
    stays what the first answer said."""
    expected_len = max(0, min(request.count, page.matched - request.skip))
    if page.matched_is_exact and len(page.ids) != expected_len:
        return (f"query {request.prefix!r} skip {request.skip} count {request.count}: "
                f"{len(page.ids)} ids with matched={page.matched}")
    if page.matched > page.total or (first_total is not None and page.total != first_total):
        return (f"query {request.prefix!r}: matched={page.matched}, total={page.total}"
                f" (first total {first_total})")
    return None


@dataclass
class _Walk:
    window: int
    page_size: int
    alphabet: str
    found: set[str] = field(default_factory=set)
    requests: int = 0
    shortfalls: list[Shortfall] = field(default_factory=list)
    by_depth: list[Counter[str]] = field(default_factory=list)
    evidence: Evidence = field(default_factory=Evidence)
    total: int | None = None
    semantics_broken: bool = False  # a page held ids not starting with its prefix, or out of order

    def learn(self, ids: Iterable[str]) -> None:
        for item in ids:
            if item in self.found:
                continue
            self.found.add(item)
            for depth, char in enumerate(item[:MAX_PREFIX_LENGTH]):
                if depth == len(self.by_depth):
                    self.by_depth.append(Counter())
                self.by_depth[depth][char] += 1

    def candidates(self, depth: int, above: str | None, below: str) -> list[str]:
        """Characters strictly between ``above`` and ``below``, most likely first."""
        seen = self.by_depth[depth] if depth < len(self.by_depth) else Counter()
        pool = set(seen) | set(self.alphabet)
        for counter in self.by_depth:
            pool.update(counter)
        inside = [c for c in pool if (above is None or above < c) and c < below]
        anywhere = Counter[str]()
        for counter in self.by_depth:
            anywhere.update({c: n for c, n in counter.items() if c in inside})
        return sorted(inside, key=lambda c: (-seen[c], -anywhere[c], c))


Walker = Generator[PageRequest, Page, ListingResult]
_Sub = Generator[PageRequest, Page, None]


def enumerate_catalog(window: int, page_size: int, alphabet: str) -> Walker:
    """Drive with ``send``: yields requests, returns the ids found and the proof of completeness."""
    if not 0 < page_size <= window:
        raise ValueError("page_size must be between 1 and window")
    walk = _Walk(window, page_size, "".join(sorted(set(alphabet))))
    first = yield from _ask(walk, PageRequest("", 0, page_size))
    yield from _partition(walk, "", first)
    return ListingResult(
        ids=sorted(walk.found),
        expected=first.total,
        requests=walk.requests,
        shortfalls=tuple(walk.shortfalls),
        assumptions=walk.evidence.verdicts((PREFIX_MATCH, CODEPOINT_ORDER, COUNTS_AGREE)),
    )


def _ask(walk: _Walk, request: PageRequest) -> Generator[PageRequest, Page, Page]:
    """One request; every id listed is kept (the API listed it), only conforming ones used."""
    walk.requests += 1
    page = yield request
    if walk.total is None:
        walk.total = page.total
    contradicted = check_page(request, page, walk.total)
    for name in (PREFIX_MATCH, CODEPOINT_ORDER, COUNTS_AGREE):
        if name in contradicted:
            walk.evidence.contradict(name, contradicted[name])
        elif request.prefix or name != PREFIX_MATCH:
            walk.evidence.confirm(name, f"{walk.requests} pages agreed")
    walk.learn(page.ids)
    if CODEPOINT_ORDER in contradicted:
        walk.semantics_broken = True  # the gap reasoning needs the order: split instead
    if PREFIX_MATCH in contradicted:
        walk.semantics_broken = True
        # Adapt: walk on the ids that do start with the prefix. Their count is known only
        # when the answer held every match; otherwise the walk probes without counting.
        ids = tuple(i for i in page.ids if i.startswith(request.prefix))
        whole = request.skip == 0 and len(page.ids) >= page.matched
        return Page(ids, len(ids) if whole else page.matched, page.total, matched_is_exact=whole)
    return page


def _partition(walk: _Walk, prefix: str, first: Page) -> _Sub:
    """Enumerate one prefix partition, given its first ascending page."""
    matched, exact = first.matched, first.matched_is_exact
    if exact and len(first.ids) >= matched:
        return
    if exact and matched <= walk.window:
        yield from _page_through(walk, prefix, first)
        return
    if len(prefix) >= MAX_PREFIX_LENGTH or (not first.ids and not walk.semantics_broken):
        walk.shortfalls.append(Shortfall(prefix, matched, len(first.ids)))
        return
    if walk.semantics_broken:
        yield from _probe_every_child(walk, prefix, matched)
        return
    last = yield from _ask(walk, PageRequest(prefix, 0, walk.page_size, descending=True))
    both = set(first.ids) | set(last.ids)
    if exact and len(both) >= matched:
        if len(both) > matched:
            walk.shortfalls.append(Shortfall(prefix, matched, len(both)))
        return
    if not last.ids or max(first.ids) >= min(last.ids):
        walk.shortfalls.append(Shortfall(prefix, matched, len(both)))
        return
    unseen = matched - len(both) if exact else None
    yield from _gap(walk, prefix, first.ids, last.ids, unseen)


def _gap(
    walk: _Walk, prefix: str, low_run: tuple[str, ...], high_run: tuple[str, ...],
    unseen: int | None,
) -> _Sub:
    """Enumerate the ids of ``prefix`` strictly between ``max(low_run)`` and ``min(high_run)``.

    ``low_run`` holds every id of the partition up to its largest, ``high_run`` every id
    from its smallest on; ``unseen`` is how many lie between (None: not known).
    """
    if unseen == 0:
        return
    lo, hi = max(low_run), min(high_run)
    common = _common_prefix(lo, hi)
    depth = len(common)
    if depth >= MAX_PREFIX_LENGTH or len(hi) <= depth:
        walk.shortfalls.append(Shortfall(common, unseen or 0, 0))
        return
    low_run = tuple(i for i in low_run if i.startswith(common))
    high_run = tuple(i for i in high_run if i.startswith(common))
    room = walk.window - min(len(low_run), len(high_run))  # unseen ids one skip can fetch
    if room > 0 and ((unseen is not None and room >= unseen) or 2 * room >= walk.window):
        yield from _skip_into(walk, common, low_run, high_run, unseen)
        return
    lo_char = lo[depth] if len(lo) > depth else None
    hi_char = hi[depth]
    if lo_char is not None:
        child = common + lo_char
        known = sum(1 for i in low_run if i.startswith(child) and i <= lo)
        tail = yield from _ask(walk, PageRequest(child, 0, walk.page_size, descending=True))
        unseen = yield from _edge(walk, child, tail, known, unseen, low_run, lo, before=True)
    child = common + hi_char
    if hi != child:  # else every id of ``child`` sorts from ``hi`` on: all in ``high_run``
        known = sum(1 for i in high_run if i.startswith(child) and i >= hi)
        head = yield from _ask(walk, PageRequest(child, 0, walk.page_size))
        unseen = yield from _edge(walk, child, head, known, unseen, high_run, hi, before=False)
    tried: set[str] = set()
    queue: list[str] = []
    while unseen is None or unseen > 0:
        if not queue:  # (re)computed after each find: the ids found may show new characters
            queue = [c for c in walk.candidates(depth, lo_char, hi_char) if c not in tried]
            queue.reverse()
            if not queue:
                break
        char = queue.pop()
        tried.add(char)
        child = common + char
        first = yield from _ask(walk, PageRequest(child, 0, walk.page_size))
        if first.matched:
            if unseen is not None and first.matched_is_exact:
                unseen -= first.matched
            yield from _partition(walk, child, first)
            queue = []  # rank what is left by what was just learned
    if unseen:
        walk.shortfalls.append(Shortfall(common, unseen, 0))


def _probe_every_child(walk: _Walk, prefix: str, matched: int) -> _Sub:
    """Adapt to a query that matched more than the prefix (each page is filtered to the ids
    starting with it) or to another order: a partition is split by every known character
    until its matches fit one page. Bounded, so a server matching far more than asked
    ends in a report."""
    cap = 50 * (1 + (walk.total or 0) // walk.window) + 500
    for char in walk.candidates(len(prefix), None, chr(0x10FFFF)):
        if walk.requests >= cap:
            walk.shortfalls.append(Shortfall(prefix, matched, 0))
            return
        first = yield from _ask(walk, PageRequest(prefix + char, 0, walk.page_size))
        if first.matched:
            yield from _partition(walk, prefix + char, first)


def _skip_into(
    walk: _Walk, common: str, low_run: tuple[str, ...], high_run: tuple[str, ...],
    unseen: int | None,
) -> _Sub:
    """Fetch the gap's next ids straight from ``common``'s range, skipping the seen ones.

    Every id of ``common`` up to ``lo`` is in ``low_run`` and from ``hi`` on in
    ``high_run``, so the gap starts at position ``len(low_run)`` ascending (or
    ``len(high_run)`` descending): within the window, one call fetches only unseen ids.
    """
    lo, hi = max(low_run), min(high_run)
    ascending = len(low_run) <= len(high_run)
    skip = len(low_run) if ascending else len(high_run)
    count = min(walk.page_size, walk.window - skip)
    page = yield from _ask(walk, PageRequest(common, skip, count, descending=not ascending))
    if walk.semantics_broken and not page.matched_is_exact:
        yield from _probe_every_child(walk, common, page.matched)
        return
    if page.matched_is_exact:
        unseen = page.matched - len(low_run) - len(high_run)
    facing = tuple(i for i in page.ids if lo < i < hi)
    if unseen is not None and len(facing) >= unseen:
        if len(facing) > unseen:
            walk.shortfalls.append(Shortfall(common, unseen, len(facing)))
        return
    if not facing:
        walk.shortfalls.append(Shortfall(common, unseen or 0, 0))
        return
    rest = unseen - len(facing) if unseen is not None else None
    if ascending:
        yield from _gap(walk, common, low_run + facing, high_run, rest)
    else:
        yield from _gap(walk, common, low_run, facing + high_run, rest)


def _edge(
    walk: _Walk, child: str, page: Page, known: int, unseen: int | None,
    bound_run: tuple[str, ...], bound: str, *, before: bool,
) -> Generator[PageRequest, Page, int | None]:
    """Finish an edge child of a gap, whose ids beyond ``bound`` (``known`` of them) are seen.

    ``page`` is the child's end page facing the gap. Returns the gap's remaining count.
    """
    exact = page.matched_is_exact
    new = page.matched - known
    unseen = unseen - new if exact and unseen is not None else None
    if walk.semantics_broken and not exact:
        yield from _probe_every_child(walk, child, page.matched)
        return unseen
    facing = [i for i in page.ids if (i > bound if before else i < bound)]
    if exact and len(facing) >= new:
        return unseen
    if not facing or len(child) >= MAX_PREFIX_LENGTH:
        if new > len(facing) or not exact:
            walk.shortfalls.append(Shortfall(child, max(new, 0), len(facing)))
        return unseen
    rest = new - len(facing) if exact else None
    if before:
        yield from _gap(walk, child, bound_run, tuple(facing), rest)
    else:
        yield from _gap(walk, child, tuple(facing), bound_run, rest)
    return unseen


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


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]
