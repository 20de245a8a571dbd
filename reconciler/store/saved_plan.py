"""Saved plans: ``plan JOB --out plan.json`` now, ``apply plan.json`` later, exactly.

A saved plan is bound to the hashes of the source file and of the inventory it was made
from, so a reader can tell what it was made from. ``apply`` deletes exactly its ids,
after re-checking each one against today's source and protection (``drifted`` ones are
skipped), refuses a plan older than ``max_plan_age``, and is the only way past a cap
(``--approve --reason``, logged with the OS user).

A plan is also bound to the fingerprint of the job's target and signed with an HMAC
whose key lives only in the ``state_dir`` (``plan.key``, 0600, made on first use). Any
edit of the file (an id added, a count or a fingerprint changed) or a plan made with
another ``state_dir`` fails the signature and is refused (exit 3) before anything else.
Numbers in the file are for the reader only: ``apply`` recomputes every cap.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.core.errors import ConfigError, SafetyRefusal

FORMAT = 2
KEY_NAME = "plan.key"


@dataclass(frozen=True)
class SavedPlan:
    job: str
    run_id: str
    created_at: float  # epoch seconds
    source_path: str
    source_sha256: str
    inventory_sha256: str
    remote_ids: int
    to_delete: tuple[str, ...]
    skipped: dict[str, int]
    caps_refusal: str | None = None
    target: str = ""  # fingerprint of the job's target when the plan was made

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "job": self.job, "run_id": self.run_id,
            "created_at": self.created_at, "target": self.target,
            "source": {"path": self.source_path, "sha256": self.source_sha256},
            "inventory": {"sha256": self.inventory_sha256, "remote_ids": self.remote_ids},
            "caps_refusal": self.caps_refusal, "skipped": self.skipped,
            "to_delete": list(self.to_delete),
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ids_sha256(ids: pa.Array) -> str:
    """A hash of a set of ids, independent of their order and of duplicates."""
    unique = pc.unique(ids.cast(pa.string()))
    ordered = pc.take(unique, pc.sort_indices(unique))
    digest = hashlib.sha256()
    for chunk in range(0, len(ordered), 100_000):
        digest.update("\n".join(ordered[chunk:chunk + 100_000].to_pylist()).encode() + b"\n")
    return digest.hexdigest()


def signing_key(state_dir: Path) -> bytes:
    """The state's plan-signing key, created (random, mode 0600) on first use.

    Written to a private temporary file and linked into place, so two processes racing to
    create it end with one key, never a half-written one.
    """
    path = state_dir / KEY_NAME
    if not path.exists():
        try:
            _create_key(state_dir, path)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot create the plan-signing key: "
                              f"{exc.strerror or exc}") from None
    try:
        key = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the plan-signing key: {exc}") from None
    if len(key) < 32:
        raise ConfigError(f"{path}: the plan-signing key is damaged; delete it (saved plans "
                          "made with it will then be refused)")
    return key.encode("ascii")


def _create_key(state_dir: Path, path: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{KEY_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def signature(data: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 of the canonical JSON of every field but the signature itself."""
    body = {k: v for k, v in data.items() if k != "mac"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def write(path: Path, plan: SavedPlan, key: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = plan.as_json()
    data["mac"] = signature(data, key)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def load(path: Path, key: bytes) -> SavedPlan:
    """Read a saved plan, refusing (exit 3) one whose signature does not match this state."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: saved plan not found") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a saved plan: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a saved plan of format {FORMAT}")
    mac = data.get("mac")
    if not isinstance(mac, str) or not hmac.compare_digest(mac, signature(data, key)):
        raise SafetyRefusal(
            f"{path}: refused: the plan's signature does not match (the file was edited, or "
            "it was made with another state_dir); nothing was deleted: make a new one with "
            "'reconciler plan JOB --out'")
    try:
        return SavedPlan(
            job=data["job"], run_id=data["run_id"], created_at=float(data["created_at"]),
            source_path=data["source"]["path"], source_sha256=data["source"]["sha256"],
            inventory_sha256=data["inventory"]["sha256"],
            remote_ids=int(data["inventory"]["remote_ids"]),
            to_delete=tuple(str(i) for i in data["to_delete"]),
            skipped=dict(data.get("skipped") or {}), caps_refusal=data.get("caps_refusal"),
            target=str(data["target"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: saved plan is missing {exc}") from None
