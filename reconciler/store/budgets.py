"""Rate budgets shared by every process on this machine that targets one catalog.

The state is ``ratelimit.BudgetState`` kept as JSON in one file per catalog under
``budget_dir``, read and written under an exclusive ``flock`` for every admission. Point
several configs at the same ``budget_dir`` to make their jobs share a catalog's budget.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from pathlib import Path

from reconciler.core.ratelimit import (
    BudgetState,
    Grant,
    SlidingWindowBudget,
    Slot,
    admit,
    complete,
    throttled,
)


def budget_path(budget_dir: Path, key: str) -> Path:
    """One file per catalog: the key names the API, the account and the catalog."""
    return budget_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


class FileBudget(SlidingWindowBudget):
    """The same budget kept in a file under an exclusive lock: shared by processes."""

    def __init__(self, path: Path, limit: int, window: float) -> None:
        super().__init__(limit, window)
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def acquire(self, now: float) -> Grant:
        with self._lock, _Locked(self.path) as store:
            state, grant = admit(store.read(), now, self.limit, self.window, uuid.uuid4().hex)
            store.write(state)
            return grant

    def complete(self, token: str, now: float) -> None:
        with self._lock, _Locked(self.path) as store:
            store.write(complete(store.read(), token, now, self.limit, self.window))

    def throttled(self, now: float, retry_after: float | None) -> None:
        with self._lock, _Locked(self.path) as store:
            store.write(throttled(store.read(), now, self.limit, retry_after))


class _Locked:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> _Locked:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)

    def read(self) -> BudgetState:
        size = os.fstat(self._fd).st_size
        return state_from_json(os.pread(self._fd, size, 0) if size else b"")

    def write(self, state: BudgetState) -> None:
        data = state_to_json(state)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)


def state_from_json(raw: bytes) -> BudgetState:
    """A stored budget state; a torn or foreign one starts afresh (the server is the judge)."""
    try:
        data = json.loads(raw) if raw else {}
        return BudgetState(
            slots=tuple(Slot(*s) for s in data.get("slots", [])),
            limit=data.get("limit"),
            paused_until=float(data.get("paused_until", "-inf")),
            last_change=float(data.get("last_change", "-inf")),
        )
    except (ValueError, TypeError, AttributeError):
        return BudgetState()


def state_to_json(state: BudgetState) -> bytes:
    return json.dumps({
        "slots": [[s.token, s.started, s.ended] for s in state.slots],
        "limit": state.limit,
        "paused_until": str(state.paused_until),
        "last_change": str(state.last_change),
    }).encode()
