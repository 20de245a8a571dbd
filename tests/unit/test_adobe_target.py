from __future__ import annotations

import pytest

from reconciler.backends.adobe_target import (
    catalogsearch_body,
    entities_delete_url,
    search_hits,
)
from reconciler.core.errors import FatalApiError


def test_delete_url_encodes_ids_and_names_the_environment():
    assert entities_delete_url(["a b", "é", "x/y"], 7) == (
        "/entities?ids=a%20b,%C3%A9,x%2Fy&environment=7"
    )


@pytest.mark.parametrize(("ids", "environment", "problem"), [
    ([], 7, "without ids"),
    (["a"], None, "without an environment"),
    (["a", ""], 7, "an empty id"),
    (["a,b"], 7, "containing ','"),
])
def test_a_delete_that_could_reach_everything_cannot_be_built(ids, environment, problem):
    with pytest.raises(ValueError, match=problem):
        entities_delete_url(ids, environment)


def test_search_shapes():
    assert catalogsearch_body(3, 1, 500)["meta"] == {
        "environmentId": 3, "start": 1, "limit": 500, "displayFields": ["id"]}
    assert search_hits({"hits": [{"id": "a"}, {"entity": {"id": 5}}]}) == ["a", "5"]
    with pytest.raises(FatalApiError, match="no 'hits'"):
        search_hits({"total": 3})


def test_the_token_file_is_re_read_when_it_changes(tmp_path, clock):
    import os

    import httpx
    import respx

    from reconciler.backends.adobe_target import AdobeTargetBackend, AdobeTargetSettings
    from reconciler.core.settings import Limits, Secret, Target

    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    target = Target(backend="adobe-target", base_url="https://mc.example.test",
                    settings=AdobeTargetSettings(tenant="t", environment=1,
                                                 api_key=Secret("cid"), token=Secret(""),
                                                 token_file=token_file))
    backend = AdobeTargetBackend(target, Limits(max_attempts=1), clock)
    with respx.mock:
        route = respx.delete(url__startswith="https://mc.example.test/t/target/recs/entities")
        route.mock(return_value=httpx.Response(200, json={"operation": "deleted by ids"}))
        backend.delete_batch(["a"])
        token_file.write_text("rotated-token\n")
        os.utime(token_file, (1, 1))  # a different mtime, whatever the clock's resolution
        backend.delete_batch(["b"])
        sent = [c.request.headers["authorization"] for c in route.calls]
        assert sent == ["Bearer first-token", "Bearer rotated-token"]
        assert route.calls[0].request.headers["x-api-key"] == "cid"
        assert route.calls[0].request.url.params["environment"] == "1"
    backend.close()


@pytest.mark.parametrize(("hit", "expected"), [
    ({"id": None}, "catalogsearch: a hit's id is null"),
    ({"id": ["a"]}, "catalogsearch: a hit's id is not a string (list)"),
    ({"id": "x\ud800"}, "catalogsearch: a hit's id is not valid Unicode (a lone surrogate)"),
])
def test_unusable_adobe_ids_make_the_answer_unusable(hit, expected):
    from reconciler.backends.adobe_target import search_hits
    from reconciler.core.errors import FatalApiError

    with pytest.raises(FatalApiError) as caught:
        search_hits({"hits": [{"id": "a"}, hit]})
    assert str(caught.value) == expected
    assert search_hits({"hits": [{"id": 12}, {"id": "b"}]}) == ["12", "b"]


@pytest.mark.parametrize(("answer", "expected"), [
    ([], "delete entities: answer is not an object: []"),
    ({"operation": "deleted all"},
     "delete entities: answer says \"deleted all\", expected 'deleted by ids'"),
])
def test_a_delete_answer_that_is_not_deleted_by_ids_is_a_mismatch(answer, expected):
    from reconciler.backends.adobe_target import check_delete_answer
    from reconciler.core.errors import BatchAnswerMismatch

    with pytest.raises(BatchAnswerMismatch) as caught:
        check_delete_answer(answer)
    assert str(caught.value) == expected
    check_delete_answer({"operation": "deleted by ids"})


