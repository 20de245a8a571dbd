"""The durable journal: runs and per-item state in SQLite (WAL), so nothing is lost on a crash.

Item states, and the one order they move in::

    planned ──► sent ──► queued ──► verified_gone | still_present
                  │  ├─► failed
                  │  └─► unknown ──► (resent) sent ...
                  └─ (crash: resent by the next run)
    skipped                (never sent: unaddressable, empty, too long, back in the source)

The plan is stored whole before the first delete. A batch is recorded, and its items
marked ``sent``, in one transaction *before* the request goes out; outcomes are written
when the answer is in. A process killed at any point therefore leaves every item either
answered or resendable, and resending a bulk delete of an already deleted id is harmless.

Items belong to the run that planned them (``plan_run``); a run that resumes an
interrupted one works the same rows and records ``resumed_from``.

Every run, absence record and ledger row carries the fingerprint of the target it was
made for (see fingerprint.py), and every query that feeds a delete asks for one
fingerprint: a repointed job finds no plan to resume, no grace, no shrink baseline and no
daily total of the old catalog. Rows from before the fingerprint existed have none, so
they never match (fail safe: the job starts fresh once).
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

from reconciler.core.errors import ConfigError
from reconciler.core.states import ItemState, RunStatus
from reconciler.store.sql import RESENDABLE, SqlStore, Writer

# The state names live in core/states.py; these aliases keep the journal's vocabulary.
PLANNED = ItemState.PLANNED
SENT = ItemState.SENT
QUEUED = ItemState.QUEUED
FAILED = ItemState.FAILED
UNKNOWN = ItemState.UNKNOWN
SKIPPED = ItemState.SKIPPED
VERIFIED_GONE = ItemState.VERIFIED_GONE
STILL_PRESENT = ItemState.STILL_PRESENT
__all__ = ["JOURNAL_NAME", "RESENDABLE", "Journal"]

RUNNING = RunStatus.RUNNING
FINISHED = RunStatus.FINISHED
STOPPED = RunStatus.STOPPED
REFUSED = RunStatus.REFUSED
FAILED_RUN = RunStatus.FAILED
DRY = RunStatus.DRY
RESUMED = RunStatus.RESUMED
CRASHED = RunStatus.CRASHED

JOURNAL_NAME = "journal.sqlite3"

_MIGRATIONS: tuple[str, ...] = (
    # 1: runs, items, batches.
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        dry_run INTEGER NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        resumed_from TEXT,
        exit_code INTEGER,
        pid INTEGER,
        host TEXT,
        summary TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX runs_by_job ON runs (job, started_at);
    CREATE TABLE items (
        plan_run TEXT NOT NULL REFERENCES runs (run_id),
        item_id TEXT NOT NULL,
        state TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        batch INTEGER,
        sends INTEGER NOT NULL DEFAULT 0,
        queued_at REAL,
        PRIMARY KEY (plan_run, item_id)
    ) WITHOUT ROWID;
    CREATE INDEX items_to_verify ON items (plan_run)
        WHERE state IN ('queued', 'still_present');
    CREATE TABLE batches (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        seq INTEGER NOT NULL,
        plan_run TEXT NOT NULL,
        size INTEGER NOT NULL,
        state TEXT NOT NULL,
        sent_at REAL NOT NULL,
        answered_at REAL,
        PRIMARY KEY (run_id, seq)
    );
    """,
    # 2: grace: how many consecutive real runs found an id missing from the source.
    """
    CREATE TABLE absences (
        job TEXT NOT NULL,
        item_id TEXT NOT NULL,
        runs INTEGER NOT NULL,
        first_missing REAL NOT NULL,
        PRIMARY KEY (job, item_id)
    ) WITHOUT ROWID;
    """,
    # 3: the ledger: ids seen in a job's source exports and not deleted since, the
    # inventory of catalogs that cannot be listed (inventory = "ledger").
    """
    CREATE TABLE ledger (
        job TEXT NOT NULL,
        item_id TEXT NOT NULL,
        PRIMARY KEY (job, item_id)
    ) WITHOUT ROWID;
    """,
    # 4: state bound to the target: runs, absences and the ledger carry the fingerprint
    # of the catalog they were made for; older rows get none ('' / NULL) and never match.
    """
    ALTER TABLE runs ADD COLUMN target TEXT;
    CREATE INDEX runs_by_job_target ON runs (job, target);
    CREATE TABLE absences_v4 (
        job TEXT NOT NULL,
        target TEXT NOT NULL,
        item_id TEXT NOT NULL,
        runs INTEGER NOT NULL,
        first_missing REAL NOT NULL,
        PRIMARY KEY (job, target, item_id)
    ) WITHOUT ROWID;
    INSERT INTO absences_v4 SELECT job, '', item_id, runs, first_missing FROM absences;
    DROP TABLE absences;
    ALTER TABLE absences_v4 RENAME TO absences;
    CREATE TABLE ledger_v4 (
        job TEXT NOT NULL,
        target TEXT NOT NULL,
        item_id TEXT NOT NULL,
        PRIMARY KEY (job, target, item_id)
    ) WITHOUT ROWID;
    INSERT INTO ledger_v4 SELECT job, '', item_id FROM ledger;
    DROP TABLE ledger;
    ALTER TABLE ledger_v4 RENAME TO ledger;
    """,
    # 5: the grace clock (gracetime.py), the claims of jobs on a catalog (ownership across
    # configs sharing this state), and saved plans already applied (single use).
    """
    CREATE TABLE grace_clock (
        job TEXT NOT NULL,
        target TEXT NOT NULL,
        reading REAL NOT NULL,
        wall REAL NOT NULL,
        boot_id TEXT NOT NULL,
        uptime REAL NOT NULL,
        PRIMARY KEY (job, target)
    );
    CREATE TABLE claims (
        target TEXT NOT NULL,
        job TEXT NOT NULL,
        source TEXT NOT NULL,
        config TEXT NOT NULL,
        scope TEXT NOT NULL,
        last_run REAL NOT NULL,
        PRIMARY KEY (target, job, source)
    );
    CREATE TABLE spent_plans (
        plan_run TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        spent_at REAL NOT NULL
    );
    """,
)


