"""The queries both stores share, written once in the SQL that SQLite and PostgreSQL both speak.

``Journal`` (SQLite) and ``PostgresStore`` differ where their engines do: opening and
migrating, bulk writes (``executemany`` vs ``COPY``), the range updates SQLite's ordered
primary key allows, fencing a replica, JSON in a column. Everything else (the run rows,
reading items, grace, the ledger, claims, spent plans) is here, once, over three
primitives each store provides: ``_rows`` and ``_one`` (a read) and ``_writing`` (one
transaction). The SQL uses ``?`` placeholders; the PostgreSQL store turns them into
``%s``, so no shared statement may hold a literal ``?`` or ``%``.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from reconciler.core.gracetime import GraceMark
from reconciler.core.ownership import Claim
from reconciler.core.states import ItemState, RunStatus
from reconciler.store.base import ItemRow, RunRow

RESENDABLE = (ItemState.PLANNED, ItemState.SENT, ItemState.UNKNOWN)
RECENT_RUNS = 50  # how far back the newest export a run read is looked for
RUN_COLUMNS = ("run_id, job, dry_run, status, started_at, finished_at, resumed_from,"
               " exit_code, summary, host, pid")


class Writer(Protocol):
    """One transaction's statements (``?`` placeholders)."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...


class SqlStore:
    """The shared half of the ``Store`` protocol (see journal.py for the semantics)."""

    # The column that orders runs as they started (timestamps tie within a second).
    RUN_ORDER = "rowid"
    # A hint that makes the verify query read only the rows still to verify.
    TO_VERIFY_HINT = ""

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._rows(sql, args)
        return rows[0] if rows else None

    def _writing(self) -> AbstractContextManager[Writer]:
        raise NotImplementedError

    # -- runs ----------------------------------------------------------------------------

    def start_run(
        self, run_id: str, job: str, dry_run: bool, started_at: str,
        resumed_from: str | None = None, *, target: str | None,
    ) -> None:
        with self._writing() as db:
            db.execute(
                "INSERT INTO runs (run_id, job, dry_run, status, started_at, resumed_from, pid,"
                " host, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, job, dry_run, RunStatus.RUNNING, started_at, resumed_from,
                 os.getpid(), socket.gethostname(), target),
            )

    def last_target(self, job: str, before: str) -> tuple[bool, str | None]:
        """(whether ``job`` ran before ``before``, the target fingerprint of its newest
        such run: None for runs recorded before fingerprints existed)."""
        row = self._one(f"SELECT target FROM runs WHERE job = ? AND run_id != ?"
                        f" ORDER BY {self.RUN_ORDER} DESC LIMIT 1", (job, before))
        return (False, None) if row is None else (True, row[0])

    def finish_run(
        self, run_id: str, status: str, exit_code: int, finished_at: str, summary: dict[str, Any]
    ) -> None:
        with self._writing() as db:
            db.execute(
                "UPDATE runs SET status = ?, exit_code = ?, finished_at = ?, summary = ?"
                " WHERE run_id = ?",
                (status, exit_code, finished_at, json.dumps(summary, ensure_ascii=False), run_id),
            )

    def set_status(self, run_id: str, status: str) -> None:
        with self._writing() as db:
            db.execute("UPDATE runs SET status = ? WHERE run_id = ?", (status, run_id))

    def run(self, run_id: str) -> RunRow | None:
        row = self._one(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return run_row(row) if row else None

    def runs(self, job: str | None = None, limit: int = 50) -> list[RunRow]:
        """Newest first, in the order the runs started."""
        where, args = ("WHERE job = ?", (job,)) if job else ("", ())
        rows = self._rows(f"SELECT {RUN_COLUMNS} FROM runs {where}"
                          f" ORDER BY {self.RUN_ORDER} DESC LIMIT {int(limit)}", args)
        return [run_row(r) for r in rows]

    def mark_crashed(self, job: str | None = None, *, holding_lock: bool = False) -> list[str]:
        """Mark ``running`` rows whose process is gone as ``crashed``; their ids.

        With the job's lock (or lease) held no other process can be running the job, so
        every ``running`` row of it is dead. Otherwise only rows of this host whose pid no
        longer exists are (a pid may be reused, so such a row may stay ``running`` until its
        job runs again; rows of other replicas are left to the one that next takes the job).
        """
        where, args = ("AND job = ?", (job,)) if job else ("", ())
        rows = self._rows(f"SELECT run_id, pid, host FROM runs WHERE status = ? {where}"
                          f" ORDER BY {self.RUN_ORDER}", (RunStatus.RUNNING, *args))
        host = socket.gethostname()
        dead = [run_id for run_id, pid, run_host in rows
                if holding_lock or (run_host == host and not pid_alive(pid))]
        if dead:
            with self._writing() as db:
                db.executemany(
                    "UPDATE runs SET status = ? WHERE run_id = ? AND status = ?",
                    [(RunStatus.CRASHED, run_id, RunStatus.RUNNING) for run_id in dead])
        return dead

    def interrupted_run(self, job: str, target: str) -> RunRow | None:
        """The newest real run of ``job`` on ``target`` whose stored plan still has
        resendable items (a plan made for another catalog is never resumed)."""
        row = self._one(
            f"SELECT {RUN_COLUMNS} FROM runs r WHERE job = ? AND target = ? AND dry_run = ?"
            f" AND status IN (?, ?, ?) AND EXISTS (SELECT 1 FROM items i WHERE"
            f" i.plan_run = r.run_id AND i.state IN ({_marks(RESENDABLE)}))"
            f" ORDER BY {self.RUN_ORDER} DESC LIMIT 1",
            (job, target, False, RunStatus.RUNNING, RunStatus.STOPPED, RunStatus.CRASHED,
             *RESENDABLE),
        )
        return run_row(row) if row else None

    # -- items ---------------------------------------------------------------------------

    def resendable(self, plan_run: str) -> list[ItemRow]:
        rows = self._rows(
            f"SELECT item_id, state, detail, sends FROM items WHERE plan_run = ?"
            f" AND state IN ({_marks(RESENDABLE)}) ORDER BY item_id", (plan_run, *RESENDABLE))
        return [ItemRow(*r) for r in rows]

    def items(self, plan_run: str, state: str | None = None) -> list[ItemRow]:
        where, args = ("AND state = ?", (plan_run, state)) if state else ("", (plan_run,))
        rows = self._rows(f"SELECT item_id, state, detail, sends FROM items WHERE plan_run = ?"
                          f" {where} ORDER BY item_id", args)
        return [ItemRow(*r) for r in rows]

    def state_counts(self, plan_run: str) -> dict[str, int]:
        rows = self._rows("SELECT state, COUNT(*) FROM items WHERE plan_run = ? GROUP BY state",
                          (plan_run,))
        return {state: int(count) for state, count in rows}

    def next_batch_seq(self, plan_run: str) -> int:
        """Batch numbers stay unique within a plan across the runs that work it."""
        row = self._one("SELECT MAX(batch) FROM items WHERE plan_run = ?", (plan_run,))
        return int(row[0] or 0) + 1 if row else 1

    def queued_before(self, job: str, run_id: str,
                      target: str) -> list[tuple[str, str, float, int]]:
        """(plan_run, item_id, queued_at, sends) of ids queued by earlier runs, not yet verified."""
        rows = self._rows(
            f"SELECT i.plan_run, i.item_id, i.queued_at, i.sends FROM items i"
            # Literal states: SQLite's partial index is only usable when the query's WHERE
            # visibly implies the index's.
            f"{self.TO_VERIFY_HINT} WHERE i.state IN ('queued', 'still_present')"
            f" AND i.plan_run != ?"
            f" AND i.plan_run IN (SELECT run_id FROM runs WHERE job = ? AND target = ?)",
            (run_id, job, target),
        )
        return [(a, b, float(c or 0), int(d)) for a, b, c, d in rows]

    def queued_since(self, since: float, target: str) -> int:
        """Ids the server queued for deletion on ``target`` at or after ``since`` (epoch),
        by any job: the daily total belongs to the catalog, so a renamed job or a second
        config on the same catalog does not get a fresh budget."""
        row = self._one("SELECT COUNT(*) FROM items WHERE queued_at >= ? AND plan_run IN"
                        " (SELECT run_id FROM runs WHERE target = ?)", (since, target))
        return int(row[0]) if row else 0

    def queued_ids_since(self, since: float, target: str) -> list[str]:
        """The ids ``queued_since`` counts (a scoped job counts those in its scope)."""
        rows = self._rows("SELECT item_id FROM items WHERE queued_at >= ? AND plan_run IN"
                          " (SELECT run_id FROM runs WHERE target = ?)", (since, target))
        return [str(r[0]) for r in rows]

    def mark_verified(self, updates: Iterable[tuple[str, str, str, str]]) -> None:
        """(plan_run, item_id, state, detail) for read-back results."""
        rows = [(state, detail, plan_run, item_id)
                for plan_run, item_id, state, detail in updates]
        if rows:
            with self._writing() as db:
                db.executemany("UPDATE items SET state = ?, detail = ? WHERE plan_run = ?"
                               " AND item_id = ?", rows)

    def last_source_mtime(self, job: str, target: str) -> float | None:
        rows = self._rows(
            f"SELECT summary FROM runs WHERE job = ? AND target = ? AND dry_run = ?"
            f" AND status = ? ORDER BY {self.RUN_ORDER} DESC LIMIT {RECENT_RUNS}",
            (job, target, False, RunStatus.FINISHED))
        for (text,) in rows:  # an apply or a resume reads no export: the newest that did
            mtime = (json.loads(text or "{}").get("source") or {}).get("mtime")
            if isinstance(mtime, int | float) and not isinstance(mtime, bool):
                return float(mtime)
        return None

    # -- grace and the ledger ------------------------------------------------------------

    def absences(self, job: str, target: str) -> dict[str, tuple[int, float]]:
        rows = self._rows("SELECT item_id, runs, first_missing FROM absences WHERE job = ?"
                          " AND target = ?", (job, target))
        return {item_id: (int(runs), float(first)) for item_id, runs, first in rows}

    def grace_mark(self, job: str, target: str) -> GraceMark | None:
        row = self._one("SELECT reading, wall, boot_id, uptime FROM grace_clock WHERE job = ?"
                        " AND target = ?", (job, target))
        return GraceMark(float(row[0]), float(row[1]), str(row[2]), float(row[3])) \
            if row else None

    def set_grace_mark(self, job: str, target: str, mark: GraceMark) -> None:
        with self._writing() as db:
            db.execute(
                "INSERT INTO grace_clock (job, target, reading, wall, boot_id, uptime)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job, target) DO UPDATE SET"
                " reading = excluded.reading, wall = excluded.wall,"
                " boot_id = excluded.boot_id, uptime = excluded.uptime",
                (job, target, mark.reading, mark.wall, mark.boot_id, mark.uptime))

    def ledger(self, job: str, target: str) -> list[str]:
        rows = self._rows("SELECT item_id FROM ledger WHERE job = ? AND target = ?"
                          " ORDER BY item_id", (job, target))
        return [r[0] for r in rows]

    # -- claims and spent plans ----------------------------------------------------------

    def claim(self, target: str, claim: Claim) -> None:
        with self._writing() as db:
            db.execute(
                "INSERT INTO claims (target, job, source, config, scope, last_run)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (target, job, source) DO UPDATE SET"
                " config = excluded.config, scope = excluded.scope,"
                " last_run = excluded.last_run",
                (target, claim.job, claim.source, claim.config, json.dumps(list(claim.scope)),
                 claim.last_run))

    def claims(self, target: str) -> list[Claim]:
        rows = self._rows("SELECT job, source, config, scope, last_run FROM claims"
                          " WHERE target = ? ORDER BY job, source", (target,))
        return [Claim(job, source, config, tuple(json.loads(scope)), float(last))
                for job, source, config, scope, last in rows]

    def spend_plan(self, plan_run: str, run_id: str, at: float) -> str | None:
        with self._writing() as db:
            db.execute("INSERT INTO spent_plans (plan_run, run_id, spent_at) VALUES (?, ?, ?)"
                       " ON CONFLICT (plan_run) DO NOTHING", (plan_run, run_id, at))
        spent_by = self.plan_spent_by(plan_run)
        return None if spent_by == run_id else spent_by

    def plan_spent_by(self, plan_run: str) -> str | None:
        row = self._one("SELECT run_id FROM spent_plans WHERE plan_run = ?", (plan_run,))
        return str(row[0]) if row else None


def run_row(row: Sequence[Any]) -> RunRow:
    run_id, job, dry_run, status, started, finished, resumed, code, summary, host, pid = row
    return RunRow(run_id, job, bool(dry_run), status, started, finished, resumed, code,
                  json.loads(summary or "{}"), f"{host}:{pid}" if host else "")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))
