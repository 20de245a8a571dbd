"""What every HTTP adapter shares: error translation, retries, its shape and its rules.

Every adapter sends through ``send``: a timeout or a broken connection is retriable
whatever the API, so no adapter re-implements that translation. ``HttpBackend`` holds
the members the backend interface asks of every adapter in the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from reconciler.backends.retry import OnRetry, retrying
from reconciler.core.batching import BatchShape
from reconciler.core.clock import Clock
from reconciler.core.errors import RetriableApiError
from reconciler.core.plan import AddressRules
from reconciler.core.ratelimit import SlidingWindowBudget
from reconciler.core.settings import Limits, Target

# A front end limits the whole request line, ``METHOD /path?query HTTP/1.1`` (Apache's
# LimitRequestLine default is 8,190 bytes); the margin covers a proxy's longer forms.
REQUEST_LINE_LIMIT = 8190
REQUEST_LINE_MARGIN = 190


def request_line_overhead(method: str, base_url: str, path_and_query: str) -> int:
    """Bytes of the request line besides the ids: method, the base URL's own path (httpx
    prefixes it), path and query, and the protocol version."""
    base_path = urlsplit(base_url).path.rstrip("/")
    return len(f"{method} {base_path}{path_and_query} HTTP/1.1")


def request_line_budget(max_batch_bytes: int) -> int:
    """The most a URL-carried batch may take: the configured bytes, within the line limit."""
    return min(max_batch_bytes, REQUEST_LINE_LIMIT - REQUEST_LINE_MARGIN)


_S = TypeVar("_S")


def target_settings(target: Target, kind: type[_S]) -> _S:
    """The target's own settings, checked to be those of the backend reading them."""
    if not isinstance(target.settings, kind):
        raise TypeError(f"{kind.__name__} expected for backend {target.backend!r}, got "
                        f"{type(target.settings).__name__}")
    return target.settings


class HttpBackend:
    """The shared part of an HTTP adapter; subclasses set ``_connect``, ``_shape``, ``_rules``."""

    reads_back = True
    lists_properties = False
    _connect: Callable[[], httpx.Client]  # makes the client, on first use
    _shape: BatchShape
    _rules: AddressRules

    def __init__(self, target: Target, limits: Limits, clock: Clock,
                 on_retry: OnRetry | None) -> None:
        self._target, self._limits, self._clock, self._on_retry = target, limits, clock, on_retry
        self._read_budget = SlidingWindowBudget(*self.read_rate)
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @property
    def _http(self) -> httpx.Client:
        """The HTTP client, made on first use: a plan over an inventory export sends no
        request, and making a client (TLS context, CA bundle) costs ~40 ms a start."""
        with self._client_lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    @property
    def budget_key(self) -> str:
        raise NotImplementedError

    @property
    def read_budget_key(self) -> str:
        """The reads' own budget (the API documents no limit for them)."""
        return f"{self.budget_key}:reads"

    @property
    def read_rate(self) -> tuple[int, float]:
        """(requests, per seconds) for reads."""
        return self._limits.read_requests_per_window, self._limits.read_window_seconds

    def share_read_budget(self, budget: SlidingWindowBudget) -> None:
        """Use a budget shared with other processes (``budgets.FileBudget``) for reads."""
        self._read_budget = budget

    @property
    def batch_shape(self) -> BatchShape:
        return self._shape

    @property
    def address_rules(self) -> AddressRules:
        return self._rules

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _with_retries(self, call: Callable[[], Any]) -> Any:
        """One read call: each attempt waits for a slot of the read budget."""

        def attempt() -> Any:
            token = self._read_slot()
            try:
                return call()
            except RetriableApiError as exc:
                if exc.throttled:
                    self._read_budget.throttled(self._clock.monotonic(), exc.retry_after)
                raise
            finally:
                self._read_budget.complete(token, self._clock.monotonic())

        return retrying(self._limits, self._clock, self._on_retry)(attempt)

    def _read_slot(self) -> str:
        while True:
            grant = self._read_budget.acquire(self._clock.monotonic())
            if grant.token is not None:
                return grant.token
            self._clock.sleep(grant.wait)


def send(client: httpx.Client, method: str, url: str, operation: str,
         **kwargs: Any) -> httpx.Response:
    """One request whose whole answer must arrive within the client's timeout
    (``timeout_seconds``, "per HTTP request"): httpx bounds each read, not the answer, so a
    proxy trickling a byte a second would hold a run (and its stop) for as long as it
    likes. Past the limit the answer is abandoned like a timeout: retriable, the batch
    ``unknown`` when retries run out (it may have been applied)."""
    limit = client.timeout.read
    started = time.monotonic()
    try:
        with client.stream(method, url, **kwargs) as response:
            raw = bytearray()
            for chunk in response.iter_raw():  # still encoded: the answer decodes it once
                raw += chunk
                if limit is not None and time.monotonic() - started > limit:
                    raise RetriableApiError(f"{operation}: the answer took longer than "
                                            f"{limit:g} s to arrive in full (timeout_seconds)")
        return httpx.Response(response.status_code, headers=response.headers,
                              content=bytes(raw), request=response.request)
    except httpx.TimeoutException as exc:
        raise RetriableApiError(f"{operation}: timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise RetriableApiError(f"{operation}: connection failed: {exc}") from None
