"""The Bloomreach adapter against respx: request shapes and error translation."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from reconciler.backends.bloomreach import BloomreachBackend, BloomreachSettings
from reconciler.core.errors import (
    AuthError,
    BatchAnswerMismatch,
    RetriableApiError,
    SkippableItem,
)
from reconciler.core.settings import Limits, Secret, Target

BASE = "https://api.example.test"
CATALOG = f"{BASE}/data/v2/projects/proj/catalogs/cat"
TARGET = Target(
    backend="bloomreach", base_url=BASE,
    settings=BloomreachSettings(project_token="proj", catalog_id="cat",
                                api_key_id=Secret("kid"), api_secret=Secret("sec")),
)
LIMITS = Limits(max_attempts=3, backoff_initial_seconds=1, backoff_max_seconds=2)


@pytest.fixture
def backend(clock):
    b = BloomreachBackend(TARGET, LIMITS, clock)
    yield b
    b.close()


@respx.mock
def test_bulk_delete_sends_a_json_array_of_ids_with_basic_auth(backend):
    route = respx.delete(f"{CATALOG}/items/bulk-delete").respond(
        200, json=[{"success": True, "queued": True}, {"success": True, "queued": True}]
    )
    results = backend.delete_batch(["a", "ünï"])
    request = route.calls.last.request
    assert json.loads(request.content) == ["a", "ünï"]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == httpx.BasicAuth("kid", "sec")._auth_header
    assert [r.ok for r in results] == [True, True]


@respx.mock
def test_429_carries_retry_after(backend):
    respx.delete(f"{CATALOG}/items/bulk-delete").respond(
        429, headers={"Retry-After": "4"}, json={"success": False, "error": "Too many requests"}
    )
    with pytest.raises(RetriableApiError) as caught:
        backend.delete_batch(["a"])
    assert caught.value.retry_after == 4.0 and caught.value.throttled


@respx.mock
def test_403_is_an_auth_error_naming_the_server_text(backend):
    respx.delete(f"{CATALOG}/items/bulk-delete").respond(
        403, json={"success": False, "errors": ["Missing permission: catalogs.delete_catalog_item"]}
    )
    with pytest.raises(AuthError) as caught:
        backend.delete_batch(["a"])
    assert str(caught.value) == (
        "bulk delete: HTTP 403: Missing permission: catalogs.delete_catalog_item; the API key "
        "needs the permission 'Catalogs > Delete catalog item (catalogs.delete_catalog_item)' "
        "(or check target.api_secret)"
    )


@respx.mock
def test_short_answer_is_a_mismatch(backend):
    respx.delete(f"{CATALOG}/items/bulk-delete").respond(200, json=[{"success": True}])
    with pytest.raises(BatchAnswerMismatch):
        backend.delete_batch(["a", "b"])


@respx.mock
def test_connection_errors_and_timeouts_are_retriable(backend):
    respx.delete(f"{CATALOG}/items/bulk-delete").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(RetriableApiError, match="connection failed"):
        backend.delete_batch(["a"])
    respx.get(f"{CATALOG}/items").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(RetriableApiError, match="timed out"):
        backend.check()


def test_unaddressable_ids_are_never_sent(backend):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.delete(f"{CATALOG}/items/bulk-delete")
        with pytest.raises(SkippableItem) as caught:
            backend.delete_batch(["ok", "a/b"])
        assert caught.value.reason == "unaddressable"
        assert not route.called


@respx.mock
def test_listing_retries_transient_errors_then_succeeds(backend, clock):
    page = {"success": True, "data": [{"item_id": "a"}, {"item_id": "b"}], "matched": 2,
            "total": 2, "limit": 1000, "skip": 0, "matched_limited": False}
    route = respx.get(f"{CATALOG}/items").mock(side_effect=[
        httpx.Response(503, json={"success": False, "error": "unavailable"}),
        httpx.ConnectError("reset"),
        httpx.Response(200, json=page),
    ])
    inventory = backend.inventory()
    assert list(inventory.ids) == ["a", "b"] and inventory.complete
    assert route.call_count == 3
    assert len(clock.sleeps) == 2
    params = route.calls.last.request.url.params
    assert (params["count"], params["skip"], params["order"]) == ("1001", "0", "item_id asc")


@respx.mock
def test_listing_that_keeps_failing_raises(backend):
    respx.get(f"{CATALOG}/items").respond(500, json={"success": False, "error": "boom"})
    with pytest.raises(RetriableApiError, match="list items: HTTP 500: boom"):
        backend.inventory()


@respx.mock
def test_prefix_partitions_use_query_and_field(backend):
    def answer(request: httpx.Request) -> httpx.Response:
        query = request.url.params.get("query", "")
        ids = [f"x{n:04d}" for n in range(1500)]
        matched = [i for i in ids if i.startswith(query)]
        if request.url.params["order"].endswith("desc"):
            matched = matched[::-1]
        skip, count = int(request.url.params["skip"]), int(request.url.params["count"])
        assert skip + count <= 1001
        body = {"success": True, "data": [{"item_id": i} for i in matched[skip:skip + count]],
                "matched": len(matched), "total": len(ids), "matched_limited": False}
        if query:
            assert request.url.params["field"] == "item_id"
        return httpx.Response(200, json=body)

    respx.get(f"{CATALOG}/items").mock(side_effect=answer)
    inventory = backend.inventory()
    assert inventory.complete and len(inventory.ids) == 1500


@respx.mock
def test_401_points_at_the_credentials(backend):
    respx.get(f"{CATALOG}/items").respond(401, json={"success": False,
                                                      "errors": ["Access key not found"]})
    with pytest.raises(AuthError) as caught:
        backend.check()
    assert str(caught.value) == (
        "list items: HTTP 401: Access key not found; check target.api_key_id and "
        "target.api_secret"
    )


@respx.mock
@pytest.mark.parametrize(("answer", "expected"), [
    ({"success": True, "data": [], "matched": 0, "total": None},
     "list items: answer field 'total' is null, expected a count"),
    ({"success": True, "data": [], "matched": "12", "total": 12},
     "list items: answer field 'matched' is \"12\", expected a count"),
    ({"success": True, "data": [], "matched": True, "total": 1},
     "list items: answer field 'matched' is true, expected a count"),
    ({"success": True, "data": [], "matched": -1, "total": 1},
     "list items: answer field 'matched' is -1, expected a count"),
    ({"success": True, "data": {"item_id": "a"}, "matched": 1, "total": 1},
     "list items: answer has no 'data' list"),
])
def test_a_listing_answer_of_the_wrong_shape_is_one_line(backend, answer, expected):
    from reconciler.core.errors import FatalApiError

    respx.get(f"{CATALOG}/items").respond(200, json=answer)
    with pytest.raises(FatalApiError) as caught:
        backend.inventory()
    assert str(caught.value) == expected


@respx.mock
def test_listed_entries_without_a_usable_id_are_skipped_with_a_reason(backend):
    body = ('{"success": true, "matched": 6, "total": 6, "data": ['
            '{"item_id": null}, {"item_id": 7}, {"item_id": "bad-\\ud800"}, "junk",'
            '{"item_id": "ok-1", "properties": ["not", "a", "dict"]}, {"item_id": "ok-2"}]}')
    respx.get(f"{CATALOG}/items").respond(200, text=body)
    records = []
    inventory = backend.inventory(lambda data, total: records.extend(data))
    assert sorted(inventory.ids) == ["ok-1", "ok-2"] and "None" not in inventory.ids
    assert not inventory.complete  # 2 found of 6: nothing proves the rest is gone
    assert inventory.detail.endswith(
        "1 listed entries skipped: entry is not an object; "
        "1 listed entries skipped: item_id is not a string (int); "
        "1 listed entries skipped: item_id is not valid Unicode (a lone surrogate); "
        "1 listed entries skipped: item_id is null")
    assert records[0] == {"item_id": "ok-1", "properties": {}}
