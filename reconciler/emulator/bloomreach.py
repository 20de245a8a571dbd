"""A local emulator of the Bloomreach Engagement catalog API, as the contract describes it.

Served by the standard library on 127.0.0.1 (HTTP/1.1, keep-alive), it is used by
``reconciler demo``, by ``reconciler emulator`` and by the tests over real sockets. It is
strict where the real API is strict, so a client bug shows up here first:

* HTTP Basic auth: unknown key id 401 "Access key not found", wrong secret 403
  "invalid secret", a key without a permission 403 naming it.
* ``GET .../items``: ``count + skip > window`` (1001) is a 400; ``order`` on ``item_id``
  asc/desc in code-point order; ``query`` + ``field=item_id`` is a case-sensitive prefix
  match (``query_semantics`` switches it to case-insensitive prefix or substring),
  ``query`` alone a substring match on the id and string properties.
* ``DELETE .../items/bulk-delete``: 400 for invalid JSON, a non-list, a body over the
  byte limit, more than the id limit; per-item errors for non-string, empty ids and ids
  containing ``/``; unknown ids succeed.
* Bulk delete, ``PUT .../items`` and ``POST .../items/partial-update`` share one sliding
  window per catalog (5 per 10 s by default) answering 429, with ``Retry-After`` unless
  switched off.
* ``/_emulator/stats`` (GET) and ``/_emulator/faults`` (POST) let a test look inside and
  queue failures: ``{"list": [503, "reset"], "bulk": [500, "truncated", "short"]}``
  (``short``: a bulk answer one entry short, which cannot be matched to the ids;
  ``reset-after``/``truncated``/``slow``: the request is applied, the answer is lost,
  cut or late; ``trickle``: applied, then the answer goes one byte every
  ``trickle_seconds``, each byte inside the client's read timeout). ``fault_rate``
  draws such faults at random (seeded). A fault may also be a whole answer,
  ``{"status": 429, "headers": {"Retry-After": "86400"}, "body": ...}``
  (``"raw": "text"`` for a body that is not JSON), and ``"echo"`` is a 500 whose error
  text repeats the request's credentials (header, Base64 and decoded), as careless
  servers do.
* ``hold(route, after)``: requests past the ``after``-th on a route block until
  ``release()``, so a test can kill a client while its request is provably in flight.
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote

from reconciler.emulator.server import Raw, ServedEmulator, Trickle

PERMISSIONS = ("list", "get", "delete", "update")
PERMISSION_NAMES = {
    "list": "catalogs.view_catalog_items",
    "get": "catalogs.view_catalog_items",
    "delete": "catalogs.delete_catalog_item",
    "update": "catalogs.update_catalog_item",
}


@dataclass
class EmulatorSettings:
    project_token: str = "demo-project"
    catalog_id: str = "demo-catalog"
    api_key_id: str = "demo-key"
    api_secret: str = "demo-secret"
    permissions: tuple[str, ...] = PERMISSIONS
    bulk_requests_per_window: int = 5
    bulk_window_seconds: float = 10.0
    send_retry_after: bool = True
    retry_after_fractional: bool = False  # tests: "0.25" instead of whole seconds
    list_window: int = 1001
    default_count: int = 20
    # What ``query`` + ``field=item_id`` means: "prefix" (the assumed, case-sensitive),
    # "prefix-ci" (case-insensitive prefix) or "substring"; tests switch it to prove the
    # client notices and stays safe.
    query_semantics: str = "prefix"
    max_bulk_ids: int = 10_000
    max_bulk_bytes: int = 10_000_000
    reject_ids: frozenset[str] = frozenset()  # tests: these fail per item in bulk delete
    lose_ids: frozenset[str] = frozenset()  # tests: answered queued, never actually deleted
    # Random faults: each list/bulk request fails with this probability, the kind drawn
    # from fault_kinds ("500", "502", "503", "reset", "reset-after", "truncated", "slow").
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ("500", "503", "reset", "reset-after", "truncated", "slow")
    slow_seconds: float = 0.5
    trickle_seconds: float = 0.1  # between the bytes of a "trickle" answer
    seed: int = 0


@dataclass
class EmulatorStats:
    list_requests: int = 0
    get_requests: int = 0  # GET .../items/{id}: one item read back
    bulk_delete_requests: int = 0
    bulk_delete_entries: int = 0
    bulk_update_requests: int = 0
    throttled: int = 0
    bad_requests: int = 0
    deleted: list[str] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    batch_bytes: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "list_requests": self.list_requests,
            "get_requests": self.get_requests,
            "bulk_delete_requests": self.bulk_delete_requests,
            "bulk_delete_entries": self.bulk_delete_entries,
            "bulk_update_requests": self.bulk_update_requests,
            "throttled": self.throttled,
            "bad_requests": self.bad_requests,
            "deleted": self.deleted,
            "batch_sizes": self.batch_sizes,
            "batch_bytes": self.batch_bytes,
        }


class Catalog:
    """The items, kept sorted for ordered and prefix-ranged listing."""

    def __init__(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        self.items: dict[str, dict[str, Any]] = {k: dict(v) for k, v in items.items()}
        self._sorted: list[str] | None = None

    def sorted_ids(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.items)
        return self._sorted

    def remove(self, item_id: str) -> bool:
        if self.items.pop(item_id, None) is None:
            return False
        self._sorted = None
        return True

    def upsert(self, item_id: str, properties: Mapping[str, Any], replace: bool) -> None:
        if item_id not in self.items:
            self._sorted = None
            self.items[item_id] = {}
        if replace:
            self.items[item_id] = dict(properties)
        else:
            self.items[item_id].update(properties)

    def prefix_range(self, prefix: str) -> list[str]:
        """Ids starting with ``prefix``: one contiguous run in sorted order."""
        ids = self.sorted_ids()
        lo = bisect.bisect_left(ids, prefix)
        hi = _first_without_prefix(ids, prefix, lo, len(ids))
        return ids[lo:hi]


def _first_without_prefix(ids: list[str], prefix: str, lo: int, hi: int) -> int:
    """Index of the first id in ids[lo:hi] not starting with prefix (those that do come first)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ids[mid].startswith(prefix):
            lo = mid + 1
        else:
            hi = mid
    return lo


