"""Backups of deleted items: the undo the APIs lack. No backup, no delete.

Before any id is deleted, its full remote record (id and properties) is appended to
``state_dir/backups/<job>/<run_id>.jsonl.gz`` and fsynced. Records come from the listing
(every page is streamed to a snapshot file, so a large catalog is never held in memory),
or are read back one by one when the inventory came from an export file.
``reconciler restore RUN_ID`` reads them back and recreates the items.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from reconciler.core.errors import SafetyRefusal

SUFFIX = ".jsonl.gz"


def backup_dir(state_dir: Path, job: str) -> Path:
    return state_dir / "backups" / job


def backup_path(state_dir: Path, job: str, run_id: str) -> Path:
    return backup_dir(state_dir, job) / f"{run_id}{SUFFIX}"


class RecordWriter:
    """Appends records to a gzipped JSON-lines file, each id once (a listing may yield an id
    more than once: the first record is kept); ``close`` flushes and fsyncs."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.count = 0
        self._seen: set[str] = set()
        self._raw = path.open("wb")
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=3)

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            item_id = record.get("item_id")
            if isinstance(item_id, str):
                if item_id in self._seen:
                    continue
                self._seen.add(item_id)
            self._gz.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
            self.count += 1

    def close(self) -> None:
        self._gz.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    if path.stat().st_size == 0:  # a written backup (or snapshot) has at least gzip's header
        raise EOFError("the file is empty")
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def write_backup(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write and fsync a backup; any failure refuses the run before anything is deleted."""
    try:
        writer = RecordWriter(path)
        writer.write(records)
        writer.close()
    except OSError as exc:
        raise SafetyRefusal(f"cannot write the backup {path}: {exc}; nothing deleted") from None
    return writer.count


# What reading a damaged backup raises: cut short (EOFError), not gzip or not readable
# (OSError, zlib.error), not JSON or not UTF-8 (ValueError), a line that is not a record
# (TypeError, KeyError, AttributeError).
DAMAGED = (OSError, EOFError, zlib.error, ValueError, TypeError, KeyError, AttributeError)


def backed_up(records: Iterable[dict[str, Any]], where: str,
              expected: int | None = None) -> dict[str, dict[str, Any]]:
    """A backup's records by id (the first of each), read whole or not at all: a backup cut
    short, garbled or holding fewer records than its run wrote (``expected``) is
    ``BackupDamaged``, never a silently smaller backup."""
    found: dict[str, dict[str, Any]] = {}
    count = 0
    try:
        for record in records:
            found.setdefault(str(record["item_id"]), dict(record.get("properties") or {}))
            count += 1
    except DAMAGED as exc:
        raise BackupDamaged(where, found, count, f"{type(exc).__name__}: {exc}") from None
    if expected is not None and count != expected:
        raise BackupDamaged(where, found, count, f"its run wrote {expected}")
    return found


class BackupDamaged(Exception):
    """A backup that cannot be read whole (see ``backed_up``)."""

    def __init__(self, where: str, found: dict[str, dict[str, Any]], readable: int,
                 why: str) -> None:
        super().__init__(f"{where}: the backup is damaged ({readable} readable records; "
                         f"{why})")
        self.where, self.found = where, found


def records_for(snapshot: Path, ids: set[str]) -> Iterator[dict[str, Any]]:
    """The first record of each wanted id in a listing snapshot."""
    seen: set[str] = set()
    for record in read_records(snapshot):
        item_id = record.get("item_id")
        if item_id in ids and item_id not in seen:
            seen.add(item_id)
            yield record


def prune(state_dir: Path, job: str, retention_seconds: float, now: float) -> list[Path]:
    """Delete backups older than the retention; returns what was removed."""
    removed: list[Path] = []
    folder = backup_dir(state_dir, job)
    if not folder.is_dir():
        return removed
    for path in folder.glob(f"*{SUFFIX}"):
        if now - path.stat().st_mtime > retention_seconds:
            path.unlink()
            removed.append(path)
    return removed


class FileBackups:
    """Backups as files under ``state_dir`` (the default: one machine)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def write(self, job: str, run_id: str, records: Iterable[dict[str, Any]]) -> tuple[int, str]:
        """Write and fsync; (records written, where they are)."""
        path = backup_path(self.state_dir, job, run_id)
        return write_backup(path, records), str(path)

    def read(self, job: str, run_id: str) -> Iterator[dict[str, Any]] | None:
        path = backup_path(self.state_dir, job, run_id)
        return read_records(path) if path.exists() else None

    def where(self, job: str, run_id: str) -> str:
        return str(backup_path(self.state_dir, job, run_id))

    def prune(self, job: str, retention_seconds: float, now: float) -> list[str]:
        return [str(p) for p in prune(self.state_dir, job, retention_seconds, now)]

    def adopt(self, job: str, run_id: str, spooled: Path) -> tuple[int, str]:
        """The spooled file becomes the backup, where ``read`` looks for it."""
        path = backup_path(self.state_dir, job, run_id)
        if spooled != path:
            spooled.replace(path)
        return sum(1 for _ in read_records(path)), str(path)
