"""How a PostgreSQL state is named in messages (never with its password) and which replica
speaks to it."""

from __future__ import annotations

import os
import re
import socket

_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*(@)")
_PASSWORD_KV = re.compile(r"(password\s*=\s*)(\S+)", re.IGNORECASE)


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for logs and messages."""
    return _PASSWORD_KV.sub(r"\1***", _PASSWORD.sub(r"\1***\2", dsn))


def replica_name() -> str:
    """Which replica: ``hostname:pid`` (history and /metrics show it)."""
    return f"{socket.gethostname()}:{os.getpid()}"
