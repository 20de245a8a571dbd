"""Bloomreach Engagement catalogs over httpx: the only module that speaks its HTTP.

Every httpx exception and every non-2xx answer is translated here into the error tree
(``reconciler.core.errors``) via the pure ``classify`` module. Assumptions the public
documentation does not settle are each kept in one named function below, so the truth,
once known, is a one-line change:

* ``bulk_delete_entry``: the body is an array of id strings (a production integration
  sends that; an array of ``{"item_id": ...}`` objects may also be accepted).
* ``prefix_query``: ``query=<prefix>&field=item_id`` is taken as a case-sensitive prefix
  match, answered in code-point order. Every page is checked against it
  (``reconciler.core.listing.check_page``); ids that do not start with the prefix are kept
  (the API listed them) but not reasoned on. A wrong guess cannot cause a wrong delete
  (only listed ids are ever candidates); it shows up in ``assumptions`` and, when the
  walk cannot make up for it, as ``inventory_complete: false``.
* ``partition_size``: ``matched`` is the number of items matching the query and ``total``
  the number in the catalog; ``matched_limited: true`` means ``matched`` is a lower bound.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from reconciler.backends.base import (
    Inventory,
    ItemResult,
    Record,
    RecordSink,
    address_rules_for,
)
from reconciler.backends.http import HttpBackend, send, target_settings
from reconciler.backends.retry import OnRetry
from reconciler.backends.spec import BackendSpec, Capabilities
from reconciler.core.assumptions import Assumption, Evidence
from reconciler.core.batching import BatchShape, encode_json
from reconciler.core.classify import (
    answer_count,
    classify_status,
    error_text,
    id_problem,
    match_bulk_answer,
    parse_json_body,
    read_item_properties,
)
from reconciler.core.clock import Clock
from reconciler.core.errors import AuthError, FatalApiError, SkippableItem
from reconciler.core.listing import (
    CODEPOINT_ORDER,
    COUNTS_AGREE,
    PREFIX_MATCH,
    Page,
    PageRequest,
    check_page,
    enumerate_catalog,
)
from reconciler.core.plan import SKIP_UNADDRESSABLE
from reconciler.core.settings import DEFAULT_PREFIX_ALPHABET, Limits, Secret, Target
from reconciler.core.table import Table, secret

UNADDRESSABLE_SUBSTRINGS = ("/",)
USER_AGENT = "catalog-reconciler/0.1"


# What a 403 means the key lacks, by operation. Only the delete permission is documented
# (catalogs.delete_catalog_item); the others follow the UI's naming.
REQUIRED_PERMISSION = {
    "list items": "Catalogs > View catalog items",
    "get item": "Catalogs > View catalog items",
    "bulk delete": "Catalogs > Delete catalog item (catalogs.delete_catalog_item)",
    "partial update": "Catalogs > Update catalog item",
    "delete all items": "Catalogs > Delete catalog items",
}


def bulk_delete_entry(item_id: str) -> Any:
    """One entry of the bulk-delete body (unconfirmed shape, see the module docstring)."""
    return item_id


def prefix_query(prefix: str) -> dict[str, str]:
    """Listing parameters selecting ids that start with ``prefix`` (unconfirmed semantics)."""
    return {"query": prefix, "field": "item_id"} if prefix else {}


BULK_DELETE_BODY = "bulk_delete_body_is_array_of_ids"


def partition_size(body: dict[str, Any]) -> tuple[int, bool]:
    """(items matching the query, whether that count is exact)."""
    if body.get("matched") is None and body.get("total") is None:
        raise FatalApiError("list items: answer has no 'matched' count")
    matched = answer_count(body, "matched" if body.get("matched") is not None else "total",
                           "list items")
    return matched, not bool(body.get("matched_limited", False))


@dataclass(frozen=True)
class BloomreachSettings:
    """``[jobs.NAME.target]`` keys of ``backend = "bloomreach"`` besides the common ones."""

    project_token: str
    catalog_id: str
    api_key_id: Secret
    api_secret: Secret
    # Characters an id may continue with, tried when a listing partition is too big for the
    # offset window (``core/listing.py``).
    prefix_alphabet: str = DEFAULT_PREFIX_ALPHABET

    def secrets(self) -> tuple[Secret, ...]:
        return (self.api_key_id, self.api_secret)

    def basic_auth(self) -> tuple[str, str] | None:
        return (self.api_key_id.value, self.api_secret.value)

    def fingerprint_fields(self) -> dict[str, object]:
        return {"project": self.project_token}


def parse_settings(t: Table, base: Path) -> BloomreachSettings:
    settings = BloomreachSettings(
        project_token=t.string("project_token"),
        catalog_id=t.string("catalog_id"),
        api_key_id=secret(t, "api_key_id", base),
        api_secret=secret(t, "api_secret", base),
        prefix_alphabet=t.string("prefix_alphabet", default=DEFAULT_PREFIX_ALPHABET),
    )
    if not settings.prefix_alphabet:
        raise t.error("prefix_alphabet", "must not be empty")
    return settings


class BloomreachBackend(HttpBackend):
    name = "bloomreach"
    lists_properties = True  # list items answers each item's properties

    def __init__(
        self,
        target: Target,
        limits: Limits,
        clock: Clock,
        *,
        transport: httpx.BaseTransport | None = None,
        on_retry: OnRetry | None = None,
    ) -> None:
        super().__init__(target, limits, clock, on_retry)
        self._settings = settings = target_settings(target, BloomreachSettings)
        self._catalog_path = (
            f"/data/v2/projects/{quote(settings.project_token, safe='')}"
            f"/catalogs/{quote(settings.catalog_id, safe='')}"
        )
        self._connect = partial(
            httpx.Client,
            base_url=target.base_url,
            auth=httpx.BasicAuth(settings.api_key_id.value, settings.api_secret.value),
            timeout=limits.timeout_seconds,
            headers={"user-agent": USER_AGENT, "accept": "application/json"},
            transport=transport,
        )
        self._shape = BatchShape(
            max_ids=limits.max_batch_ids, max_bytes=limits.max_batch_bytes, entry=bulk_delete_entry
        )
        self._rules = address_rules_for(self._shape, UNADDRESSABLE_SUBSTRINGS)
        self.unusable: dict[str, set[str]] = {}  # listed entries without a usable id, by reason

    @property
    def budget_key(self) -> str:
        return f"bloomreach:{self._target.base_url}:{self._catalog_path}"

    # -- reading -------------------------------------------------------------------------

    def check(self) -> str:
        page = self._with_retries(lambda: self._list_page(PageRequest("", 0, 1)))
        return f"catalog {self._target.catalog_id} reachable, {page.total} items"

    def probe(self) -> tuple[Assumption, ...]:
        """Read-only probes of the listing assumptions (``check --probe``): a handful of
        list calls, each answer checked as the walk checks every page, plus three that
        tell the semantics apart: a prefix of a listed id must return it, the same prefix
        in the other letter case must not return it, nor must a piece from its middle."""
        evidence = Evidence()
        window = min(self._limits.list_page_size, self._limits.list_window)
        first = self._probe_page(PageRequest("", 0, window), evidence, None)
        sample = [i for i in first.ids if len(i) >= 3]
        pick = next((i for i in sample if i[:2].swapcase() != i[:2]), None) or next(
            iter(sample), None)
        if pick is None:
            evidence.confirm(CODEPOINT_ORDER, f"first page of {len(first.ids)} ids in order")
        else:
            prefix = pick[:2]
            page = self._probe_page(PageRequest(prefix, 0, window), evidence, first.total)
            if pick not in page.ids and page.matched <= window:
                evidence.contradict(PREFIX_MATCH, f"query {prefix!r} did not return {pick!r}")
            probes = [(pick[1:3], "a piece from the middle"), (prefix.swapcase(), "other case")]
            for needle, what in probes:
                if needle == prefix:
                    continue
                page = self._probe_page(PageRequest(needle, 0, window), evidence, first.total)
                if pick in page.ids:
                    evidence.contradict(PREFIX_MATCH, f"query {needle!r} ({what}) returned "
                                                      f"{pick!r}")
            if PREFIX_MATCH not in evidence.contradicted:
                evidence.confirm(PREFIX_MATCH, f"query {prefix!r} returned {pick!r} and only ids "
                                               f"starting with it; {pick[1:3]!r} and "
                                               f"{prefix.swapcase()!r} did not return it")
        return (*evidence.verdicts((PREFIX_MATCH, CODEPOINT_ORDER, COUNTS_AGREE)),
                Assumption(BULK_DELETE_BODY, "unknown",
                           "not probed: only a delete would tell (read-only probes)"))

    def _probe_page(self, request: PageRequest, evidence: Evidence, total: int | None) -> Page:
        page: Page = self._with_retries(lambda: self._list_page(request))
        contradicted = check_page(request, page, total)
        for name, text in contradicted.items():
            evidence.contradict(name, text)
        for name in (CODEPOINT_ORDER, COUNTS_AGREE):
            if name not in contradicted:
                evidence.confirm(name, f"query {request.prefix!r}: {len(page.ids)} ids in "
                                       f"order, matched={page.matched}, total={page.total}")
        return page

    def inventory(self, records: RecordSink | None = None) -> Inventory:
        limits = self._limits
        walker = enumerate_catalog(
            limits.list_window, min(limits.list_page_size, limits.list_window),
            self._settings.prefix_alphabet,
        )
        request = next(walker)
        while True:
            page, data = self._with_retries(
                lambda r=request: self._list_page_records(r)  # type: ignore[misc]
            )
            if records is not None:
                records(data, page.total)
            try:
                request = walker.send(page)
            except StopIteration as done:
                result = done.value
                break
        detail = "; ".join(
            [f"prefix {s.prefix!r}: {s.found} of {s.expected}" for s in result.shortfalls[:20]]
            + [f"{len(seen)} listed entries skipped: {why}"
               for why, seen in sorted(self.unusable.items())]
        )
        return Inventory(
            ids=result.ids, expected=result.expected, requests=result.requests, detail=detail,
            assumptions=result.assumptions, proven=result.counts_held,
        )

    def _list_page(self, request: PageRequest) -> Page:
        return self._list_page_records(request)[0]

    def _list_page_records(self, request: PageRequest) -> tuple[Page, list[dict[str, Any]]]:
        params: dict[str, str | int] = {
            "count": request.count,
            "skip": request.skip,
            "order": f"item_id {'desc' if request.descending else 'asc'}",
            **prefix_query(request.prefix),
        }
        body = self._call("GET", "/items", "list items", params=params)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise FatalApiError("list items: answer has no 'data' list")
        matched, exact = partition_size(body)
        total = answer_count(body, "total", "list items") if "total" in body else matched
        data = []
        for entry in body["data"]:
            item_id = entry.get("item_id") if isinstance(entry, dict) else None
            problem = id_problem(item_id) if isinstance(entry, dict) else "entry is not an object"
            if not problem:
                problem = other_catalog(entry, self._settings.catalog_id)
            if problem:
                # Never deleted (only listed ids are), and never turned into the id "None".
                # (Counted once per distinct entry: the walk may see one entry on several pages.)
                self.unusable.setdefault(problem, set()).add(repr(entry)[:200])
                continue
            properties = entry.get("properties")
            data.append({"item_id": item_id,
                         "properties": properties if isinstance(properties, dict) else {}})
        ids = tuple(str(entry["item_id"]) for entry in data)  # each checked to be a str
        return Page(ids=ids, matched=matched, total=total, matched_is_exact=exact), data

    def read_back(self, ids: Sequence[str]) -> list[Record]:
        present = []
        for item_id in ids:
            self._refuse_unaddressable([item_id])
            try:
                body = self._with_retries(
                    lambda i=item_id: self._call(  # type: ignore[misc]
                        "GET", f"/items/{quote(i, safe='')}", "get item"
                    )
                )
            except FatalApiError as exc:
                if exc.status == 404:
                    continue
                raise
            present.append(Record(item_id, read_item(body, item_id)))
        return present

    # -- writing -------------------------------------------------------------------------

    def delete_batch(self, ids: Sequence[str]) -> list[ItemResult]:
        """One bulk delete; retries belong to the caller, which owns the rate budget."""
        self._refuse_unaddressable(ids)
        body = self._call(
            "DELETE", "/items/bulk-delete", "bulk delete", content=self._shape.body(ids)
        )
        return match_bulk_answer(len(ids), body, "bulk delete")

    def delete_all(self) -> None:
        """DELETE .../items: every item, no undo. Only ``purge`` calls this."""
        self._with_retries(lambda: self._call("DELETE", "/items", "delete all items"))

    def restore(self, records: Sequence[Record]) -> list[ItemResult]:
        """Recreate items with partial update + upsert (shares the bulk rate budget)."""
        self._refuse_unaddressable([r.item_id for r in records])
        payload = [
            {"item_id": r.item_id, "properties": dict(r.properties), "upsert": True}
            for r in records
        ]
        body = self._call(
            "POST", "/items/partial-update", "partial update", content=encode_json(payload)
        )
        return match_bulk_answer(len(records), body, "partial update")

    # -- the I/O seam --------------------------------------------------------------------

    def _refuse_unaddressable(self, ids: Sequence[str]) -> None:
        """The planner already skips these; this guard makes sending one impossible."""
        for item_id in ids:
            if any(s in item_id for s in UNADDRESSABLE_SUBSTRINGS):
                raise SkippableItem(item_id, SKIP_UNADDRESSABLE)

    def _call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        params: dict[str, str | int] | None = None,
        content: bytes | None = None,
    ) -> Any:
        headers = {"content-type": "application/json"} if content is not None else None
        response = send(self._http, method, self._catalog_path + path, operation,
                        params=params, content=content, headers=headers)
        error = classify_status(
            response.status_code, response.headers, response.text, operation=operation
        )
        if isinstance(error, AuthError):
            raise AuthError(f"{error}; {_auth_hint(response.status_code, operation)}",
                            status=error.status)
        if error is not None:
            raise error
        return parse_json_body(response.text)



def other_catalog(entry: dict[str, Any], catalog_id: str) -> str:
    """Why a listed entry is not this catalog's ('' when it is): an entry naming another
    ``catalog_id`` (a proxy's or a cache's mix-up) is never a candidate for this catalog's
    delete, which would report it deleted while it never was here."""
    named = entry.get("catalog_id")
    if named is None or named == catalog_id:
        return ""
    return f"entry of another catalog ({json.dumps(named)[:60]})"


def read_item(body: Any, item_id: str) -> dict[str, Any]:
    """The properties of a get-item answer, ``{"success": true, "data": {"item_id",
    "properties"}}`` (the item alone is taken too); a 200 that says ``success: false``,
    is empty or names another item is unusable (``read_item_properties``)."""
    if isinstance(body, dict) and body.get("success") is False:
        raise FatalApiError(f"get item: the answer for {item_id!r} is unusable: it says "
                            f"success false ({error_text(body) or 'no reason given'})")
    item = body
    if isinstance(body, dict):  # the envelope's flag is no property of the item
        item = body["data"] if "data" in body else {k: v for k, v in body.items()
                                                    if k != "success"}
    return read_item_properties(item, item_id, id_key="item_id", properties_key="properties",
                                operation="get item")


def _auth_hint(status: int, operation: str) -> str:
    if status == 401:
        return "check target.api_key_id and target.api_secret"
    permission = REQUIRED_PERMISSION.get(operation, "the permission for this operation")
    return f"the API key needs the permission '{permission}' (or check target.api_secret)"


SPEC = BackendSpec(
    name="bloomreach",
    settings_type=BloomreachSettings,
    parse_settings=parse_settings,
    default_base_url="https://api.exponea.com",
    capabilities=Capabilities(lists=True, reads_back=True, restores=True, purges=True,
                              per_item_answers=True, lists_properties=True),
    factory=BloomreachBackend,
    default_limits={},  # Limits() holds Bloomreach's documented limits
    maxima={"max_batch_ids": 10_000, "max_batch_bytes": 10_000_000, "list_window": 1001},
    emulator="bloomreach",
)
