"""The journal in PostgreSQL: one state shared by every replica (``state = "postgresql://..."``).

``PostgresStore`` keeps the same public methods, states and guarantees as the SQLite
``Journal`` (see journal.py for the item lifecycle): the plan is stored whole before the
first delete, a batch and its items are marked ``sent`` in one transaction before the
request goes out, outcomes when the answer is in. Item ids are ``COLLATE "C"`` so that
their order is the code point order SQLite and Python use.

Schema changes are numbered steps in ``MIGRATIONS``; ``schema_version`` records the last
applied, and replicas starting together serialize on an advisory transaction lock.

A store opened with a lease (``fence``) checks, in the same transaction as every write that
precedes a send, that the lease's session still holds its advisory lock: a replica whose
lease was lost (its connection dropped, another replica took the job) cannot mark a batch
sent, so it sends nothing more.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from reconciler.core.errors import ConfigError, EnvironmentProblem
from reconciler.core.states import ItemState, RunStatus
from reconciler.store.pg_conninfo import redact_dsn, replica_name
from reconciler.store.sql import SqlStore, Writer

__all__ = ["LeaseLost", "PostgresStore", "redact_dsn", "replica_name"]

MIGRATION_LOCK = 0x7265636F  # pg_advisory_xact_lock key serializing migrations ("reco")

MIGRATIONS: tuple[str, ...] = (
    # 1: runs, items, batches, grace, ledger, as in the SQLite journal at its version 4.
    """
    CREATE TABLE runs (
        seq BIGSERIAL UNIQUE,
        run_id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        dry_run BOOLEAN NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        resumed_from TEXT,
        exit_code INTEGER,
        pid INTEGER,
        host TEXT,
        target TEXT,
        summary TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX runs_by_job ON runs (job, seq);
    CREATE INDEX runs_by_job_target ON runs (job, target);
    CREATE TABLE items (
        plan_run TEXT NOT NULL REFERENCES runs (run_id),
        item_id TEXT COLLATE "C" NOT NULL,
        state TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        batch INTEGER,
        sends INTEGER NOT NULL DEFAULT 0,
        queued_at DOUBLE PRECISION,
        PRIMARY KEY (plan_run, item_id)
    );
    CREATE INDEX items_to_verify ON items (plan_run) WHERE state IN ('queued', 'still_present');
    CREATE TABLE batches (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        seq INTEGER NOT NULL,
        plan_run TEXT NOT NULL,
        size INTEGER NOT NULL,
        state TEXT NOT NULL,
        sent_at DOUBLE PRECISION NOT NULL,
        answered_at DOUBLE PRECISION,
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE absences (
        job TEXT NOT NULL,
        target TEXT NOT NULL,
        item_id TEXT COLLATE "C" NOT NULL,
        runs INTEGER NOT NULL,
        first_missing DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (job, target, item_id)
    );
    CREATE TABLE ledger (
        job TEXT NOT NULL,
        target TEXT NOT NULL,
        item_id TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (job, target, item_id)
    );
    """,
    # 2: the per-catalog rate budgets shared by replicas (ratelimit.BudgetState as JSON).
    """
    CREATE TABLE budgets (
        key TEXT PRIMARY KEY,
        state TEXT NOT NULL
    );
    """,
    # 3: backups of deleted items, reachable from any replica (gzipped JSON lines).
    """
    CREATE TABLE backups (
        job TEXT NOT NULL,
        run_id TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        records INTEGER NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (job, run_id)
    );
    """,
    # 4: the plan-signing key of the state (saved plans verify on any replica).
    """
    CREATE TABLE plan_key (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key TEXT NOT NULL
    );
    """,
    # 5: the grace clock, the claims of jobs on a catalog, and spent saved plans (as in
    # journal.py's migration 5).
    """
    CREATE TABLE grace_clock (
        job TEXT NOT NULL,
        target TEXT NOT NULL,
        reading DOUBLE PRECISION NOT NULL,
        wall DOUBLE PRECISION NOT NULL,
        boot_id TEXT NOT NULL,
        uptime DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (job, target)
    );
    CREATE TABLE claims (
        target TEXT NOT NULL,
        job TEXT NOT NULL,
        source TEXT NOT NULL,
        config TEXT NOT NULL,
        scope TEXT NOT NULL,
        last_run DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (target, job, source)
    );
    CREATE TABLE spent_plans (
        plan_run TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        spent_at DOUBLE PRECISION NOT NULL
    );
    """,
)

class LeaseLost(EnvironmentProblem):
    """This replica's lease on the job is gone (its session dropped): it must send nothing."""


Fence = Callable[[psycopg.Connection[Any]], bool]


class PostgresStore(SqlStore):
    """The journal's public methods over a small psycopg connection pool."""

    RUN_ORDER = "seq"

    def __init__(self, dsn: str, *, fence: Fence | None = None, pool_size: int = 4) -> None:
        self.dsn = dsn
        self.path = redact_dsn(dsn)  # what messages name (the SQLite journal names its file)
        self._fence = fence
        try:
            self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                dsn, min_size=1, max_size=pool_size, open=True, timeout=30,
                kwargs={"autocommit": True},
            )
            self._pool.wait(timeout=30)
            self._migrate()
        except (psycopg.Error, Exception) as exc:
            if hasattr(self, "_pool"):
                self._pool.close()
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{self.path}: cannot open the journal: "
                              f"{redact_dsn(str(exc)).strip()}") from None

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as conn:
            yield conn

    def _fenced(self, conn: psycopg.Connection[Any]) -> None:
        if self._fence is not None and not self._fence(conn):
            raise LeaseLost("this replica lost its lease on the job (its PostgreSQL session "
                            "ended); it sends nothing more, another replica finishes the plan")

    # -- schema --------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                         " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            version = int(row[0]) if row else 0
            if version > len(MIGRATIONS):
                raise ConfigError(
                    f"{self.path}: cannot open the journal: schema version {version} is newer "
                    f"than this program knows ({len(MIGRATIONS)}); upgrade catalog-reconciler"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                conn.execute(script)  # several statements: the simple query protocol
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))

    def signing_key(self) -> bytes:
        """The state's plan-signing key, made (random) by the first replica that asks."""
        with self._transaction() as conn:
            conn.execute("INSERT INTO plan_key (id, key) VALUES (1, %s) ON CONFLICT DO NOTHING",
                         (secrets.token_hex(32),))
            row = conn.execute("SELECT key FROM plan_key WHERE id = 1").fetchone()
        assert row is not None
        return str(row[0]).encode("ascii")

    # -- the primitives of SqlStore ------------------------------------------------------

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read() as conn:
            return conn.execute(_pg(sql), tuple(args)).fetchall()

    @contextmanager
    def _writing(self) -> Iterator[Writer]:
        with self._transaction() as conn, conn.cursor() as cur:
            yield _PgWriter(cur)

    # -- items: bulk writes with COPY and arrays, fenced -------------------------------

    def store_plan(
        self, run_id: str, to_delete: Iterable[str], skipped: Iterable[tuple[str, str]]
    ) -> None:
        """The whole plan, in one transaction (COPY), before the first delete."""
        with (self._transaction() as conn, conn.cursor() as cur,
              cur.copy("COPY items (plan_run, item_id, state, detail) FROM STDIN") as copy):
            for item_id in to_delete:
                copy.write_row((run_id, item_id, ItemState.PLANNED, ""))
            for item_id, reason in skipped:
                copy.write_row((run_id, item_id, ItemState.SKIPPED, reason))

    def mark_sent(self, run_id: str, plan_run: str, seq: int, ids: Sequence[str],
                  now: float) -> None:
        """Record the batch and mark its items sent, before the request goes out (fenced)."""
        with self._transaction() as conn:
            self._fenced(conn)
            conn.execute(
                "INSERT INTO batches (run_id, seq, plan_run, size, state, sent_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (run_id, seq, plan_run, len(ids), ItemState.SENT, now),
            )
            conn.execute(
                "UPDATE items SET state = %s, batch = %s, sends = sends + 1"
                " WHERE plan_run = %s AND item_id = ANY(%s)",
                (ItemState.SENT, seq, plan_run, list(ids)),
            )

    def record_outcomes(
        self, run_id: str, plan_run: str, seq: int | None,
        outcomes: Sequence[tuple[str, str, str]], now: float,
    ) -> None:
        queued = [item_id for item_id, state, _ in outcomes if state == ItemState.QUEUED]
        others = [o for o in outcomes if o[1] != ItemState.QUEUED]
        with self._transaction() as conn, conn.cursor() as cur:
            if queued:
                cur.execute(
                    "UPDATE items SET state = %s, detail = '', queued_at = %s"
                    " WHERE plan_run = %s AND item_id = ANY(%s)",
                    (ItemState.QUEUED, now, plan_run, queued),
                )
            if others:
                cur.executemany(
                    "UPDATE items SET state = %s, detail = %s WHERE plan_run = %s"
                    " AND item_id = %s",
                    [(state, detail, plan_run, item_id) for item_id, state, detail in others],
                )
            if seq is not None:
                cur.execute(
                    "UPDATE batches SET state = 'answered', answered_at = %s"
                    " WHERE run_id = %s AND seq = %s", (now, run_id, seq),
                )

    def replace_absences(self, job: str, target: str,
                         absences: dict[str, tuple[int, float]]) -> None:
        with self._transaction() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM absences WHERE job = %s AND target = %s", (job, target))
            with cur.copy("COPY absences (job, target, item_id, runs, first_missing)"
                          " FROM STDIN") as copy:
                for item_id, (runs, first) in absences.items():
                    copy.write_row((job, target, item_id, runs, first))

    def update_ledger(self, job: str, target: str, seen: Iterable[str],
                      gone: Iterable[str]) -> None:
        with self._transaction() as conn, conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS ledger_seen (item_id TEXT COLLATE \"C\")"
                        " ON COMMIT DELETE ROWS")
            with cur.copy("COPY ledger_seen (item_id) FROM STDIN") as copy:
                for item_id in seen:
                    copy.write_row((item_id,))
            cur.execute("INSERT INTO ledger (job, target, item_id) SELECT DISTINCT %s, %s,"
                        " item_id FROM ledger_seen ON CONFLICT DO NOTHING", (job, target))
            cur.execute("DELETE FROM ledger WHERE job = %s AND target = %s"
                        " AND item_id = ANY(%s)", (job, target, list(gone)))

    def last_source_ids(self, job: str, target: str) -> int | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT (summary::jsonb ->> 'source_ids')::numeric FROM runs WHERE job = %s"
                " AND target = %s AND NOT dry_run AND status = %s"
                " AND jsonb_typeof(summary::jsonb -> 'source_ids') = 'number'"
                " AND (summary::jsonb ->> 'source_ids')::numeric > 0"
                " ORDER BY seq DESC LIMIT 1", (job, target, RunStatus.FINISHED),
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else None


class _PgWriter:
    """A cursor that takes the shared statements' ``?`` placeholders."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(_pg(sql), tuple(args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        return self._cursor.executemany(_pg(sql), list(rows))


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")
