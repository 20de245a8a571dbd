from __future__ import annotations

import pytest

from reconciler.backends.adobe_target import (
    catalogsearch_body,
    entities_delete_url,
    search_hits,
)
from reconciler.errors import FatalApiError


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
