"""List, search and read-back calls go through a rate budget of their own."""

from __future__ import annotations

import httpx
import respx

from reconciler.backends.bloomreach import BloomreachBackend, BloomreachSettings
from reconciler.core.ratelimit import SlidingWindowBudget
from reconciler.core.settings import Limits, Secret, Target

BASE = "https://api.example.test"
CATALOG = f"{BASE}/data/v2/projects/proj/catalogs/cat"
TARGET = Target(
    backend="bloomreach", base_url=BASE,
    settings=BloomreachSettings(project_token="proj", catalog_id="cat",
                                api_key_id=Secret("kid"), api_secret=Secret("sec"),
                                prefix_alphabet="0123456789"),
)


def page(ids, matched, total):
    return {"success": True, "data": [{"item_id": i} for i in ids], "matched": matched,
            "total": total, "matched_limited": False}


def catalog_answer(ids, window):
    def answer(request):
        params = request.url.params
        prefix = params.get("query", "")
        matched = sorted(i for i in ids if i.startswith(prefix))
        if params["order"].endswith("desc"):
            matched.reverse()
        skip, count = int(params["skip"]), int(params["count"])
        assert skip + count <= window
        return httpx.Response(200, json=page(matched[skip:skip + count],
                                             len(matched), len(ids)))
    return answer


@respx.mock
def test_listing_waits_for_the_read_budget(clock):
    limits = Limits(list_window=10, list_page_size=10, read_requests_per_window=2,
                    read_window_seconds=5.0)
    ids = [f"{n:03d}" for n in range(60)]
    route = respx.get(f"{CATALOG}/items").mock(side_effect=catalog_answer(ids, 10))
    backend = BloomreachBackend(TARGET, limits, clock)
    started = clock.monotonic()
    inventory = backend.inventory()
    backend.close()
    assert inventory.complete and sorted(inventory.ids) == ids
    calls = route.call_count
    assert calls > 4
    # Two calls per 5 s: the last call cannot start before (calls - 1) // 2 windows.
    assert clock.monotonic() - started >= 5.0 * ((calls - 1) // 2)
    assert all(s > 0 for s in clock.sleeps)


@respx.mock
def test_a_429_on_a_list_call_halves_the_read_budget_and_honours_retry_after(clock):
    limits = Limits(read_requests_per_window=4, read_window_seconds=1.0, max_attempts=3)
    respx.get(f"{CATALOG}/items").mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "7"}, json={"success": False}),
        httpx.Response(200, json=page(["a"], 1, 1)),
    ])
    budget = SlidingWindowBudget(4, 1.0)
    backend = BloomreachBackend(TARGET, limits, clock)
    backend.share_read_budget(budget)
    inventory = backend.inventory()
    backend.close()
    assert list(inventory.ids) == ["a"]
    assert 7.0 in clock.sleeps
    # Halved to 2 by the 429, as a throttled delete does; the quiet 7 s gave one back.
    assert budget.state.limit == 3


@respx.mock
def test_read_back_calls_are_budgeted_too(clock):
    limits = Limits(read_requests_per_window=1, read_window_seconds=3.0)
    respx.get(url__regex=rf"{CATALOG}/items/.+").mock(side_effect=lambda request: httpx.Response(
        200, json={"success": True, "data": {"item_id": request.url.path.rsplit("/", 1)[1],
                                             "properties": {}}}))  # each item is itself
    backend = BloomreachBackend(TARGET, limits, clock)
    backend.read_back(["a", "b", "c"])
    backend.close()
    assert sum(clock.sleeps) >= 6.0
