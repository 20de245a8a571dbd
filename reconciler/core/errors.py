"""Every error the reconciler raises on purpose, grouped by what to do next.

::

    ReconcilerError                    one line for the user, and an exit code
    ├── ConfigError          (2)       fix the config file or the command line
    ├── SourceError          (3)       fix the export; nothing was deleted
    ├── SafetyRefusal        (3)       a gate refused the run; nothing was deleted
    ├── EnvironmentProblem   (3)       state_dir, report folder or disk unusable; nothing deleted
    ├── SkippableItem        (-)       this one id cannot be sent; report it, go on
    └── ApiError             (1)       the remote API answered badly
        ├── RetriableApiError          wait (``retry_after`` when the server said) and try again
        └── FatalApiError              do not retry the same request
            ├── AuthError    (2)       401/403: the key or its permissions are wrong
            └── BatchAnswerMismatch    the answer cannot be matched to the ids sent

Library exceptions (httpx, pyarrow, tomllib) are translated into these at the boundary
where they happen, so the CLI never shows a traceback for a mistake of the user's.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_CONFIG = 2
EXIT_REFUSED = 3
EXIT_ITEMS_FAILED = 4


class ReconcilerError(Exception):
    """Base of every deliberate error; ``str(err)`` is the one line a user sees."""

    exit_code: int = EXIT_UNEXPECTED


class ConfigError(ReconcilerError):
    """The config or the command line is wrong; the message names the file and key."""

    exit_code = EXIT_CONFIG


class SourceError(ReconcilerError):
    """The source-of-truth export cannot be trusted or read; the run deletes nothing."""

    exit_code = EXIT_REFUSED


class SafetyRefusal(ReconcilerError):
    """A safety gate refused the run; the run deletes nothing."""

    exit_code = EXIT_REFUSED


class EnvironmentProblem(ReconcilerError):
    """The machine cannot hold what a run must write (state_dir, journal, report folder):
    found before the first delete, so nothing was deleted. The message names the path."""

    exit_code = EXIT_REFUSED


def describe_os_error(exc: BaseException) -> str:
    """One line for an OS or SQLite error: what failed and where, never a traceback."""
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        reason = exc.strerror or str(exc) or type(exc).__name__
        return f"{reason}{where}"
    return f"{type(exc).__name__}: {exc}"


class SkippableItem(ReconcilerError):
    """One id cannot be addressed by the API; it is reported as skipped with ``reason``."""

    def __init__(self, item_id: str, reason: str) -> None:
        super().__init__(f"item {item_id!r} skipped: {reason}")
        self.item_id = item_id
        self.reason = reason


class ApiError(ReconcilerError):
    """The remote API failed in a way our code expects to happen sometimes."""

    exit_code = EXIT_UNEXPECTED

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetriableApiError(ApiError):
    """Throttling, 5xx, timeouts, resets: the same request may succeed later.

    ``retry_after`` is the server's ``Retry-After`` in seconds when it sent one.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None,
        throttled: bool = False,
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        self._throttled = throttled

    @property
    def throttled(self) -> bool:
        """True when the server said we were over its rate limit (429, or Adobe's 503)."""
        return self.status == 429 or self._throttled


class FatalApiError(ApiError):
    """Retrying the same request would fail the same way."""


class AuthError(FatalApiError):
    """401/403: the credentials or their permissions are wrong; a config fix is needed."""

    exit_code = EXIT_CONFIG


class BatchAnswerMismatch(FatalApiError):
    """A bulk answer cannot be matched to the ids sent; those ids end as ``unknown``."""
