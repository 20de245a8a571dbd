"""Durable state behind one ``Store`` interface (base.py), and the one factory for it.

``open_store`` (the journal), ``job_lease``, ``catalog_budget`` and ``backup_store`` pick the
backing: ``state = "postgresql://..."`` (top level of the config) puts them all in
PostgreSQL, shared by every replica; without it they are the embedded SQLite journal and
files under ``state_dir`` (the default). Callers ask here and never name an implementation.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from reconciler.core.ratelimit import SlidingWindowBudget
from reconciler.core.settings import Config
from reconciler.store.base import ItemRow, RunRow, Store

__all__ = ["ItemRow", "RunRow", "Store", "backup_store", "catalog_budget", "job_lease",
           "open_store", "plan_key"]



def store_errors() -> tuple[type[Exception], ...]:
    """What a store may raise when its database fails under a run (caught like an OSError).

    psycopg's errors only once psycopg is loaded: only the PostgreSQL store imports it, and
    importing it costs every start of the command ~0.1 s (measured with -X importtime)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error, psycopg.Error) if psycopg is not None else (sqlite3.Error,)


def environment_errors() -> tuple[type[Exception], ...]:
    """``store_errors()`` and the machine's own failures (disk full, state_dir removed)."""
    return (OSError, *store_errors())


def __getattr__(name: str) -> tuple[type[Exception], ...]:
    """``STORE_ERRORS`` and ``ENVIRONMENT_ERRORS`` as fixed tuples, psycopg's included
    (this imports psycopg: a ``try`` in the run path calls the functions instead)."""
    if name in ("STORE_ERRORS", "ENVIRONMENT_ERRORS"):
        import psycopg  # noqa: F401

        return store_errors() if name == "STORE_ERRORS" else environment_errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_MIGRATED: set[str] = set()
_MIGRATED_LOCK = threading.Lock()


class Lease(Protocol):
    """A job's exclusive right to run (``locks.JobLock`` or ``pg_lease.PgLease``)."""

    def acquire(self) -> Any: ...
    def release(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None: ...


def uses_postgres(config: Config) -> bool:
    return config.state is not None


def open_store(config: Config, lease: Lease | None = None) -> Store:
    """The journal: SQLite under state_dir, or PostgreSQL fenced by ``lease`` when it is a
    PostgreSQL lease (every write before a send checks the lease is still held)."""
    if config.state is None:
        from reconciler.store.journal import Journal

        return Journal.in_state_dir(config.state_dir)
    from reconciler.store.pg_lease import PgLease
    from reconciler.store.postgres import PostgresStore

    fence = lease.held if isinstance(lease, PgLease) else None
    store = PostgresStore(config.state, fence=fence)
    with _MIGRATED_LOCK:
        _MIGRATED.add(config.state)
    return store


def _ensure_schema(dsn: str) -> None:
    with _MIGRATED_LOCK:
        if dsn in _MIGRATED:
            return
    from reconciler.store.postgres import PostgresStore

    PostgresStore(dsn, pool_size=1).close()
    with _MIGRATED_LOCK:
        _MIGRATED.add(dsn)


def job_lease(config: Config, job: str) -> Lease:
    """One replica (or process) per job: an advisory lock in PostgreSQL, else a file lock."""
    if config.state is None:
        from reconciler.store.locks import JobLock

        return JobLock(config.state_dir, job)
    from reconciler.store.pg_lease import PgLease

    return PgLease(config.state, job)


class BackupStore(Protocol):
    """Where backups of deleted items go (``backups.FileBackups``, ``pg_backups.PgBackups``)."""

    def write(self, job: str, run_id: str,
              records: Iterable[dict[str, Any]]) -> tuple[int, str]: ...
    def read(self, job: str, run_id: str) -> Iterator[dict[str, Any]] | None: ...
    def where(self, job: str, run_id: str) -> str: ...
    def prune(self, job: str, retention_seconds: float, now: float) -> list[str]: ...
    def adopt(self, job: str, run_id: str, spooled: Path) -> tuple[int, str]:
        """Take the backup streamed to ``spooled`` (``backups.RecordWriter``, fsynced) as
        this run's; (records, where they are now)."""


def backup_store(config: Config) -> BackupStore:
    """Backups in files under state_dir, or in PostgreSQL where every replica reaches them."""
    if config.state is None:
        from reconciler.store.backups import FileBackups

        return FileBackups(config.state_dir)
    from reconciler.store.pg_backups import PgBackups

    _ensure_schema(config.state)
    return PgBackups(config.state)


def plan_key(config: Config) -> bytes:
    """The key that signs saved plans: ``state_dir/plan.key``, or one row in PostgreSQL so
    that a plan saved on one replica is applied on any other."""
    if config.state is None:
        from reconciler.store.saved_plan import signing_key

        return signing_key(config.state_dir)
    from reconciler.store.postgres import PostgresStore

    store = PostgresStore(config.state, pool_size=1)
    try:
        return store.signing_key()
    finally:
        store.close()


def catalog_budget(config: Config, key: str, limit: int, window: float) -> SlidingWindowBudget:
    """The rate budget of one catalog, shared by every process (file) or replica (table)."""
    if config.state is None:
        from reconciler.store.budgets import FileBudget, budget_path

        return FileBudget(budget_path(config.budgets, key), limit, window)
    from reconciler.store.pg_budget import PgBudget

    _ensure_schema(config.state)
    return PgBudget(config.state, key, limit, window)