def test_adobe_503_throttling_carries_its_retry_after(clock):
    import httpx
    import respx

    from reconciler.backends.adobe_target import AdobeTargetBackend, AdobeTargetSettings
    from reconciler.core.errors import RetriableApiError
    from reconciler.core.settings import Limits, Secret, Target

    target = Target(backend="adobe-target", base_url="https://mc.example.test",
                    settings=AdobeTargetSettings(tenant="t", environment=1,
                                                 api_key=Secret("cid"), token=Secret("tok")))
    backend = AdobeTargetBackend(target, Limits(max_attempts=1), clock)
    with respx.mock:
        respx.delete(url__startswith="https://mc.example.test/t/target/recs/entities").mock(
            return_value=httpx.Response(503, headers={"Retry-After": "7"}, text="busy"))
        with pytest.raises(RetriableApiError) as caught:
            backend.delete_batch(["a"])
    backend.close()
    assert caught.value.throttled and caught.value.retry_after == 7.0


@pytest.mark.parametrize("base_path", ["", "/adobe-proxy/" + "segment/" * 300])
def test_batches_are_sized_on_the_whole_request_line(clock, base_path):
    import httpx
    import respx

    from reconciler.backends.adobe_target import AdobeTargetBackend, AdobeTargetSettings
    from reconciler.backends.http import REQUEST_LINE_LIMIT
    from reconciler.core.batching import split_batches
    from reconciler.core.settings import Limits, Secret, Target

    base_url = "https://mc.example.test" + base_path.rstrip("/")
    target = Target(backend="adobe-target", base_url=base_url,
                    settings=AdobeTargetSettings(tenant="t", environment=1,
                                                 api_key=Secret("cid"), token=Secret("tok")))
    # 8,192 configured (the URL-only rule of old): the line limit still wins.
    backend = AdobeTargetBackend(target, Limits(max_batch_ids=5000, max_batch_bytes=8192), clock)
    ids = [f"entity-é-{n:08d}" for n in range(3000)]
    lines = []
    with respx.mock:
        route = respx.delete(url__startswith=base_url + "/t/target/recs/entities")
        route.mock(return_value=httpx.Response(200, json={"operation": "deleted by ids"}))
        for batch in split_batches(ids, backend.batch_shape):
            backend.delete_batch(batch)
            url = route.calls.last.request.url
            lines.append(f"DELETE {url.raw_path.decode()} HTTP/1.1")
    backend.close()
    assert max(len(line) for line in lines) <= REQUEST_LINE_LIMIT - 100
    assert min(len(line) for line in lines[:-1]) >= REQUEST_LINE_LIMIT - 400  # batches stay full


def test_paging_assumptions_are_pure_checks():
    from reconciler.backends.adobe_target import paging_overlap, start_is_one_based

    assert paging_overlap({"a", "b"}, ["c", "d"]) == []
    assert paging_overlap({"a", "b"}, ["b", "c"]) == ["b"]
    assert start_is_one_based(["a", "b", "c"], ["b", "c"]) is None
    # A 0-based server answers start=2 from the 3rd id: a gap of one per page.
    assert "start=2 gave ['c']" in start_is_one_based(["a", "b", "c"], ["c"])


def test_overlapping_pages_make_the_inventory_incomplete(clock):
    import json

    import httpx
    import respx

    from reconciler.backends.adobe_target import AdobeTargetBackend, AdobeTargetSettings
    from reconciler.core.settings import Limits, Secret, Target

    target = Target(backend="adobe-target", base_url="https://mc.example.test",
                    settings=AdobeTargetSettings(tenant="t", environment=1,
                                                 api_key=Secret("cid"), token=Secret("tok")))
    backend = AdobeTargetBackend(target, Limits(list_page_size=2, list_window=2), clock)

    def answer(request):  # a server whose start is 0-based: each page repeats one id
        meta = json.loads(request.content)["meta"]
        ids = ["a", "b", "c", "d"]
        start = meta["start"] - 1 if meta["start"] == 1 else meta["start"] - 2
        return httpx.Response(200, json={"hits": [{"id": i} for i in ids[start:start + 2]]})

    with respx.mock:
        respx.post("https://mc.example.test/t/target/recs/catalogsearch").mock(side_effect=answer)
        inventory = backend.inventory()
    backend.close()
    verdict = {a.name: a for a in inventory.assumptions}["catalogsearch_pages_do_not_overlap"]
    assert verdict.status == "contradicted" and "repeats" in verdict.evidence
    assert not inventory.complete
