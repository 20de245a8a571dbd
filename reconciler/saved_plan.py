"""Saved plans: ``plan JOB --out plan.json`` now, ``apply plan.json`` later, exactly.

A saved plan is bound to the hashes of the source file and of the inventory it was made
from, so a reader can tell what it was made from. ``apply`` deletes exactly its ids,
after re-checking each one against today's source and protection (``drifted`` ones are
skipped), refuses a plan older than ``max_plan_age``, and is the only way past a cap
(``--approve --reason``, logged with the OS user).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.errors import ConfigError

FORMAT = 1


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

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "job": self.job, "run_id": self.run_id,
            "created_at": self.created_at,
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


def write(path: Path, plan: SavedPlan) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(plan.as_json(), ensure_ascii=False, indent=1) + "\n",
                   encoding="utf-8")
    tmp.replace(path)


def load(path: Path) -> SavedPlan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: saved plan not found") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a saved plan: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a saved plan of format {FORMAT}")
    try:
        return SavedPlan(
            job=data["job"], run_id=data["run_id"], created_at=float(data["created_at"]),
            source_path=data["source"]["path"], source_sha256=data["source"]["sha256"],
            inventory_sha256=data["inventory"]["sha256"],
            remote_ids=int(data["inventory"]["remote_ids"]),
            to_delete=tuple(str(i) for i in data["to_delete"]),
            skipped=dict(data.get("skipped") or {}), caps_refusal=data.get("caps_refusal"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: saved plan is missing {exc}") from None
