"""A job's lease across replicas: a PostgreSQL session advisory lock on its own connection.

The same interface as ``locks.JobLock``: ``acquire`` takes the lease or raises ``JobBusy``
at once (naming the replica that holds it), ``release`` gives it back. The lock belongs to
the lease's session, so PostgreSQL frees it the moment that session ends: a replica killed
with ``kill -9`` closes its socket and the lease is free at once; a replica whose machine
vanishes is noticed by TCP keepalives on both sides within about ``KEEPALIVE_BOUND`` s.

``fence`` lets the store check, in the transaction of every write that precedes a send,
that this session still holds the lock (``pg_locks``): a replica that lost its lease sends
nothing more (fencing without a token: the lock's holder is the token).
"""

from __future__ import annotations

import hashlib
from typing import Any, Self

import psycopg
from psycopg.conninfo import make_conninfo

from reconciler.core.errors import ConfigError
from reconciler.store.locks import HeldWhileInside, JobBusy
from reconciler.store.pg_conninfo import redact_dsn, replica_name

KEEPALIVE = ("keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3"
             " connect_timeout=10")
KEEPALIVE_BOUND = 5 + 2 * 3  # seconds until a vanished peer's session is dropped
_SERVER_KEEPALIVE = ("SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;"
                     " SET tcp_keepalives_count = 3")


def lease_key(job: str) -> int:
    """A signed 64-bit advisory lock key for the job (its name's hash)."""
    digest = hashlib.sha256(b"catalog-reconciler job lease\0" + job.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PgLease(HeldWhileInside):
    def __init__(self, dsn: str, job: str) -> None:
        self.dsn = dsn
        self.job = job
        self.key = lease_key(job)
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF
        self._classid, self._objid = unsigned >> 32, unsigned & 0xFFFF_FFFF
        self._conn: psycopg.Connection[Any] | None = None
        self.backend_pid: int | None = None

    def acquire(self) -> Self:
        try:
            conn = psycopg.connect(
                make_conninfo(self.dsn, application_name=f"reconciler {replica_name()}"[:63])
                + " " + KEEPALIVE, autocommit=True)
        except psycopg.Error as exc:
            raise ConfigError(f"{redact_dsn(self.dsn)}: cannot take the lease of job "
                              f"{self.job!r}: {redact_dsn(str(exc)).strip()}") from None
        try:
            conn.execute(_SERVER_KEEPALIVE)
            row = conn.execute("SELECT pg_try_advisory_lock(%s), pg_backend_pid()",
                               (self.key,)).fetchone()
            if row is None or not row[0]:
                holder = self._holder(conn)
                conn.close()
                raise JobBusy(f"job {self.job!r} is already being run by replica {holder}; "
                              "this run did nothing")
        except psycopg.Error as exc:
            conn.close()
            raise ConfigError(f"{redact_dsn(self.dsn)}: cannot take the lease of job "
                              f"{self.job!r}: {redact_dsn(str(exc)).strip()}") from None
        self._conn = conn
        self.backend_pid = int(row[1])
        return self

    def _holder(self, conn: psycopg.Connection[Any]) -> str:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s"
            " AND l.objsubid = 1 AND l.granted LIMIT 1", (self._classid, self._objid),
        ).fetchone()
        name = str(row[0]) if row and row[0] else "?"
        return name.removeprefix("reconciler ")

    def held(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether this lease's session still holds the lock (asked on ``conn``)."""
        if self.backend_pid is None:
            return False
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
            " AND classid = %s AND objid = %s AND objsubid = 1 AND pid = %s AND granted)",
            (self._classid, self._objid, self.backend_pid),
        ).fetchone()
        return bool(row and row[0])

    def release(self) -> None:
        conn, self._conn, self.backend_pid = self._conn, None, None
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.Error:
            pass  # the session is gone: so is its lock
        finally:
            conn.close()
