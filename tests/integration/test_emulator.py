"""The emulator keeps to the contract; the other tests are only as good as it is faithful."""

from __future__ import annotations

import json

import httpx
import pytest

from reconciler.core.errors import ConfigError
from reconciler.emulator.serve import load_items, parse_rate
from tests.helpers import write_csv

pytestmark = pytest.mark.integration

AUTH = ("demo-key", "demo-secret")


@pytest.fixture
def api(start_emulator):
    emulator = start_emulator({f"i{n:04d}": {"title": f"t{n}"} for n in range(1200)},
                              bulk_requests_per_window=100, bulk_window_seconds=1)
    client = httpx.Client(base_url=emulator.base_url + emulator.catalog_path, auth=AUTH)
    yield emulator, client
    client.close()


def bulk_delete(client, body: bytes):
    return client.request("DELETE", "/items/bulk-delete", content=body,
                          headers={"content-type": "application/json"})


@pytest.mark.parametrize(("body", "error"), [
    (b"[not json", "Invalid JSON"),
    (b'{"item_id": "a"}', "Payload not a list"),
    (json.dumps([f"x{n}" for n in range(10_001)]).encode(), "Too many items"),
    (json.dumps(["x" * 1000] * 10_001)[:10_000_100].encode(), "Payload size exceeded"),
])
def test_bulk_delete_documented_400s(api, body, error):
    emulator, client = api
    answer = bulk_delete(client, body)
    assert answer.status_code == 400
    assert answer.json() == {"success": False, "error": error}
    assert len(emulator.ids()) == 1200


def test_bulk_delete_per_item_answers(api):
    emulator, client = api
    body = json.dumps(["i0001", 7, "", "ghost", {"item_id": "i0002"}]).encode()
    answer = bulk_delete(client, body)
    assert answer.status_code == 200
    assert [e["success"] for e in answer.json()] == [True, False, False, True, True]
    assert answer.json()[1]["errors"] == {
        "_global": ["Malformed item id. Item id should be a string"]
    }
    assert {"i0001", "i0002"} & emulator.ids() == set()


def test_auth_answers(api):
    emulator, _ = api
    url = emulator.base_url + emulator.catalog_path + "/items"
    unknown = httpx.get(url, auth=("nobody", "x"))
    assert (unknown.status_code, unknown.json()["errors"]) == (401, ["Access key not found"])
    wrong = httpx.get(url, auth=("demo-key", "x"))
    assert (wrong.status_code, wrong.json()["errors"]) == (403, ["invalid secret"])
    assert httpx.get(url).status_code == 401


def test_listing_window_order_and_prefix(api):
    _, client = api
    assert client.get("/items", params={"count": 1000, "skip": 2}).status_code == 400
    default = client.get("/items").json()
    assert len(default["data"]) == 20 and default["total"] == 1200
    last = client.get("/items", params={"count": 1, "order": "item_id desc"}).json()
    assert last["data"][0]["item_id"] == "i1199"
    prefixed = client.get("/items", params={"query": "i11", "field": "item_id", "count": 200})
    assert prefixed.json()["matched"] == 100
    assert all(d["item_id"].startswith("i11") for d in prefixed.json()["data"])
    case = client.get("/items", params={"query": "I11", "field": "item_id"}).json()
    assert case["matched"] == 0  # case-sensitive prefix


def test_bulk_endpoints_share_one_window(start_emulator):
    emulator = start_emulator(["a", "b"], bulk_requests_per_window=5, bulk_window_seconds=60)
    client = httpx.Client(base_url=emulator.base_url + emulator.catalog_path, auth=AUTH)
    codes = [client.put("/items", json=[{"item_id": "c", "properties": {}}]).status_code
             for _ in range(2)]
    codes += [client.post("/items/partial-update", json=[{"item_id": "a", "properties": {}}])
              .status_code for _ in range(3)]
    throttled = client.request("DELETE", "/items/bulk-delete", json=["a"])
    assert codes == [200] * 5
    assert throttled.status_code == 429 and 0 < float(throttled.headers["retry-after"]) <= 60
    assert client.get("/items/a").status_code == 200  # the delete was not applied


def test_partial_update_needs_upsert_to_recreate(api):
    _, client = api
    bulk_delete(client, b'["i0005"]')
    plain = client.post("/items/partial-update",
                        json=[{"item_id": "i0005", "properties": {"title": "back"}}])
    assert plain.json()[0]["errors"] == {"_global": ["Item not found"]}
    upsert = client.post("/items/partial-update",
                         json=[{"item_id": "i0005", "properties": {"title": "back"},
                                "upsert": True}])
    assert upsert.json() == [{"success": True, "queued": True}]
    assert client.get("/items/i0005").json()["data"]["properties"] == {"title": "back"}


def test_items_from_files(tmp_path):
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text('{"item_id": "a", "properties": {"x": 1}}\n\n{"item_id": "b"}\n')
    assert load_items(jsonl) == {"a": {"x": 1}, "b": {}}
    assert load_items(write_csv(tmp_path / "ids.csv", ["00123", "NA"])) == {"00123": {}, "NA": {}}
    jsonl.write_text('{"id": "a"}\n')
    with pytest.raises(ConfigError, match=r"items\.jsonl:1: expected a JSON record with item_id"):
        load_items(jsonl)


def test_rate_parsing():
    assert parse_rate("5/10") == (5, 10.0)
    with pytest.raises(ConfigError, match="--rate: expected N/SECONDS such as 5/10, got 'fast'"):
        parse_rate("fast")
