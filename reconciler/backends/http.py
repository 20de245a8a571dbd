"""What every HTTP adapter shares: error translation, retries, its shape and its rules.

Every adapter sends through ``send``: a timeout or a broken connection is retriable
whatever the API, so no adapter re-implements that translation. ``HttpBackend`` holds
the members the backend interface asks of every adapter in the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from reconciler.batching import BatchShape
from reconciler.clock import Clock
from reconciler.config import Limits, Target
from reconciler.errors import RetriableApiError
from reconciler.plan import AddressRules
from reconciler.retry import OnRetry, retrying


class HttpBackend:
    """The shared part of an HTTP adapter; subclasses set ``_http``, ``_shape``, ``_rules``."""

    reads_back = True
    _http: httpx.Client
    _shape: BatchShape
    _rules: AddressRules

    def __init__(self, target: Target, limits: Limits, clock: Clock,
                 on_retry: OnRetry | None) -> None:
        self._target, self._limits, self._clock, self._on_retry = target, limits, clock, on_retry

    @property
    def batch_shape(self) -> BatchShape:
        return self._shape

    @property
    def address_rules(self) -> AddressRules:
        return self._rules

    def close(self) -> None:
        self._http.close()

    def _with_retries(self, call: Callable[[], Any]) -> Any:
        return retrying(self._limits, self._clock, self._on_retry)(call)


def send(client: httpx.Client, method: str, url: str, operation: str,
         **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetriableApiError(f"{operation}: timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise RetriableApiError(f"{operation}: connection failed: {exc}") from None
