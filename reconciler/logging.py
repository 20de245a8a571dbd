"""structlog set-up: JSON lines (or console rendering on a TTY), and secret redaction.

Logs go to stderr so that stdout carries only the command's own result (report paths),
which scripts can read. Secrets are removed by a processor that every event passes
through, so no code path has to remember to do it: values of credential-like keys are
replaced, and any registered secret value is masked wherever it appears in a string.
"""

from __future__ import annotations

import logging as stdlib_logging
import os
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "***"
_SECRET_KEYS = frozenset(
    {"api_secret", "api_key_id", "authorization", "password", "secret", "token", "client_token"}
)


class SecretRedactor:
    """A structlog processor masking registered secrets and credential-like keys."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        from reconciler.core.redact import secret_forms

        # Every encoding of each secret (URL, JSON, Base64), not only its plain text.
        self.secrets = secret_forms(secrets)

    def __call__(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if key.lower() in _SECRET_KEYS:
                event[key] = REDACTED
            elif isinstance(value, str) and self.secrets:
                event[key] = self.redact(value)
        return event

    def redact(self, text: str) -> str:
        from reconciler.core.redact import redact

        return redact(text, self.secrets)


class BarSafeStream:
    """A terminal stream whose writes clear and redraw any progress bar around them."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from tqdm import tqdm

        with tqdm.external_write_mode(file=self._stream):
            return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return True


# syslog priorities of structlog's method names, for journald's "<N>" line prefix.
_PRIORITY = {"debug": 7, "info": 6, "warning": 5, "warn": 5, "error": 3, "exception": 3,
             "critical": 2, "fatal": 2}


def under_journald(stream: Any) -> bool:
    """True when ``stream`` is the journal stream systemd gave us ($JOURNAL_STREAM)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def journald_priority(_logger: Any, method: str, rendered: Any) -> Any:
    """Prefix a rendered line with ``<N>`` so journald records its priority (sd-daemon(3))."""
    return f"<{_PRIORITY.get(method, 6)}>{rendered}"


def configure(
    level: str = "info",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> SecretRedactor:
    """Configure structlog once per process; returns the redactor (reports use it too)."""
    out = stream or sys.stderr
    redactor = SecretRedactor(secrets)
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if use_console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redactor,
            renderer,
            *([journald_priority] if under_journald(out) else []),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(stdlib_logging, level.upper())
        ),
        logger_factory=structlog.WriteLoggerFactory(
            file=BarSafeStream(out) if out.isatty() else out  # type: ignore[arg-type]
        ),
        cache_logger_on_first_use=False,
    )
    return redactor


def get_logger(**context: Any) -> Any:
    return structlog.get_logger().bind(**context)