class SlidingWindow:
    """The server side of the rate limit: requests counted on arrival."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.stamps: deque[float] = deque()

    def admit(self, now: float) -> float | None:
        """None when admitted, else the seconds until a slot frees up."""
        while self.stamps and self.stamps[0] <= now - self.window:
            self.stamps.popleft()
        if len(self.stamps) >= self.limit:
            return self.stamps[0] + self.window - now
        self.stamps.append(now)
        return None


class Emulator(ServedEmulator):
    """The state and rules of one emulated catalog; ``serve`` puts it on a socket."""

    def __init__(
        self,
        items: Mapping[str, Mapping[str, Any]] | Iterable[str] = (),
        settings: EmulatorSettings | None = None,
    ) -> None:
        self.settings = settings or EmulatorSettings()
        if not isinstance(items, Mapping):
            items = {i: {"title": f"Item {i}"} for i in items}
        self.catalog = Catalog(items)
        self.stats = EmulatorStats()
        self.faults: dict[str, deque[Any]] = {"list": deque(), "bulk": deque()}
        self.lock = threading.Lock()
        self.rate = SlidingWindow(
            self.settings.bulk_requests_per_window, self.settings.bulk_window_seconds
        )
        self._random = random.Random(self.settings.seed)
        self._arrivals = {"list": 0, "bulk": 0}
        self._hold_after: dict[str, int | None] = {"list": None, "bulk": None}
        self.held = threading.Event()
        self._released = threading.Event()

    def hold(self, route: str, after: int) -> None:
        """Block ``route`` requests past the ``after``-th until ``release``."""
        self._released.clear()
        self.held.clear()
        self._hold_after[route] = after

    def release(self) -> None:
        self._hold_after = {"list": None, "bulk": None}
        self._released.set()

    def stop(self) -> None:
        self.release()  # a held request must not keep a server thread waiting
        super().stop()

    @property
    def catalog_path(self) -> str:
        """The catalog's path as it appears on the wire (segments percent-encoded)."""
        s = self.settings
        token, catalog = quote(s.project_token, safe=""), quote(s.catalog_id, safe="")
        return f"/data/v2/projects/{token}/catalogs/{catalog}"

    def ids(self) -> set[str]:
        with self.lock:
            return set(self.catalog.items)

    def queue_faults(self, route: str, faults: Iterable[Any]) -> None:
        with self.lock:
            self.faults[route].extend(faults)

    # -- request handling (called with parsed parts; returns status, body, headers) -------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        if path == "/_emulator/stats" and method == "GET":
            with self.lock:
                return 200, {**self.stats.as_dict(), "items": len(self.catalog.items)}, {}
        if path == "/_emulator/faults" and method == "POST":
            for route, faults in json.loads(body or b"{}").items():
                self.queue_faults(route, faults)
            return 200, {"success": True}, {}
        if not path.startswith(self.catalog_path):
            return 404, {"success": False, "error": "Catalog not found"}, {}
        rest = path[len(self.catalog_path):]
        route = _route(method, rest)
        if route is None:
            return 404, {"success": False, "error": f"No route for {method} {rest}"}, {}
        kind, item_id = route
        denied = self._authorize(headers.get("authorization", ""), kind)
        if denied is not None:
            return denied
        route_name = "list" if kind in ("list", "get") else "bulk"
        self._maybe_hold(route_name)
        fault, after = self._take_fault(route_name, headers.get("authorization", ""))
        if fault is not None:
            return fault
        status, payload, headers = self._apply(kind, item_id, query, body)
        if after == "reset-after":
            raise ConnectionResetError("emulated reset after the request was applied")
        if after == "truncated":
            return 200, Raw(json.dumps(payload).encode()[:20]), {}
        if after == "trickle":
            trickle = Trickle(json.dumps(payload).encode())
            trickle.interval = self.settings.trickle_seconds
            return status, trickle, headers
        if after == "short" and isinstance(payload, list):
            return status, payload[:-1], headers
        return status, payload, headers

    def _maybe_hold(self, route: str) -> None:
        with self.lock:
            self._arrivals[route] += 1
            after = self._hold_after[route]
            holding = after is not None and self._arrivals[route] > after
        if holding:
            self.held.set()
            self._released.wait()

    def _apply(self, kind: str, item_id: str, query: dict[str, list[str]],
               body: bytes) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            if kind == "list":
                return self._list(query)
            if kind == "get":
                return self._get(item_id)
            if kind == "delete-one":
                self.catalog.remove(item_id)
                return 200, {"success": True}, {}
            if kind == "delete-all":
                self.stats.deleted.extend(self.catalog.items)
                self.catalog = Catalog({})
                return 200, {"success": True}, {}
            throttled = self._throttle()
            if throttled is not None:
                return throttled
            if kind == "bulk-delete":
                return self._bulk_delete(body)
            return self._bulk_update(body, partial=kind == "partial-update")

    def _authorize(self, header: str, kind: str) -> tuple[int, Any, dict[str, str]] | None:
        s = self.settings
        key_id, secret = _basic_credentials(header)
        if key_id != s.api_key_id:
            return 401, {"success": False, "errors": ["Access key not found"]}, {}
        if secret != s.api_secret:
            return 403, {"success": False, "errors": ["invalid secret"]}, {}
        needed = {"list": "list", "get": "get", "delete-one": "delete", "bulk-delete": "delete",
                  "delete-all": "delete"}
        permission = needed.get(kind, "update")
        if permission not in s.permissions:
            name = PERMISSION_NAMES[permission]
            return 403, {"success": False, "errors": [f"Missing permission: {name}"]}, {}
        return None

    def _take_fault(
        self, route: str, authorization: str = ""
    ) -> tuple[tuple[int, Any, dict[str, str]] | None, str | None]:
        """(an answer instead of applying the request, or a fault to apply after it)."""
        with self.lock:
            if self.faults[route]:
                fault: Any = self.faults[route].popleft()
            elif self.settings.fault_rate and self._random.random() < self.settings.fault_rate:
                fault = self._random.choice(self.settings.fault_kinds)
            else:
                return None, None
        if isinstance(fault, dict):
            body = Raw(str(fault["raw"]).encode()) if "raw" in fault else fault.get("body")
            return (int(fault.get("status", 200)), body, dict(fault.get("headers", {}))), None
        if fault == "echo":
            key_id, secret = _basic_credentials(authorization)
            text = (f"bad request from {authorization!r} ({key_id}:{secret}), "
                    f"url-encoded {quote(secret, safe='')}")
            return (500, {"success": False, "error": text}, {}), None
        if fault in ("reset-after", "truncated", "short", "trickle"):
            return None, str(fault)  # applied first, then the answer is lost, cut or short
        if fault == "slow":
            time.sleep(self.settings.slow_seconds)
            return None, None
        if fault == "reset":
            raise ConnectionResetError("emulated connection reset")
        status = int(fault)
        return (status, {"success": False, "error": HTTPStatus(status).phrase}, {}), None

    def _throttle(self) -> tuple[int, Any, dict[str, str]] | None:
        wait = self.rate.admit(time.monotonic())
        if wait is None:
            return None
        self.stats.throttled += 1
        seconds = f"{wait:.3f}" if self.settings.retry_after_fractional else str(math.ceil(wait))
        headers = {"Retry-After": seconds} if self.settings.send_retry_after else {}
        return 429, {"success": False, "error": "Rate limit exceeded"}, headers

    def _list(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        self.stats.list_requests += 1
        s = self.settings
        try:
            count = int(_one(query, "count", str(s.default_count)))
            skip = int(_one(query, "skip", "0"))
        except ValueError:
            return self._bad("count and skip must be integers")
        if count < 0 or skip < 0:
            return self._bad("count and skip must not be negative")
        if count + skip > s.list_window:
            return self._bad(f"count + skip must not exceed {s.list_window}")
        order = _one(query, "order", "item_id asc").split()
        if len(order) != 2 or order[0] != "item_id" or order[1] not in ("asc", "desc"):
            return self._bad("order must be 'item_id asc' or 'item_id desc'")
        needle, field_name = _one(query, "query", ""), _one(query, "field", "")
        if field_name not in ("", "item_id"):
            return self._bad(f"field {field_name!r} is not indexed")
        if needle and field_name == "item_id":
            matched = self._field_match(needle)
        elif needle:
            matched = [i for i in self.catalog.sorted_ids() if self._matches(i, needle)]
        else:
            matched = self.catalog.sorted_ids()
        window = matched[::-1] if order[1] == "desc" else matched
        page = window[skip:skip + count]
        data = [
            {"catalog_id": s.catalog_id, "item_id": i, "properties": self.catalog.items[i]}
            for i in page
        ]
        return 200, {
            "success": True, "data": data, "matched": len(matched),
            "total": len(self.catalog.items), "limit": count, "skip": skip,
            "matched_limited": False,
        }, {}

    def _field_match(self, needle: str) -> list[str]:
        semantics = self.settings.query_semantics
        if semantics == "prefix":
            return self.catalog.prefix_range(needle)
        if semantics == "prefix-ci":
            low = needle.lower()
            return [i for i in self.catalog.sorted_ids() if i.lower().startswith(low)]
        if semantics == "substring":
            return [i for i in self.catalog.sorted_ids() if needle in i]
        raise ValueError(f"unknown query_semantics {semantics!r}")

    def _matches(self, item_id: str, needle: str) -> bool:
        if needle in item_id:
            return True
        props = self.catalog.items[item_id].values()
        return any(isinstance(v, str) and needle in v for v in props)

    def _get(self, item_id: str) -> tuple[int, Any, dict[str, str]]:
        self.stats.get_requests += 1
        if item_id not in self.catalog.items:
            return 404, {"success": False, "error": "Item not found"}, {}
        props = self.catalog.items[item_id]
        return 200, {"success": True, "data": {"item_id": item_id, "properties": props}}, {}

    def _bad(self, message: str) -> tuple[int, Any, dict[str, str]]:
        self.stats.bad_requests += 1
        return 400, {"success": False, "error": message}, {}

    def _bulk_payload(self, body: bytes) -> list[Any] | tuple[int, Any, dict[str, str]]:
        if len(body) > self.settings.max_bulk_bytes:
            return self._bad("Payload size exceeded")
        try:
            payload = json.loads(body)
        except ValueError:
            return self._bad("Invalid JSON")
        if not isinstance(payload, list):
            return self._bad("Payload not a list")
        if len(payload) > self.settings.max_bulk_ids:
            return self._bad("Too many items")
        return payload

    def _bulk_delete(self, body: bytes) -> tuple[int, Any, dict[str, str]]:
        payload = self._bulk_payload(body)
        if isinstance(payload, tuple):
            return payload
        self.stats.bulk_delete_requests += 1
        self.stats.bulk_delete_entries += len(payload)
        self.stats.batch_sizes.append(len(payload))
        self.stats.batch_bytes.append(len(body))
        answer = []
        for entry in payload:
            item_id = entry.get("item_id") if isinstance(entry, dict) else entry
            problem = _item_id_problem(item_id)
            if item_id in self.settings.reject_ids:
                problem = "Validation error: rejected by the emulator"
            if problem or not isinstance(item_id, str):
                answer.append({"success": False, "queued": False, "errors": {"_global": [problem]}})
                continue
            if item_id not in self.settings.lose_ids and self.catalog.remove(item_id):
                self.stats.deleted.append(item_id)
            answer.append({"success": True, "queued": True})
        return 200, answer, {}

    def _bulk_update(self, body: bytes, partial: bool) -> tuple[int, Any, dict[str, str]]:
        payload = self._bulk_payload(body)
        if isinstance(payload, tuple):
            return payload
        self.stats.bulk_update_requests += 1
        answer = []
        for entry in payload:
            item_id = entry.get("item_id") if isinstance(entry, dict) else None
            problem = _item_id_problem(item_id)
            props = entry.get("properties", {}) if isinstance(entry, dict) else None
            if not problem and not isinstance(props, dict):
                problem = "Validation error: properties must be an object"
            if not problem and partial and item_id not in self.catalog.items \
                    and not entry.get("upsert", False):
                problem = "Item not found"
            if problem:
                answer.append({"success": False, "queued": False, "errors": {"_global": [problem]}})
                continue
            assert isinstance(item_id, str) and isinstance(props, dict)
            self.catalog.upsert(item_id, props, replace=not partial)
            answer.append({"success": True, "queued": True})
        return 200, answer, {}


def _item_id_problem(item_id: Any) -> str | None:
    if not isinstance(item_id, str):
        return "Malformed item id. Item id should be a string"
    if not item_id:
        return "Validation error: item id must not be empty"
    if "/" in item_id:
        return "Validation error: item id must not contain '/'"
    return None


def _route(method: str, rest: str) -> tuple[str, str] | None:
    if rest == "/items/bulk-delete":
        return ("bulk-delete", "") if method == "DELETE" else None
    if rest == "/items/partial-update":
        return ("partial-update", "") if method == "POST" else None
    if rest == "/items":
        return {"GET": ("list", ""), "PUT": ("update", ""), "DELETE": ("delete-all", "")}.get(
            method)
    if rest.startswith("/items/"):
        item_id = unquote(rest[len("/items/"):])
        return {"GET": ("get", item_id), "DELETE": ("delete-one", item_id)}.get(method)
    return None


def _one(query: dict[str, list[str]], key: str, default: str) -> str:
    return query.get(key, [default])[0]


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        key_id, _, secret = base64.b64decode(encoded).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return key_id, secret


def from_cli(items: Mapping[str, Any], args: Any) -> tuple[Emulator, str]:
    """``reconciler emulator`` (``--api bloomreach``): the emulator and its banner's facts."""
    from reconciler.emulator.serve import parse_rate

    limit, window = parse_rate(args.rate)
    settings = EmulatorSettings(
        bulk_requests_per_window=limit,
        bulk_window_seconds=window,
        send_retry_after=not args.no_retry_after,
        query_semantics=getattr(args, "query_semantics", "prefix"),
    )
    return Emulator(items, settings), (
        f"project={settings.project_token} catalog={settings.catalog_id} "
        f"key={settings.api_key_id}:{settings.api_secret} bulk rate={limit}/{window:g}s "
    )
