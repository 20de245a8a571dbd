"""Pure classification of HTTP answers into the error tree; no I/O, no httpx.

Adapters hand over status, headers and body text; this module decides whether the
answer is usable, retriable (and after how long), or fatal, and extracts the server's
own error text so reports can quote it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from reconciler.core.errors import (
    ApiError,
    AuthError,
    BatchAnswerMismatch,
    FatalApiError,
    RetriableApiError,
)

_MAX_ERROR_TEXT = 300


@dataclass(frozen=True)
class ItemResult:
    """The server's answer for one id of a bulk request."""

    ok: bool
    error: str = ""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def error_text(body: Any) -> str:
    """The server's own words from ``{"error": ...}`` or ``{"errors": [...]}`` bodies."""
    if isinstance(body, dict):
        for key in ("error", "errors", "message", "detail"):
            if body.get(key):
                return _flatten(body[key])[:_MAX_ERROR_TEXT]
    if isinstance(body, str):
        return body.strip()[:_MAX_ERROR_TEXT]
    return ""


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_flatten(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    return str(value)


def id_problem(value: Any) -> str:
    """Why an id read from an API answer cannot be used ('' when it can): it must be a
    string that encodes as UTF-8 (JSON allows a lone surrogate such as "\\ud800")."""
    if value is None:
        return "item_id is null"
    if not isinstance(value, str):
        return f"item_id is not a string ({type(value).__name__})"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "item_id is not valid Unicode (a lone surrogate)"
    return ""


def answer_count(body: Mapping[str, Any], key: str, operation: str) -> int:
    """A count field of an answer: a non-negative integer, else the answer is unusable."""
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FatalApiError(f"{operation}: answer field {key!r} is {json.dumps(value)[:40]}, "
                            "expected a count")
    return value


def parse_json_body(text: str) -> Any:
    """Parse a body that must be JSON; a truncated or garbled one may heal on retry."""
    try:
        return json.loads(text)
    except ValueError:
        snippet = text[:80].replace("\n", " ")
        raise RetriableApiError(f"malformed JSON in the answer: {snippet!r}") from None


def classify_status(
    status: int,
    headers: Mapping[str, str],
    body_text: str,
    *,
    operation: str,
    now: datetime | None = None,
) -> ApiError | None:
    """None for a 2xx; otherwise the error that says what to do next."""
    if 200 <= status < 300:
        return None
    try:
        body: Any = json.loads(body_text) if body_text else None
    except ValueError:
        body = body_text
    detail = error_text(body) or f"HTTP {status}"
    message = f"{operation}: HTTP {status}: {detail}"
    if status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"), now)
        return RetriableApiError(message, status=status, retry_after=retry_after)
    if status in (401, 403):
        return AuthError(message, status=status)
    if status >= 500 or status == 408:
        retry_after = parse_retry_after(headers.get("retry-after"), now)
        return RetriableApiError(message, status=status, retry_after=retry_after)
    return FatalApiError(message, status=status)


def match_bulk_answer(sent: int, body: Any, operation: str) -> list[ItemResult]:
    """Match a bulk answer to the request by position; any doubt is a BatchAnswerMismatch.

    The API promises one entry per id in request order. An answer of another length, or
    an entry without a boolean ``success``, cannot be attributed to ids, so none of them
    may be recorded as deleted.
    """
    if not isinstance(body, list):
        raise BatchAnswerMismatch(f"{operation}: answer is not a list: {error_text(body)!r}")
    if len(body) != sent:
        raise BatchAnswerMismatch(f"{operation}: sent {sent} ids, answer has {len(body)} entries")
    results = []
    for entry in body:
        if not isinstance(entry, dict) or not isinstance(entry.get("success"), bool):
            raise BatchAnswerMismatch(f"{operation}: unexpected entry {json.dumps(entry)[:100]}")
        ok = entry["success"]
        results.append(ItemResult(ok, "" if ok else error_text(entry) or "failed"))
    return results


def read_item_properties(item: Any, item_id: str, *, id_key: str, properties_key: str | None,
                         operation: str) -> dict[str, Any]:
    """The properties of one item read back (a backup keeps them to restore it), checked to
    be that item's. An answer that is not an object, is empty, names another item or holds
    properties that are not an object would back up (and later restore) something else than
    the item deleted: it is unusable (``FatalApiError``), never an empty record.

    ``properties_key`` is the field holding the properties (Bloomreach's ``properties``), or
    None when they are the item's other fields (Adobe Target's entity attributes)."""

    def unusable(why: str) -> FatalApiError:
        return FatalApiError(f"{operation}: the answer for {item_id!r} is unusable: {why}")

    if not isinstance(item, dict):
        raise unusable(f"not an object ({json.dumps(item)[:60]})")
    if not item:
        raise unusable("an empty item")
    if id_key in item:
        named = item[id_key]
        if isinstance(named, int) and not isinstance(named, bool):
            named = str(named)  # numeric ids travel as their decimal text
        if named != item_id:
            raise unusable(f"it is the item {json.dumps(item[id_key])[:60]}")
    if properties_key is None:
        return {k: v for k, v in item.items() if k != id_key}
    properties = item.get(properties_key)
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise unusable(f"{properties_key} are not an object ({json.dumps(properties)[:60]})")
    return properties
