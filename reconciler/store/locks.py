"""One process per job: an OS file lock, released by the kernel when its holder dies.

A lock held in the journal would need a liveness check; ``flock`` needs none, which is
what makes a ``kill -9`` safe: the next run takes the lock and resumes the stored plan.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from reconciler.core.errors import SafetyRefusal


class JobBusy(SafetyRefusal):
    """Another process is working this job; this one did nothing."""


class HeldWhileInside:
    """``with lease:`` acquires on entry (or raises ``JobBusy``) and releases on exit."""

    def acquire(self) -> Self:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class JobLock(HeldWhileInside):
    def __init__(self, state_dir: Path, job: str) -> None:
        self.path = state_dir / "locks" / f"{job}.lock"
        self.job = job
        self._fd: int | None = None

    def acquire(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise JobBusy(
                f"job {self.job!r} is already being run by process {holder}; "
                "this run did nothing"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