class Journal(SqlStore):
    """One SQLite file per state_dir; safe to open from several processes (WAL, busy timeout)."""

    # Served by the partial index items_to_verify: only rows still to verify are read.
    TO_VERIFY_HINT = " INDEXED BY items_to_verify"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: tuple[int, int] | None = None  # (device, inode) once open
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{path}: cannot open the journal: {exc}") from None
        self._file = _file_identity(path)

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Journal:
        return cls(state_dir / JOURNAL_NAME)

    def close(self) -> None:
        self._db.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._transaction():
            version = self.schema_version
            if version > len(_MIGRATIONS):
                raise sqlite3.DatabaseError(
                    f"schema version {version} is newer than this program knows "
                    f"({len(_MIGRATIONS)}); upgrade catalog-reconciler"
                )
            for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number}")

    def _check_file(self) -> None:
        """Before each write: the journal is still the file this process opened. A journal
        deleted (or state_dir removed, or the file replaced) under a running process takes
        every write without an error, into a file nobody will read again: the run's record,
        the daily total and every plan to resume would be lost without a word."""
        if self._file is not None and _file_identity(self.path) != self._file:
            raise OSError(errno.ENOENT, "the journal was removed or replaced while this run "
                          "used it; nothing more was sent, and this run's report lists what "
                          "it deleted", str(self.path))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._check_file()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- the primitives of SqlStore ------------------------------------------------------

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, tuple(args)).fetchall()

    def _writing(self) -> AbstractContextManager[Writer]:
        return self._transaction()

    # -- items: bulk writes, with range updates over the ordered primary key -----------

    def store_plan(
        self, run_id: str, to_delete: Iterable[str], skipped: Iterable[tuple[str, str]]
    ) -> None:
        """The whole plan, in one transaction, before the first delete."""
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO items (plan_run, item_id, state) VALUES (?, ?, ?)",
                ((run_id, item_id, PLANNED) for item_id in to_delete),
            )
            db.executemany(
                "INSERT INTO items (plan_run, item_id, state, detail) VALUES (?, ?, ?, ?)",
                ((run_id, item_id, SKIPPED, reason) for item_id, reason in skipped),
            )

    def mark_sent(self, run_id: str, plan_run: str, seq: int, ids: Sequence[str],
                  now: float) -> None:
        """Record the batch and mark its items sent, before the request goes out.

        A batch is normally a contiguous run of the sorted resendable ids, so one range
        update over the primary key marks it; a count check proves the range holds exactly
        this batch's ids, and anything else falls back to one update per id.
        """
        marks = ",".join("?" * len(RESENDABLE))
        with self._transaction() as db:
            db.execute(
                "INSERT INTO batches (run_id, seq, plan_run, size, state, sent_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, seq, plan_run, len(ids), SENT, now),
            )
            if ids and self._is_contiguous(plan_run, ids):
                db.execute(
                    "UPDATE items SET state = ?, batch = ?, sends = sends + 1"
                    f" WHERE plan_run = ? AND item_id BETWEEN ? AND ? AND state IN ({marks})",
                    (SENT, seq, plan_run, ids[0], ids[-1], *RESENDABLE),
                )
                return
            db.executemany(
                "UPDATE items SET state = ?, batch = ?, sends = sends + 1"
                " WHERE plan_run = ? AND item_id = ?",
                ((SENT, seq, plan_run, item_id) for item_id in ids),
            )

    def _is_contiguous(self, plan_run: str, ids: Sequence[str]) -> bool:
        """Whether the resendable items from ids[0] to ids[-1] are exactly ``ids``."""
        if any(a >= b for a, b in pairwise(ids)):
            return False  # not strictly ascending (SQLite's BINARY order is code point order)
        marks = ",".join("?" * len(RESENDABLE))
        (count,) = self._db.execute(
            f"SELECT COUNT(*) FROM items WHERE plan_run = ? AND item_id BETWEEN ? AND ?"
            f" AND state IN ({marks})", (plan_run, ids[0], ids[-1], *RESENDABLE),
        ).fetchone()
        return int(count) == len(ids)

    def record_outcomes(
        self, run_id: str, plan_run: str, seq: int | None,
        outcomes: Sequence[tuple[str, str, str]], now: float,
    ) -> None:
        """Write (item_id, state, detail) outcomes, and close the batch when there is one.

        The common answer, every id of a batch queued, is one range update over the rows
        this batch marked sent; the other outcomes are then written one by one.
        """
        with self._transaction() as db:
            if seq is not None and outcomes:
                queued = sum(1 for _, state, _ in outcomes if state == QUEUED)
                if queued > len(outcomes) // 2:
                    first, last = outcomes[0][0], outcomes[-1][0]
                    cursor = db.execute(
                        "UPDATE items SET state = ?, detail = '', queued_at = ? WHERE"
                        " plan_run = ? AND item_id BETWEEN ? AND ? AND batch = ? AND state = ?",
                        (QUEUED, now, plan_run, min(first, last), max(first, last), seq, SENT),
                    )
                    if cursor.rowcount == len(outcomes):
                        outcomes = [o for o in outcomes if o[1] != QUEUED]
            db.executemany(
                "UPDATE items SET state = ?, detail = ?,"
                " queued_at = CASE WHEN ? = 'queued' THEN ? ELSE queued_at END"
                " WHERE plan_run = ? AND item_id = ?",
                ((state, detail, state, now, plan_run, item_id)
                 for item_id, state, detail in outcomes),
            )
            if seq is not None:
                db.execute(
                    "UPDATE batches SET state = 'answered', answered_at = ?"
                    " WHERE run_id = ? AND seq = ?", (now, run_id, seq),
                )

    def replace_absences(self, job: str, target: str,
                         absences: dict[str, tuple[int, float]]) -> None:
        """This run's view replaces the last: ids not missing now start from zero again."""
        with self._transaction() as db:
            db.execute("DELETE FROM absences WHERE job = ? AND target = ?", (job, target))
            db.executemany(
                "INSERT INTO absences (job, target, item_id, runs, first_missing)"
                " VALUES (?, ?, ?, ?, ?)",
                ((job, target, item_id, runs, first)
                 for item_id, (runs, first) in absences.items()),
            )

    def update_ledger(self, job: str, target: str, seen: Iterable[str],
                      gone: Iterable[str]) -> None:
        """Remember ids of this source export; forget ids the server queued for deletion."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO ledger (job, target, item_id) VALUES (?, ?, ?)",
                ((job, target, i) for i in seen))
            db.executemany("DELETE FROM ledger WHERE job = ? AND target = ? AND item_id = ?",
                           ((job, target, i) for i in gone))

    def last_source_ids(self, job: str, target: str) -> int | None:
        """Distinct source ids of the newest real run on ``target`` that finished (the
        shrink baseline)."""
        row = self._db.execute(
            "SELECT json_extract(summary, '$.source_ids') FROM runs WHERE job = ?"
            " AND target = ? AND dry_run = 0 AND status = ?"
            " AND json_extract(summary, '$.source_ids') > 0"
            " ORDER BY rowid DESC LIMIT 1", (job, target, FINISHED),
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino
