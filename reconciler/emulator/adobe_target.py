"""An emulator of the Adobe Target Recommendations entities API, faithful to its hazards.

* Auth: ``Authorization: Bearer <token>`` and ``X-Api-Key``; 401 otherwise.
* ``POST /{tenant}/target/recs/catalogsearch``: ``meta.start`` (1-based) and ``meta.limit``
  (at most 500) page through an environment's entities, ``{"hits": [{"id": ...}]}``, no total.
* ``DELETE /{tenant}/target/recs/entities?ids=a,b&environment=N``: **without ``ids`` it
  deletes every entity of the environment, without ``environment`` of every environment**,
  as the real API documents, so a client that ever sends such a request is caught.
* ``GET /{tenant}/target/recs/entities/{id}?environmentId=N``: 200 or 404.
* Every admin call counts against one window (50 a minute by default); over it: **503**.
* ``queue_faults(route, faults)`` (routes ``search``, ``delete``, ``get``): the next
  requests on the route get these whole answers instead, ``{"status": 200, "headers":
  {...}, "body": ...}`` (``"raw": "text"`` for a body that is not JSON), as the Bloomreach
  emulator's; ``"apply": true`` applies the request first (an answer lost after the
  delete was done).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from reconciler.emulator.bloomreach import SlidingWindow
from reconciler.emulator.server import Raw, ServedEmulator


@dataclass
class AdobeTargetSettings:
    tenant: str = "demo-tenant"
    token: str = "demo-token"
    api_key: str = "demo-client-id"
    requests_per_window: int = 50
    window_seconds: float = 60.0
    max_search_limit: int = 500
    retry_after_fractional: bool = False  # tests: "0.25" instead of whole seconds
    ignore_start: bool = False  # tests: every search answers the first page (a loop)


@dataclass
class AdobeTargetStats:
    requests: int = 0
    throttled: int = 0
    delete_requests: int = 0
    deleted: list[str] = field(default_factory=list)
    delete_everything: int = 0  # requests that hit the hazard (no ids or no environment)
    url_lengths: list[int] = field(default_factory=list)


class AdobeTargetEmulator(ServedEmulator):
    def __init__(self, entities: Mapping[int, Iterable[str]],
                 settings: AdobeTargetSettings | None = None) -> None:
        self.settings = settings or AdobeTargetSettings()
        self.environments: dict[int, dict[str, dict[str, Any]]] = {
            env: {i: {"name": f"Entity {i}"} for i in ids} for env, ids in entities.items()
        }
        self.stats = AdobeTargetStats()
        self.lock = threading.Lock()
        self.rate = SlidingWindow(self.settings.requests_per_window, self.settings.window_seconds)
        self.faults: dict[str, deque[dict[str, Any]]] = {
            "search": deque(), "delete": deque(), "get": deque()}

    def queue_faults(self, route: str, faults: Iterable[dict[str, Any]]) -> None:
        with self.lock:
            self.faults[route].extend(faults)

    def _fault(self, route: str, apply: Any) -> tuple[int, Any, dict[str, str]]:
        """The route's next queued answer (called with the lock held), else the real one."""
        if not self.faults[route]:
            return apply()  # type: ignore[no-any-return]
        fault = self.faults[route].popleft()
        if fault.get("apply"):
            apply()
        body = Raw(str(fault["raw"]).encode()) if "raw" in fault else fault.get("body")
        return int(fault.get("status", 200)), body, dict(fault.get("headers", {}))

    def ids(self, environment: int) -> set[str]:
        with self.lock:
            return set(self.environments.get(environment, {}))

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               headers: Mapping[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        s = self.settings
        base = f"/{s.tenant}/target/recs"
        if not path.startswith(base):
            return 404, {"error": "unknown tenant"}, {}
        if headers.get("authorization") != f"Bearer {s.token}" or \
                headers.get("x-api-key") != s.api_key:
            return 401, {"error": "Unauthorized: bad token or API key"}, {}
        with self.lock:
            self.stats.requests += 1
            wait = self.rate.admit(time.monotonic())
            if wait is not None:
                self.stats.throttled += 1
                seconds = f"{wait:.3f}" if s.retry_after_fractional else str(math.ceil(wait))
                return 503, {"error": "Service unavailable: too many requests"}, \
                    {"Retry-After": seconds}
            rest = path[len(base):]
            if rest == "/catalogsearch" and method == "POST":
                return self._fault("search", lambda: self._search(body))
            if rest == "/entities" and method == "DELETE":
                self.stats.url_lengths.append(len(path) + len(_query_text(query)))
                return self._fault("delete", lambda: self._delete(query))
            if rest.startswith("/entities/") and method == "GET":
                item_id = unquote(rest[len("/entities/"):])
                return self._fault("get", lambda: self._get(item_id, query))
        return 404, {"error": f"no route for {method} {rest}"}, {}

    def _search(self, body: bytes) -> tuple[int, Any, dict[str, str]]:
        try:
            meta = json.loads(body)["meta"]
            env, start, limit = int(meta["environmentId"]), int(meta["start"]), int(meta["limit"])
        except (ValueError, KeyError, TypeError):
            return 400, {"error": "meta.environmentId, meta.start and meta.limit are required"}, {}
        if not 1 <= limit <= self.settings.max_search_limit or start < 1:
            return 400, {"error": f"limit must be 1..{self.settings.max_search_limit}"}, {}
        ids = sorted(self.environments.get(env, {}))
        if self.settings.ignore_start:
            start = 1
        page = ids[start - 1:start - 1 + limit]
        return 200, {"hits": [{"id": i} for i in page]}, {}

    def _delete(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        self.stats.delete_requests += 1
        ids_text = query.get("ids", [""])[0]
        environments = query.get("environment")
        targets = [int(environments[0])] if environments else list(self.environments)
        if not ids_text:  # the documented hazard: everything goes
            self.stats.delete_everything += 1
            for env in targets:
                self.stats.deleted.extend(self.environments.get(env, {}))
                self.environments[env] = {}
            return 200, {"operation": "deleted all"}, {}
        if not environments:
            self.stats.delete_everything += 1
        for item_id in ids_text.split(","):
            for env in targets:
                if self.environments.get(env, {}).pop(item_id, None) is not None:
                    self.stats.deleted.append(item_id)
        return 200, {"operation": "deleted by ids"}, {}

    def _get(self, item_id: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        # Get Entity documents ``environmentId`` (not the delete's ``environment``): an
        # adapter sending the other name finds nothing, so a test would see it.
        env = int(query.get("environmentId", ["-1"])[0])
        entity = self.environments.get(env, {}).get(item_id)
        if entity is None:
            return 404, {"error": "entity not found"}, {}
        return 200, {"id": item_id, **entity}, {}


def _query_text(query: dict[str, list[str]]) -> str:
    return "&".join(f"{k}={v}" for k, values in query.items() for v in values)


def from_cli(items: Mapping[str, Any], args: Any) -> tuple[AdobeTargetEmulator, str]:
    """``reconciler emulator --api adobe-target``: the emulator and its banner's facts."""
    emulator = AdobeTargetEmulator({1: list(items)})
    s = emulator.settings
    return emulator, f"tenant={s.tenant} token={s.token} api_key={s.api_key} environment=1 "
