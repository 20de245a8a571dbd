"""The one place httpx's transport exceptions become the reconciler's errors.

Every HTTP adapter sends through ``send``: a timeout or a broken connection is retriable
whatever the API, so no adapter re-implements that translation.
"""

from __future__ import annotations

from typing import Any

import httpx

from reconciler.errors import RetriableApiError


def send(client: httpx.Client, method: str, url: str, operation: str,
         **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetriableApiError(f"{operation}: timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise RetriableApiError(f"{operation}: connection failed: {exc}") from None
