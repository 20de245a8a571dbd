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

import json
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from reconciler.core.errors import ConfigError, EnvironmentProblem
from reconciler.core.gracetime import GraceMark
from reconciler.store.base import Claim, ItemRow, RunRow
from reconciler.store.journal import (
    CRASHED,
    FINISHED,
    QUEUED,
    RESENDABLE,
    RUNNING,
    SENT,
    SKIPPED,
    STOPPED,
    _alive,
)

PLANNED = "planned"
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

_RUN_COLUMNS = ("run_id, job, dry_run, status, started_at, finished_at, resumed_from,"
                " exit_code, summary, host, pid")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*(@)")
_PASSWORD_KV = re.compile(r"(password\s*=\s*)(\S+)", re.IGNORECASE)


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for logs and messages."""
    return _PASSWORD_KV.sub(r"\1***", _PASSWORD.sub(r"\1***\2", dsn))


def replica_name() -> str:
    """Which replica: ``hostname:pid`` (history and /metrics show it)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LeaseLost(EnvironmentProblem):
    """This replica's lease on the job is gone (its session dropped): it must send nothing."""


Fence = Callable[[psycopg.Connection[Any]], bool]


class PostgresStore:
    """The journal's public methods over a small psycopg connection pool."""

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

    # -- runs ----------------------------------------------------------------------------

    def start_run(
        self, run_id: str, job: str, dry_run: bool, started_at: str,
        resumed_from: str | None = None, *, target: str | None,
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO runs (run_id, job, dry_run, status, started_at, resumed_from, pid,"
                " host, target) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (run_id, job, dry_run, RUNNING, started_at, resumed_from, os.getpid(),
                 socket.gethostname(), target),
            )

    def last_target(self, job: str, before: str) -> tuple[bool, str | None]:
        with self._read() as conn:
            row = conn.execute(
                "SELECT target FROM runs WHERE job = %s AND run_id != %s ORDER BY seq DESC"
                " LIMIT 1", (job, before),
            ).fetchone()
        return (False, None) if row is None else (True, row[0])

    def finish_run(
        self, run_id: str, status: str, exit_code: int, finished_at: str, summary: dict[str, Any]
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = %s, exit_code = %s, finished_at = %s, summary = %s"
                " WHERE run_id = %s",
                (status, exit_code, finished_at, json.dumps(summary, ensure_ascii=False), run_id),
            )

    def set_status(self, run_id: str, status: str) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE runs SET status = %s WHERE run_id = %s", (status, run_id))

    def run(self, run_id: str) -> RunRow | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = %s",
                               (run_id,)).fetchone()
        return _run_row(row) if row else None

    def runs(self, job: str | None = None, limit: int = 50) -> list[RunRow]:
        """Newest first, in the order the runs started."""
        where, args = ("WHERE job = %s", (job,)) if job else ("", ())
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY seq DESC LIMIT {int(limit)}",
                args,
            ).fetchall()
        return [_run_row(r) for r in rows]

    def mark_crashed(self, job: str | None = None, *, holding_lock: bool = False) -> list[str]:
        """As ``Journal.mark_crashed``: with the job's lease held every ``running`` row of it
        is dead; otherwise only rows of this host whose pid is gone (rows of other replicas
        are left to the replica that next takes their job's lease)."""
        where, args = ("AND job = %s", (job,)) if job else ("", ())
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT run_id, pid, host FROM runs WHERE status = %s {where} ORDER BY seq",
                (RUNNING, *args),
            ).fetchall()
        host = socket.gethostname()
        dead = [run_id for run_id, pid, run_host in rows
                if holding_lock or (run_host == host and not _alive(pid))]
        if dead:
            with self._transaction() as conn, conn.cursor() as cur:
                cur.executemany("UPDATE runs SET status = %s WHERE run_id = %s AND status = %s",
                                [(CRASHED, run_id, RUNNING) for run_id in dead])
        return dead

    def interrupted_run(self, job: str, target: str) -> RunRow | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs r WHERE job = %s AND target = %s"
                " AND NOT dry_run AND status = ANY(%s) AND EXISTS (SELECT 1 FROM items i"
                " WHERE i.plan_run = r.run_id AND i.state = ANY(%s)) ORDER BY seq DESC LIMIT 1",
                (job, target, [RUNNING, STOPPED, CRASHED], list(RESENDABLE)),
            ).fetchone()
        return _run_row(row) if row else None

    # -- items ---------------------------------------------------------------------------

    def store_plan(
        self, run_id: str, to_delete: Iterable[str], skipped: Iterable[tuple[str, str]]
    ) -> None:
        """The whole plan, in one transaction (COPY), before the first delete."""
        with (self._transaction() as conn, conn.cursor() as cur,
              cur.copy("COPY items (plan_run, item_id, state, detail) FROM STDIN") as copy):
            for item_id in to_delete:
                copy.write_row((run_id, item_id, PLANNED, ""))
            for item_id, reason in skipped:
                copy.write_row((run_id, item_id, SKIPPED, reason))

    def mark_sent(self, run_id: str, plan_run: str, seq: int, ids: Sequence[str],
                  now: float) -> None:
        """Record the batch and mark its items sent, before the request goes out (fenced)."""
        with self._transaction() as conn:
            self._fenced(conn)
            conn.execute(
                "INSERT INTO batches (run_id, seq, plan_run, size, state, sent_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (run_id, seq, plan_run, len(ids), SENT, now),
            )
            conn.execute(
                "UPDATE items SET state = %s, batch = %s, sends = sends + 1"
                " WHERE plan_run = %s AND item_id = ANY(%s)",
                (SENT, seq, plan_run, list(ids)),
            )

    def record_outcomes(
        self, run_id: str, plan_run: str, seq: int | None,
        outcomes: Sequence[tuple[str, str, str]], now: float,
    ) -> None:
        queued = [item_id for item_id, state, _ in outcomes if state == QUEUED]
        others = [o for o in outcomes if o[1] != QUEUED]
        with self._transaction() as conn, conn.cursor() as cur:
            if queued:
                cur.execute(
                    "UPDATE items SET state = %s, detail = '', queued_at = %s"
                    " WHERE plan_run = %s AND item_id = ANY(%s)",
                    (QUEUED, now, plan_run, queued),
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

    def resendable(self, plan_run: str) -> list[ItemRow]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT item_id, state, detail, sends FROM items WHERE plan_run = %s"
                " AND state = ANY(%s) ORDER BY item_id", (plan_run, list(RESENDABLE)),
            ).fetchall()
        return [ItemRow(*r) for r in rows]

    def items(self, plan_run: str, state: str | None = None) -> list[ItemRow]:
        where, args = ("AND state = %s", (plan_run, state)) if state else ("", (plan_run,))
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT item_id, state, detail, sends FROM items WHERE plan_run = %s {where}"
                " ORDER BY item_id", args,
            ).fetchall()
        return [ItemRow(*r) for r in rows]

    def state_counts(self, plan_run: str) -> dict[str, int]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT state, COUNT(*) FROM items WHERE plan_run = %s GROUP BY state",
                (plan_run,),
            ).fetchall()
        return {state: int(count) for state, count in rows}

    def next_batch_seq(self, plan_run: str) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT MAX(batch) FROM items WHERE plan_run = %s",
                               (plan_run,)).fetchone()
        return int(row[0] or 0) + 1 if row else 1

    def queued_before(self, job: str, run_id: str,
                      target: str) -> list[tuple[str, str, float, int]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT i.plan_run, i.item_id, i.queued_at, i.sends FROM items i"
                " WHERE i.state IN ('queued', 'still_present') AND i.plan_run != %s"
                " AND i.plan_run IN (SELECT run_id FROM runs WHERE job = %s AND target = %s)",
                (run_id, job, target),
            ).fetchall()
        return [(a, b, float(c or 0), int(d)) for a, b, c, d in rows]

    def absences(self, job: str, target: str) -> dict[str, tuple[int, float]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT item_id, runs, first_missing FROM absences WHERE job = %s"
                " AND target = %s", (job, target),
            ).fetchall()
        return {item_id: (int(runs), float(first)) for item_id, runs, first in rows}

    def replace_absences(self, job: str, target: str,
                         absences: dict[str, tuple[int, float]]) -> None:
        with self._transaction() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM absences WHERE job = %s AND target = %s", (job, target))
            with cur.copy("COPY absences (job, target, item_id, runs, first_missing)"
                          " FROM STDIN") as copy:
                for item_id, (runs, first) in absences.items():
                    copy.write_row((job, target, item_id, runs, first))

    def ledger(self, job: str, target: str) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT item_id FROM ledger WHERE job = %s AND target = %s ORDER BY item_id",
                (job, target)).fetchall()
        return [r[0] for r in rows]

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
                " ORDER BY seq DESC LIMIT 1", (job, target, FINISHED),
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def grace_mark(self, job: str, target: str) -> GraceMark | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT reading, wall, boot_id, uptime FROM grace_clock WHERE job = %s"
                " AND target = %s", (job, target)).fetchone()
        return GraceMark(float(row[0]), float(row[1]), str(row[2]), float(row[3])) \
            if row else None

    def set_grace_mark(self, job: str, target: str, mark: GraceMark) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO grace_clock VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (job, target) DO UPDATE SET reading = EXCLUDED.reading,"
                " wall = EXCLUDED.wall, boot_id = EXCLUDED.boot_id, uptime = EXCLUDED.uptime",
                (job, target, mark.reading, mark.wall, mark.boot_id, mark.uptime))

    def claim(self, target: str, claim: Claim) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO claims VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (target, job, source) DO UPDATE SET config = EXCLUDED.config,"
                " scope = EXCLUDED.scope, last_run = EXCLUDED.last_run",
                (target, claim.job, claim.source, claim.config,
                 json.dumps(list(claim.scope)), claim.last_run))

    def claims(self, target: str) -> list[Claim]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT job, source, config, scope, last_run FROM claims WHERE target = %s"
                " ORDER BY job, source", (target,)).fetchall()
        return [Claim(job, source, config, tuple(json.loads(scope)), float(last))
                for job, source, config, scope, last in rows]

    def spend_plan(self, plan_run: str, run_id: str, at: float) -> str | None:
        with self._transaction() as conn:
            row = conn.execute(
                "INSERT INTO spent_plans VALUES (%s, %s, %s) ON CONFLICT (plan_run) DO NOTHING"
                " RETURNING run_id", (plan_run, run_id, at)).fetchone()
            if row is not None:
                return None
            earlier = conn.execute("SELECT run_id FROM spent_plans WHERE plan_run = %s",
                                   (plan_run,)).fetchone()
        return str(earlier[0]) if earlier else None

    def plan_spent_by(self, plan_run: str) -> str | None:
        with self._read() as conn:
            row = conn.execute("SELECT run_id FROM spent_plans WHERE plan_run = %s",
                               (plan_run,)).fetchone()
        return str(row[0]) if row else None

    def queued_since(self, since: float, target: str) -> int:
        with self._read() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM items WHERE queued_at >= %s AND plan_run IN"
                " (SELECT run_id FROM runs WHERE target = %s)",
                (since, target),
            ).fetchone()
        return int(row[0]) if row else 0

    def mark_verified(self, updates: Iterable[tuple[str, str, str, str]]) -> None:
        rows = [(state, detail, plan_run, item_id)
                for plan_run, item_id, state, detail in updates]
        if not rows:
            return
        with self._transaction() as conn, conn.cursor() as cur:
            cur.executemany(
                "UPDATE items SET state = %s, detail = %s WHERE plan_run = %s AND item_id = %s",
                rows,
            )


def _run_row(row: tuple[Any, ...]) -> RunRow:
    run_id, job, dry_run, status, started, finished, resumed, code, summary, host, pid = row
    return RunRow(run_id, job, bool(dry_run), status, started, finished, resumed, code,
                  json.loads(summary or "{}"), f"{host}:{pid}" if host else "")
