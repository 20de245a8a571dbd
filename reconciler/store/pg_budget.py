"""One rate budget per catalog across replicas: ``ratelimit.BudgetState`` in PostgreSQL.

Every admission reads and writes the catalog's row under ``SELECT ... FOR UPDATE``, so the
replicas' admissions are serialized like the processes of one machine are by
``budgets.FileBudget``'s ``flock``. Replicas on different machines share no monotonic clock,
so the window is kept on the database's clock (``clock_timestamp()``) and the ``now`` the
caller passes is not used: only the waits it gets back are durations.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from reconciler.core.ratelimit import (
    BudgetState,
    Grant,
    SlidingWindowBudget,
    admit,
    complete,
    throttled,
)
from reconciler.store.budgets import state_from_json, state_to_json

_POOLS: dict[str, ConnectionPool[psycopg.Connection[Any]]] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(dsn: str) -> ConnectionPool[psycopg.Connection[Any]]:
    """One small pool per DSN and process for the budgets (they live as long as it)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(dsn)
        if pool is None or pool.closed:
            pool = ConnectionPool(dsn, min_size=1, max_size=4, open=True, timeout=30,
                                  kwargs={"autocommit": True})
            _POOLS[dsn] = pool
        return pool


class PgBudget(SlidingWindowBudget):
    """The same budget as ``FileBudget``, kept in the ``budgets`` table under a row lock."""

    def __init__(self, dsn: str, key: str, limit: int, window: float) -> None:
        super().__init__(limit, window)
        self.key = key
        self._pool = shared_pool(dsn)

    def _update(self, change: Callable[[BudgetState, float], tuple[BudgetState, Any]]) -> Any:
        with self._lock, self._pool.connection() as conn, conn.transaction():
            conn.execute("INSERT INTO budgets (key, state) VALUES (%s, '{}')"
                         " ON CONFLICT DO NOTHING", (self.key,))
            row = conn.execute(
                "SELECT state, extract(epoch FROM clock_timestamp())::float8 FROM budgets"
                " WHERE key = %s FOR UPDATE", (self.key,),
            ).fetchone()
            assert row is not None
            state, result = change(state_from_json(row[0].encode()), float(row[1]))
            conn.execute("UPDATE budgets SET state = %s WHERE key = %s",
                         (state_to_json(state).decode(), self.key))
            return result

    def acquire(self, now: float) -> Grant:
        token = uuid.uuid4().hex
        grant: Grant = self._update(
            lambda state, db_now: admit(state, db_now, self.limit, self.window, token))
        return grant

    def complete(self, token: str, now: float) -> None:
        self._update(lambda state, db_now: (
            complete(state, token, db_now, self.limit, self.window), None))

    def throttled(self, now: float, retry_after: float | None) -> None:
        self._update(lambda state, db_now: (
            throttled(state, db_now, self.limit, retry_after), None))
