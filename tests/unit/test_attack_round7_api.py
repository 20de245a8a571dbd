"""Round 7's strange answers, the pure parts: what a read-back, a delete answer, a listed
entry and a Retry-After header must be before they are believed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from reconciler.backends.adobe_target import check_delete_answer
from reconciler.backends.bloomreach import other_catalog, read_item
from reconciler.core.classify import parse_retry_after, read_item_properties
from reconciler.core.errors import BatchAnswerMismatch, FatalApiError

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "seconds"), [
    ("Sun, 01 Nov 2026 12:00:00 GMT", 0.0),  # a date in the past: retry now
    ("inf", None), ("-inf", None), ("1e400", None),  # no pause is infinite
    ("Mon, 23 Nov 2026 12:00:00", 86400.0),  # a date without its zone is GMT
])
def test_retry_after_in_the_past_or_infinite(header, seconds):
    assert parse_retry_after(header, NOW) == seconds


@pytest.mark.parametrize(("body", "expected"), [
    ({"success": True, "data": {"item_id": "a", "properties": {"t": 1}}}, {"t": 1}),
    ({"item_id": "a", "properties": {"t": 1}}, {"t": 1}),  # the item alone
    ({"success": True, "data": {"item_id": "a", "properties": None}}, {}),
    ({"success": True, "data": {"item_id": "a"}}, {}),  # an item without properties
])
def test_a_bloomreach_read_back_of_the_item_gives_its_properties(body, expected):
    assert read_item(body, "a") == expected


@pytest.mark.parametrize(("body", "why"), [
    ({"success": True, "data": None}, "not an object (null)"),
    ({"success": True, "data": ["a"]}, 'not an object (["a"])'),
    ("a", 'not an object ("a")'),
    ({"success": True}, "an empty item"),
    ({}, "an empty item"),
    ({"success": True, "data": {}}, "an empty item"),
    ({"success": False}, "it says success false (no reason given)"),
    ({"success": False, "errors": ["Item not found"]}, "it says success false (Item not found)"),
    ({"success": True, "data": {"item_id": "A", "properties": {}}}, 'it is the item "A"'),
    ({"success": True, "data": {"item_id": None, "properties": {}}}, "it is the item null"),
    ({"success": True, "data": {"item_id": "a", "properties": [1]}},
     "properties are not an object ([1])"),
])
def test_a_bloomreach_read_back_that_is_not_the_item_is_unusable(body, why):
    with pytest.raises(FatalApiError) as caught:
        read_item(body, "a")
    assert str(caught.value) == f"get item: the answer for 'a' is unusable: {why}"
    assert caught.value.status is None  # never taken for a 404 (gone)


def test_an_adobe_entity_read_back_is_checked_to_be_that_entity():
    def read(body, item_id="12"):
        return read_item_properties(body, item_id, id_key="id", properties_key=None,
                                    operation="get entity")

    assert read({"id": 12, "name": "x"}) == {"name": "x"}  # numeric ids as decimal text
    assert read({"id": "12"}) == {}
    assert read({"name": "x"}) == {"name": "x"}  # an answer without its id is taken
    for body, why in [({}, "an empty item"), ({"id": 13}, "it is the item 13"),
                      ({"id": True}, "it is the item true"), ([], "not an object ([])")]:
        with pytest.raises(FatalApiError) as caught:
            read(body)
        assert str(caught.value) == f"get entity: the answer for '12' is unusable: {why}"


@pytest.mark.parametrize(("answer", "expected"), [
    ({}, "delete entities: answer has no 'operation' ({}), expected 'deleted by ids'"),
    ({"id": "a"}, "delete entities: answer has no 'operation' ({\"id\": \"a\"}), expected "
                  "'deleted by ids'"),
    ({"operation": None}, "delete entities: answer says null, expected 'deleted by ids'"),
])
def test_an_adobe_delete_answer_without_its_operation_is_a_mismatch(answer, expected):
    with pytest.raises(BatchAnswerMismatch) as caught:
        check_delete_answer(answer)
    assert str(caught.value) == expected


def test_an_entry_of_another_catalog_is_named_and_one_without_a_catalog_is_ours():
    assert other_catalog({"item_id": "a"}, "cat") == ""
    assert other_catalog({"item_id": "a", "catalog_id": "cat"}, "cat") == ""
    assert other_catalog({"item_id": "a", "catalog_id": "Cat"}, "cat") == \
        'entry of another catalog ("Cat")'
    assert other_catalog({"item_id": "a", "catalog_id": 7}, "cat") == \
        "entry of another catalog (7)"


def test_a_classic_answer_is_accepted_unless_it_names_an_error_or_is_a_page():
    from reconciler.backends.adobe_classic import check_entity_delete_answer

    for fine in ['{"message": "2 entities deleted"}', "", "OK", "<response>2</response>",
                 '{"error": ""}', '["a"]']:
        check_entity_delete_answer(fine)
    for bad, expected in [
        ("  <html><head>",
         "entity.delete: answered with an HTML page, not the API: '<html><head>'"),
        ('{"errors": ["quota"]}', "entity.delete: answered with an error: quota"),
        ('{"success": false}', "entity.delete: answered with an error: success false"),
        ("<Error>denied</Error>", "entity.delete: answered with an error: '<Error>denied</Error>'"),
    ]:
        with pytest.raises(BatchAnswerMismatch) as caught:
            check_entity_delete_answer(bad)
        assert str(caught.value) == expected


@pytest.mark.parametrize(("listed", "source"), [
    ("gift%20card", "gift card"), ("kit+pro", "kit pro"), ("at&amp;t", "at&t"),
    ("caf%C3%A9-1", "café-1"), ("sku%2F1", "sku/1"), ("line%0A", "line\n"),
])
def test_an_id_listed_escaped_is_a_near_match_of_its_plain_source_id(listed, source):
    import pyarrow as pa

    from reconciler.core.nearmatch import near_matches

    found = near_matches(pa.array([listed, "other%20id"]), pa.array([source, "unrelated"]))
    assert found.ids.to_pylist() == [listed]
    assert found.kinds["encoding"] == 1


def _adobe_inventory(clock, answer):
    """The inventory an Adobe Target backend (pages of 2) makes of a search ``answer``."""
    import httpx
    import respx

    from reconciler.backends.adobe_target import AdobeTargetBackend, AdobeTargetSettings
    from reconciler.core.settings import Limits, Secret, Target

    target = Target(backend="adobe-target", base_url="https://mc.example.test",
                    settings=AdobeTargetSettings(tenant="t", environment=1,
                                                 api_key=Secret("cid"), token=Secret("tok")))
    backend = AdobeTargetBackend(target, Limits(list_page_size=2, list_window=2), clock)
    with respx.mock:
        respx.post("https://mc.example.test/t/target/recs/catalogsearch").mock(
            side_effect=lambda request: httpx.Response(200, json={"hits": [
                {"id": i} for i in answer(json.loads(request.content)["meta"])]}))
        try:
            return backend.inventory()
        finally:
            backend.close()


IDS = ["a", "b", "c", "d", "e"]


def test_an_adobe_search_that_ignores_start_is_refused_not_paged_forever(clock):
    with pytest.raises(FatalApiError) as caught:
        _adobe_inventory(clock, lambda meta: IDS[:meta["limit"]])
    assert str(caught.value) == (
        "catalogsearch: the page at start=3 repeats earlier pages entirely (the server "
        "ignores 'start', or its pages loop): the listing cannot be finished")


def test_an_adobe_search_that_ignores_limit_lists_everything_unproven(clock):
    for answer in (lambda meta: IDS, lambda meta: IDS[meta["start"] - 1:]):  # start too?
        inventory = _adobe_inventory(clock, answer)
        assert list(inventory.ids) == IDS and not inventory.complete
