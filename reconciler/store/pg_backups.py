"""Backups in PostgreSQL (gzipped JSON lines in a bytea), so ``restore`` works on any replica.

The same interface as ``backups.FileBackups``; a backup is committed before anything is
deleted, and a failure to write it refuses the run (no backup, no delete).
"""

from __future__ import annotations

import gzip
import io
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from reconciler.core.errors import SafetyRefusal
from reconciler.store.backups import read_records
from reconciler.store.pg_budget import shared_pool
from reconciler.store.pg_conninfo import redact_dsn


class PgBackups:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool = shared_pool(dsn)

    def where(self, job: str, run_id: str) -> str:
        return f"{redact_dsn(self.dsn)}#backups/{job}/{run_id}"

    def write(self, job: str, run_id: str, records: Iterable[dict[str, Any]]) -> tuple[int, str]:
        raw = io.BytesIO()
        count = 0
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3) as gz:
            for record in records:
                gz.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
                count += 1
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute(
                    "INSERT INTO backups (job, run_id, created_at, records, data)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (job, run_id) DO UPDATE SET"
                    " created_at = EXCLUDED.created_at, records = EXCLUDED.records,"
                    " data = EXCLUDED.data",
                    (job, run_id, time.time(), count, raw.getvalue()),
                )
        except psycopg.Error as exc:
            raise SafetyRefusal(f"cannot write the backup {self.where(job, run_id)}: "
                                f"{redact_dsn(str(exc)).strip()}; nothing deleted") from None
        return count, self.where(job, run_id)

    def adopt(self, job: str, run_id: str, spooled: Path) -> tuple[int, str]:
        """Store the spooled file in the database, where every replica reads it, and
        remove the local copy only once it is committed."""
        written = self.write(job, run_id, read_records(spooled))
        spooled.unlink()
        return written

    def read(self, job: str, run_id: str) -> Iterator[dict[str, Any]] | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT data FROM backups WHERE job = %s AND run_id = %s",
                               (job, run_id)).fetchone()
        if row is None:
            return None
        return _records(bytes(row[0]))

    def prune(self, job: str, retention_seconds: float, now: float) -> list[str]:
        with self._pool.connection() as conn, conn.transaction():
            rows = conn.execute("DELETE FROM backups WHERE job = %s AND created_at < %s"
                                " RETURNING run_id", (job, now - retention_seconds)).fetchall()
        return [self.where(job, r[0]) for r in rows]


def _records(data: bytes) -> Iterator[dict[str, Any]]:
    """Decompressed as it is read, so that damage shows where the records are read."""
    for line in gzip.decompress(data).splitlines():
        if line.strip():
            yield json.loads(line)
