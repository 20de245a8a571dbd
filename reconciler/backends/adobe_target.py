"""Adobe Target Recommendations API over httpx (``backend = "adobe-target"``).

The hazard this adapter exists to contain: ``DELETE /entities`` **without ``ids`` deletes
every entity of the environment, and without ``environment`` of every environment**.
``entities_delete_url`` is the only way a delete URL is built, and it refuses to build
either; the emulator really deletes everything when they are missing, so a test would
catch a regression.

Throttling arrives as 503 (not 429) and is treated as such. Assumptions the public
documentation does not settle, each in one function: the search body
(``catalogsearch_body``), where the ids are in its answer (``search_hits``), the name of
Get Entity's environment parameter (``get_entity_path``: ``environmentId``), and that a
comma inside an id cannot be sent (``UNADDRESSABLE_SUBSTRINGS``: ids travel as a comma
list, so such an id is skipped as ``unaddressable``).
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
from reconciler.backends.http import (
    HttpBackend,
    request_line_budget,
    request_line_overhead,
    send,
    target_settings,
)
from reconciler.backends.retry import OnRetry
from reconciler.backends.spec import BackendSpec, Capabilities
from reconciler.core.assumptions import Assumption, Evidence
from reconciler.core.batching import BatchShape, encode_json
from reconciler.core.classify import (
    classify_status,
    error_text,
    id_problem,
    parse_json_body,
    parse_retry_after,
    read_item_properties,
)
from reconciler.core.clock import Clock
from reconciler.core.errors import (
    AuthError,
    BatchAnswerMismatch,
    FatalApiError,
    RetriableApiError,
    SkippableItem,
)
from reconciler.core.plan import SKIP_UNADDRESSABLE
from reconciler.core.settings import Limits, Secret, Target
from reconciler.core.table import Table, secret

UNADDRESSABLE_SUBSTRINGS = (",",)
CONTENT_TYPE = "application/vnd.adobe.target.v1+json"
ENTITIES = "/entities"


def entities_delete_url(ids: Sequence[str], environment: int | None) -> str:
    """``/entities?ids=a,b&environment=N``; never without ids or environment (see above)."""
    if not ids:
        raise ValueError("refusing to build a delete without ids: it would delete everything")
    if environment is None:
        raise ValueError("refusing to build a delete without an environment: it would delete "
                         "in every environment")
    if any(not i or any(s in i for s in UNADDRESSABLE_SUBSTRINGS) for i in ids):
        raise ValueError("refusing to build a delete with an empty id or an id containing ','")
    joined = ",".join(quote(i, safe="") for i in ids)
    return f"{ENTITIES}?ids={joined}&environment={int(environment)}"


def get_entity_path(item_id: str, environment: int) -> str:
    """``/entities/{id}?environmentId=N``: Adobe's Get Entity documents the parameter as
    ``environmentId`` (the delete's is ``environment``); unconfirmed against a live tenant."""
    return f"{ENTITIES}/{quote(item_id, safe='')}?environmentId={int(environment)}"


def catalogsearch_body(environment: int, start: int, limit: int) -> dict[str, Any]:
    """One page of every entity's id (``start`` is 1-based; unconfirmed query shape)."""
    return {"meta": {"environmentId": environment, "start": start, "limit": limit,
                     "displayFields": ["id"]}, "query": {}}


def search_hits(body: Any) -> list[str]:
    """The entity ids of a catalogsearch answer (``{"hits": [{"id": ...}]}``; unconfirmed)."""
    hits = body.get("hits") if isinstance(body, dict) else body
    if not isinstance(hits, list):
        raise FatalApiError("catalogsearch: answer has no 'hits' list")
    ids = []
    for hit in hits:
        entity = hit.get("entity", hit) if isinstance(hit, dict) else {}
        if "id" not in entity:
            raise FatalApiError("catalogsearch: a hit has no 'id'")
        value = entity["id"]
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # numeric entity ids travel as their decimal text
        problem = id_problem(value)
        if problem:  # a page with a hole cannot be paged past safely: the answer is unusable
            raise FatalApiError(f"catalogsearch: a hit's {problem.replace('item_id', 'id')}")
        ids.append(value)
    return ids


def check_delete_answer(body: Any) -> None:
    """A delete answer is ``{"operation": "deleted by ids"}``: anything else (not an object,
    another operation such as "deleted all", or none: an empty 200 from a proxy or cache
    in front of the API) cannot be attributed to the ids sent."""
    if not isinstance(body, dict):
        raise BatchAnswerMismatch(f"delete entities: answer is not an object: "
                                  f"{json.dumps(body)[:80]}")
    if "operation" not in body:
        raise BatchAnswerMismatch(f"delete entities: answer has no 'operation' "
                                  f"({json.dumps(body)[:80]}), expected 'deleted by ids'")
    operation = body["operation"]
    if operation != "deleted by ids":
        raise BatchAnswerMismatch(f"delete entities: answer says {json.dumps(operation)[:80]}, "
                                  "expected 'deleted by ids'")


# The assumptions checked on the answers (``summary.json``) and by ``check --probe``.
EMPTY_QUERY_SELECTS_ALL = "catalogsearch_empty_query_selects_all"
HITS_CARRY_ID = "catalogsearch_hits_carry_id"
START_IS_ONE_BASED = "catalogsearch_start_is_one_based"
PAGES_DO_NOT_OVERLAP = "catalogsearch_pages_do_not_overlap"
ENVIRONMENT_PARAMETER = "entities_environment_parameter_name"


def paging_overlap(seen: set[str], page: Sequence[str]) -> list[str]:
    """Ids of a page already on an earlier page: pages that overlap (start not where
    assumed) or a catalog that changed while listing."""
    return [i for i in page if i in seen]


def start_is_one_based(three: Sequence[str], two_from_second: Sequence[str]) -> str | None:
    """None when ``start=2, limit=2`` returned the 2nd and 3rd ids of ``start=1, limit=3``;
    else what it returned instead."""
    if list(two_from_second) == list(three[1:3]):
        return None
    return f"start=1 gave {list(three)!r}, start=2 gave {list(two_from_second)!r}"


@dataclass(frozen=True)
class AdobeTargetSettings:
    """``[jobs.NAME.target]`` keys of ``backend = "adobe-target"`` besides the common ones."""

    tenant: str
    environment: int
    api_key: Secret
    token: Secret
    token_file: Path | None = None  # re-read whenever it changes (rotated tokens)

    @property
    def catalog_id(self) -> str:
        return f"{self.tenant}/environment-{self.environment}"

    def secrets(self) -> tuple[Secret, ...]:
        return (self.api_key, self.token)

    def basic_auth(self) -> tuple[str, str] | None:
        return None

    def fingerprint_fields(self) -> dict[str, object]:
        return {"tenant": self.tenant, "environment": self.environment}


def parse_settings(t: Table, base: Path) -> AdobeTargetSettings:
    tenant = t.string("tenant")
    environment = t.integer("environment", -1, minimum=0)
    if environment < 0:
        raise t.error("environment", "missing key (a delete without it would reach every "
                                     "environment)")
    raw_token = t.string("token")
    token_file = base / raw_token.removeprefix("file:") if raw_token.startswith("file:") \
        else None
    return AdobeTargetSettings(tenant=tenant, environment=environment,
                               api_key=secret(t, "api_key", base),
                               token=secret(t, "token", base), token_file=token_file)


class AdobeTargetBackend(HttpBackend):
    name = "adobe-target"
    lists_properties = False  # catalogsearch is asked for ids only (displayFields: ["id"])

    def __init__(self, target: Target, limits: Limits, clock: Clock, *,
                 transport: httpx.BaseTransport | None = None,
                 on_retry: OnRetry | None = None) -> None:
        super().__init__(target, limits, clock, on_retry)
        self._settings = settings = target_settings(target, AdobeTargetSettings)
        self._base = f"/{quote(settings.tenant, safe='')}/target/recs"
        self._connect = partial(httpx.Client, base_url=target.base_url,
                                timeout=limits.timeout_seconds, transport=transport)
        self._token = settings.token.value
        self._token_mtime: float | None = None
        overhead = request_line_overhead(
            "DELETE", target.base_url, self._base + entities_delete_url(["x"], settings.environment)
        ) - 1
        self._shape = BatchShape(
            max_ids=limits.max_batch_ids, max_bytes=request_line_budget(limits.max_batch_bytes),
            cost=lambda i: len(quote(i, safe="")), overhead=overhead, separator=1,
        )
        self._rules = address_rules_for(self._shape, UNADDRESSABLE_SUBSTRINGS)

    @property
    def budget_key(self) -> str:
        return f"adobe-target:{self._target.base_url}/{self._settings.tenant}"  # per tenant

    @property
    def read_budget_key(self) -> str:
        """Adobe documents one limit (50 calls a minute) across the admin APIs: searches and
        reads share the deletes' budget."""
        return self.budget_key

    @property
    def read_rate(self) -> tuple[int, float]:
        return self._limits.requests_per_window, self._limits.window_seconds

    def check(self) -> str:
        ids = self._search_page(1, 1)
        return (f"tenant {self._settings.tenant} environment {self._settings.environment} "
                f"reachable ({'entities found' if ids else 'no entities'})")

    def inventory(self, records: RecordSink | None = None) -> Inventory:
        """Page until a short page; a second pass must find the same ids to prove it whole.

        Pages that overlap contradict the paging assumption: the inventory is then
        reported incomplete (the ids are real, but a gap may hide beside an overlap)."""
        evidence = Evidence()
        first, requests = self._all_ids(records, evidence)
        second, more = self._all_ids(None, evidence)
        same = set(first) == set(second)
        detail = "" if same else (f"two passes disagree ({len(first)} and {len(second)} ids): "
                                  "the catalog changed while listing")
        if first or second:
            evidence.confirm(HITS_CARRY_ID, f"{len(first)} hits, each with an id")
        overlap = PAGES_DO_NOT_OVERLAP in evidence.contradicted
        return Inventory(ids=sorted(set(first)), expected=len(set(second)) if same else None,
                         requests=requests + more, detail=detail,
                         assumptions=evidence.verdicts(
                             (EMPTY_QUERY_SELECTS_ALL, HITS_CARRY_ID, START_IS_ONE_BASED,
                              PAGES_DO_NOT_OVERLAP, ENVIRONMENT_PARAMETER)),
                         proven=not overlap)

    def _all_ids(self, records: RecordSink | None,
                 evidence: Evidence | None = None) -> tuple[list[str], int]:
        ids: list[str] = []
        seen: set[str] = set()
        limit, start, requests = self._limits.list_page_size, 1, 0
        while True:
            page = self._search_page(start, limit)
            requests += 1
            repeated = paging_overlap(seen, page)
            if evidence is not None and repeated:
                evidence.contradict(PAGES_DO_NOT_OVERLAP, f"page at start={start} repeats "
                                    f"{len(repeated)} id(s) of earlier pages, e.g. {repeated[0]!r}")
            elif evidence is not None and requests > 1:
                evidence.confirm(PAGES_DO_NOT_OVERLAP, f"{requests} pages, no id repeated")
            if page and len(repeated) == len(page):
                # Nothing new. More than asked: a server answering with all it has (its
                # ids are real; the overlap makes the inventory unproven). A full page:
                # a server ignoring ``start`` (or whose pages cycle) would keep this loop
                # paging forever.
                if len(page) > limit:
                    return ids, requests
                raise FatalApiError(f"catalogsearch: the page at start={start} repeats "
                                    "earlier pages entirely (the server ignores 'start', or "
                                    "its pages loop): the listing cannot be finished")
            seen.update(page)
            ids.extend(page)
            if records is not None:
                records([{"item_id": i, "properties": {}} for i in page], None)
            if len(page) < limit:
                return ids, requests
            start += limit

    def probe(self) -> tuple[Assumption, ...]:
        """Read-only probes (``check --probe``): two small searches."""
        evidence = Evidence()
        try:
            three = self._search_page(1, 3)
        except FatalApiError as exc:
            if "no 'id'" in str(exc) or "no 'hits'" in str(exc):
                evidence.contradict(HITS_CARRY_ID, str(exc))
                return evidence.verdicts((EMPTY_QUERY_SELECTS_ALL, HITS_CARRY_ID))
            raise
        if three:
            evidence.confirm(EMPTY_QUERY_SELECTS_ALL,
                             f"an empty query returned {len(three)} of 3 asked")
            evidence.confirm(HITS_CARRY_ID, f"hits carry ids, e.g. {three[0]!r}")
        if len(three) == 3:
            problem = start_is_one_based(three, self._search_page(2, 2))
            if problem is None:
                evidence.confirm(START_IS_ONE_BASED, "start=2 began at the 2nd id of start=1")
                evidence.confirm(PAGES_DO_NOT_OVERLAP, "consecutive starts are one id apart")
            else:
                evidence.contradict(START_IS_ONE_BASED, problem)
        return (*evidence.verdicts((EMPTY_QUERY_SELECTS_ALL, HITS_CARRY_ID, START_IS_ONE_BASED,
                                    PAGES_DO_NOT_OVERLAP)),
                Assumption(ENVIRONMENT_PARAMETER, "unknown",
                           "not probed: only a delete would tell (read-only probes)"))

    def _search_page(self, start: int, limit: int) -> list[str]:
        env = self._environment()
        body = encode_json(catalogsearch_body(env, start, limit))
        answer = self._with_retries(
            lambda: self._call("POST", "/catalogsearch", "catalogsearch", content=body))
        return search_hits(answer)

    def delete_batch(self, ids: Sequence[str]) -> list[ItemResult]:
        """One DELETE for the batch; the API answers per batch, so each id is queued or not."""
        for item_id in ids:
            if any(s in item_id for s in UNADDRESSABLE_SUBSTRINGS):
                raise SkippableItem(item_id, SKIP_UNADDRESSABLE)
        try:
            url = entities_delete_url(ids, self._settings.environment)
        except ValueError as exc:
            raise FatalApiError(f"delete entities: {exc}") from None
        check_delete_answer(self._call("DELETE", url, "delete entities"))
        return [ItemResult(True) for _ in ids]

    def read_back(self, ids: Sequence[str]) -> list[Record]:
        present = []
        for item_id in ids:
            path = get_entity_path(item_id, self._environment())
            try:
                body = self._with_retries(
                    lambda p=path: self._call("GET", p, "get entity"))  # type: ignore[misc]
            except FatalApiError as exc:
                if exc.status == 404:
                    continue
                raise
            present.append(Record(item_id, read_item_properties(
                body, item_id, id_key="id", properties_key=None, operation="get entity")))
        return present

    def restore(self, records: Sequence[Record]) -> list[ItemResult]:
        raise FatalApiError("adobe-target: restore is not supported (re-import the entities "
                            "from the backup file with your catalog feed)")

    def delete_all(self) -> None:
        raise FatalApiError("adobe-target: purge is not supported by this tool")

    # -- the I/O seam --------------------------------------------------------------------

    def _environment(self) -> int:
        if self._settings.environment is None:
            raise FatalApiError("adobe-target: no environment configured")
        return self._settings.environment

    def _bearer(self) -> str:
        """The token, re-read from its file whenever the file changes (rotation)."""
        path = self._settings.token_file
        if path is not None:
            try:
                mtime = path.stat().st_mtime
                if mtime != self._token_mtime:
                    self._token = path.read_text(encoding="utf-8").strip()
                    self._token_mtime = mtime
            except OSError as exc:
                raise AuthError(f"cannot read the token file {path}: {exc}") from None
        return self._token

    def _call(self, method: str, path: str, operation: str, *,
              content: bytes | None = None) -> Any:
        headers = {"authorization": f"Bearer {self._bearer()}",
                   "x-api-key": self._settings.api_key.value, "accept": CONTENT_TYPE}
        if content is not None:
            headers["content-type"] = CONTENT_TYPE
        response = send(self._http, method, self._base + path, operation, content=content,
                        headers=headers)
        if response.status_code == 503:  # Adobe's admin APIs throttle with 503
            raise RetriableApiError(
                f"{operation}: HTTP 503 (throttled): {error_text(response.text)}", status=503,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                throttled=True)
        error = classify_status(response.status_code, response.headers, response.text,
                                operation=operation)
        if error is not None:
            raise error
        return parse_json_body(response.text) if response.text else {}


SPEC = BackendSpec(
    name="adobe-target",
    settings_type=AdobeTargetSettings,
    parse_settings=parse_settings,
    default_base_url="https://mc.adobe.io",
    capabilities=Capabilities(lists=True, reads_back=True, restores=False, purges=False,
                              per_item_answers=False, lists_properties=False),
    factory=AdobeTargetBackend,
    default_limits={"requests_per_window": 50, "window_seconds": 60.0, "max_batch_ids": 1000,
                    "max_batch_bytes": 8192, "list_page_size": 500, "list_window": 501},
    maxima={"max_batch_ids": 10_000, "max_batch_bytes": 8192, "list_page_size": 500,
            "list_window": 501},
    why_not={"restores": "its API has no upsert; re-import the entities from the backup "
                         "with your catalog feed",
             "purges": "this tool never sends its delete-everything call"},
    emulator="adobe_target",
)
