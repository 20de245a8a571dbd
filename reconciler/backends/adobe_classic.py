"""Adobe Recommendations classic (``backend = "adobe-classic"``): delete by id over GET.

``GET {host}/rest?action=entity.delete&client=CODE&clientToken=TOKEN&entityIds=a,b,c``.
No API lists entities, so the inventory is an export of the catalog or the journal's
ledger (``inventory = "ledger"``), and no API reads an entity back: backups hold ids only,
and confirmation comes from the next export. Ids containing ``,`` cannot be addressed (the
ids travel as a comma list). ``entity.deleteAll`` is never sent: this tool's ``purge`` is
not available for this backend. The client token travels in the URL; it is a registered
secret, so logs and reports redact it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import quote

import httpx

from reconciler.backends.base import Inventory, ItemResult, Record, RecordSink, address_rules_for
from reconciler.backends.http import (
    HttpBackend,
    request_line_budget,
    request_line_overhead,
    send,
    target_settings,
)
from reconciler.backends.retry import OnRetry
from reconciler.backends.spec import BackendSpec, Capabilities
from reconciler.core.assumptions import Assumption
from reconciler.core.batching import BatchShape
from reconciler.core.classify import classify_status, error_text
from reconciler.core.clock import Clock
from reconciler.core.errors import BatchAnswerMismatch, FatalApiError, SkippableItem
from reconciler.core.plan import SKIP_UNADDRESSABLE
from reconciler.core.settings import Limits, Secret, Target
from reconciler.core.table import Table, secret

UNADDRESSABLE_SUBSTRINGS = (",",)


def entity_delete_query(client: str, token: str, ids: Sequence[str]) -> str:
    """The query of one delete; never without ids (``deleteAll`` is another action)."""
    if not ids or any(not i or "," in i for i in ids):
        raise ValueError("refusing to build a delete without ids, or with an empty id or an "
                         "id containing ','")
    joined = ",".join(quote(i, safe="") for i in ids)
    return (f"/rest?action=entity.delete&client={quote(client, safe='')}"
            f"&clientToken={quote(token, safe='')}&entityIds={joined}")


def check_entity_delete_answer(text: str) -> None:
    """Any 200 answer is taken to accept every id of the request (*unconfirmed*: classic
    documents no answer), except one that says otherwise: a body naming an error (JSON
    ``error``/``errors``, ``success: false``, an XML ``<error>``) or an HTML page (a proxy's
    or a sign-in page answering for the API). Neither can be attributed to the ids, so the
    batch is ``unknown`` (``BatchAnswerMismatch``), never recorded as deleted."""
    head = text.lstrip()[:200].lower()
    if head.startswith(("<!doctype html", "<html")):
        raise BatchAnswerMismatch(f"entity.delete: answered with an HTML page, not the API: "
                                  f"{text.strip()[:80]!r}")
    if head.startswith("<") and "<error" in text.lower():
        raise BatchAnswerMismatch(f"entity.delete: answered with an error: {text.strip()[:120]!r}")
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        return
    if isinstance(body, dict) and (body.get("error") or body.get("errors")
                                   or body.get("success") is False):
        raise BatchAnswerMismatch(f"entity.delete: answered with an error: "
                                  f"{error_text(body) or 'success false'}")


@dataclass(frozen=True)
class AdobeClassicSettings:
    """``[jobs.NAME.target]`` keys of ``backend = "adobe-classic"`` besides the common ones."""

    client: str
    client_token: Secret

    @property
    def catalog_id(self) -> str:
        return self.client

    def secrets(self) -> tuple[Secret, ...]:
        return (self.client_token,)

    def basic_auth(self) -> tuple[str, str] | None:
        return None

    def fingerprint_fields(self) -> dict[str, object]:
        return {"tenant": self.client}


def parse_settings(t: Table, base: Path) -> AdobeClassicSettings:
    return AdobeClassicSettings(client=t.string("client"),
                                client_token=secret(t, "client_token", base))


class AdobeClassicBackend(HttpBackend):
    name = "adobe-classic"
    reads_back = False

    def __init__(self, target: Target, limits: Limits, clock: Clock, *,
                 transport: httpx.BaseTransport | None = None,
                 on_retry: OnRetry | None = None) -> None:
        super().__init__(target, limits, clock, on_retry)
        self._settings = settings = target_settings(target, AdobeClassicSettings)
        self._connect = partial(httpx.Client, base_url=target.base_url,
                                timeout=limits.timeout_seconds, transport=transport)
        token = settings.client_token.value
        overhead = request_line_overhead(
            "GET", target.base_url, entity_delete_query(settings.client, token, ["x"])
        ) - 1
        self._shape = BatchShape(max_ids=limits.max_batch_ids,
                                 max_bytes=request_line_budget(limits.max_batch_bytes),
                                 cost=lambda i: len(quote(i, safe="")), overhead=overhead)
        self._rules = address_rules_for(self._shape, UNADDRESSABLE_SUBSTRINGS)

    @property
    def budget_key(self) -> str:
        return f"adobe-classic:{self._target.base_url}:{self._settings.client}"

    def check(self) -> str:
        return (f"client {self._settings.client} at {self._target.base_url} (Recommendations "
                "classic has no read-only call to test; deletes will show)")

    def probe(self) -> tuple[Assumption, ...]:
        return (Assumption("entity_delete_200_accepts_every_id", "unknown",
                           "not probed: classic has no read-only call"),)

    def inventory(self, records: RecordSink | None = None) -> Inventory:
        raise FatalApiError("adobe-classic cannot list entities: use an inventory export or "
                            'inventory = "ledger"')

    def delete_batch(self, ids: Sequence[str]) -> list[ItemResult]:
        for item_id in ids:
            if "," in item_id:
                raise SkippableItem(item_id, SKIP_UNADDRESSABLE)
        try:
            path = entity_delete_query(self._settings.client,
                                       self._settings.client_token.value, ids)
        except ValueError as exc:
            raise FatalApiError(f"entity.delete: {exc}") from None
        check_entity_delete_answer(self._call(path, "entity.delete"))
        return [ItemResult(True) for _ in ids]  # the API answers per request, not per id

    def read_back(self, ids: Sequence[str]) -> list[Record]:
        raise FatalApiError("adobe-classic cannot read entities back; the next export shows")

    def restore(self, records: Sequence[Record]) -> list[ItemResult]:
        raise FatalApiError("adobe-classic: restore is not supported (re-upload the catalog)")

    def delete_all(self) -> None:
        raise FatalApiError("adobe-classic: purge (entity.deleteAll) is not supported by this "
                            "tool")

    def _call(self, path: str, operation: str) -> str:
        response = send(self._http, "GET", path, operation)
        error = classify_status(response.status_code, response.headers, response.text,
                                operation=operation)
        if error is not None:
            raise error
        return response.text


SPEC = BackendSpec(
    name="adobe-classic",
    settings_type=AdobeClassicSettings,
    parse_settings=parse_settings,
    default_base_url="https://recommendations.omniture.com",
    capabilities=Capabilities(lists=False, reads_back=False, restores=False, purges=False,
                              per_item_answers=False, lists_properties=False),
    factory=AdobeClassicBackend,
    default_limits={"requests_per_window": 10, "window_seconds": 10.0, "max_batch_ids": 1000,
                    "max_batch_bytes": 8192},
    maxima={"max_batch_ids": 10_000, "max_batch_bytes": 8192},
    why_not={"lists": "its API cannot list entities",
             "restores": "its API has no upsert; re-upload the catalog",
             "purges": "this tool never sends entity.deleteAll"},
    emulator="adobe_classic",
)
