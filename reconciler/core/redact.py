"""The one redaction of credentials from text that leaves the process.

A server may echo what it was sent: the key, the secret, the token, or the whole
``Authorization`` header (Base64 of ``id:secret``), URL-encoded in a query string, or
JSON-escaped inside an error body. ``secret_forms`` lists every such form of a target's
credentials; ``redact`` masks them in any text. The log processor (``logging.py``) and the
backend wrapper (``RedactingBackend``: every error text and per-item answer of an API, before
it is logged, journaled or written to ``outcomes.csv`` and reports) both use them.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote, quote_plus

from reconciler.core.classify import ItemResult
from reconciler.core.errors import ReconcilerError
from reconciler.core.settings import Target

REDACTED = "***"


def _b64(text: str) -> list[str]:
    raw = text.encode("utf-8")
    forms = [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    return forms + [f.rstrip("=") for f in forms]


def secret_forms(values: Iterable[str], pairs: Iterable[tuple[str, str]] = ()) -> tuple[str, ...]:
    """Every form in which these secrets may come back, longest first."""
    forms: set[str] = set()
    for value in values:
        if not value:
            continue
        forms.update({value, quote(value, safe=""), quote_plus(value), *_b64(value),
                      json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]})
    for user, password in pairs:
        if user or password:
            forms.update(_b64(f"{user}:{password}"))
    return tuple(sorted((f for f in forms if f), key=len, reverse=True))


def target_forms(target: Target) -> tuple[str, ...]:
    pair = target.settings.basic_auth()
    return secret_forms(target.secrets, [pair] if pair else [])


def config_forms(targets: Iterable[Target]) -> tuple[str, ...]:
    """Every job's credentials and their Basic pairs (the log processor expands the rest)."""
    values: set[str] = set()
    for target in targets:
        values.update(target.secrets)
        pair = target.settings.basic_auth()
        if pair:
            values.update(_b64(f"{pair[0]}:{pair[1]}"))
    return tuple(sorted(values))


@functools.lru_cache(maxsize=16)
def _pattern(forms: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(f) for f in forms))  # longest first: ``forms`` order


def redact(text: str, forms: Sequence[str]) -> str:
    """``text`` with every form masked (one pass; forms are longest first)."""
    if not forms or not text:
        return text
    return _pattern(tuple(forms)).sub(REDACTED, text)


class RedactingBackend:
    """A backend whose errors and per-item answers never carry its credentials."""

    def __init__(self, inner: Any, forms: Sequence[str]) -> None:
        self._inner = inner
        self._forms = forms

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value) or name.startswith("_"):
            return value
        return self._wrap(value)

    def _wrap(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                result = call(*args, **kwargs)
            except ReconcilerError as exc:
                exc.args = (redact(str(exc), self._forms), *exc.args[1:])
                raise
            if isinstance(result, list) and result and isinstance(result[0], ItemResult):
                return [replace(r, error=redact(r.error, self._forms)) for r in result]
            return result

        return wrapped
