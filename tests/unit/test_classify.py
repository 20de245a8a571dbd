from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.core.classify import (
    ItemResult,
    classify_status,
    match_bulk_answer,
    parse_json_body,
    parse_retry_after,
)
from reconciler.core.errors import AuthError, BatchAnswerMismatch, FatalApiError, RetriableApiError

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0), ("0.25", 0.25), (" 3 ", 3.0), ("-4", 0.0), (None, None), ("", None),
    ("soon", None), ("Sun, 22 Nov 2026 12:00:30 GMT", 30.0), ("nan", None),
])
def test_retry_after(header, seconds):
    assert parse_retry_after(header, NOW) == seconds


def test_statuses():
    assert classify_status(200, {}, "[]", operation="op") is None
    throttled = classify_status(429, {"retry-after": "2"}, '{"error":"Rate limit"}', operation="op")
    assert isinstance(throttled, RetriableApiError) and throttled.retry_after == 2.0
    assert throttled.throttled and str(throttled) == "op: HTTP 429: Rate limit"
    no_header = classify_status(429, {}, "", operation="op")
    assert isinstance(no_header, RetriableApiError) and no_header.retry_after is None
    assert isinstance(classify_status(503, {}, "oops", operation="op"), RetriableApiError)
    auth = classify_status(401, {}, '{"success":false,"errors":["Access key not found"]}',
                           operation="list items")
    assert isinstance(auth, AuthError)
    assert str(auth) == "list items: HTTP 401: Access key not found"
    bad = classify_status(400, {}, '{"success":false,"error":"Too many items"}', operation="op")
    assert type(bad) is FatalApiError and str(bad) == "op: HTTP 400: Too many items"


def test_truncated_json_is_retriable():
    with pytest.raises(RetriableApiError, match="malformed JSON"):
        parse_json_body('[{"success": tr')


def test_bulk_answer_matched_by_position():
    body = [
        {"success": True, "queued": True},
        {"success": False, "queued": False,
         "errors": {"_global": ["Malformed item id. Item id should be a string"]}},
    ]
    assert match_bulk_answer(2, body, "bulk delete") == [
        ItemResult(True),
        ItemResult(False, "_global: Malformed item id. Item id should be a string"),
    ]


@pytest.mark.parametrize("body", [
    [{"success": True}],  # too short
    [{"success": True}] * 3,  # too long
    {"success": True},  # not a list
    [{"success": True}, {"queued": True}],  # an entry without success
])
def test_unmatchable_bulk_answers(body):
    with pytest.raises(BatchAnswerMismatch):
        match_bulk_answer(2, body, "bulk delete")
