"""``reconciler history`` and ``reconciler outcomes``: what the journal knows, for people."""

from __future__ import annotations

import csv
import json
from typing import TextIO

from reconciler.core.errors import ConfigError
from reconciler.core.settings import Config
from reconciler.store import RunRow, Store, open_store
from reconciler.store.journal import JOURNAL_NAME


def _open(config: Config) -> Store:
    if config.state is None and not (config.state_dir / JOURNAL_NAME).exists():
        raise ConfigError(f"{config.state_dir / JOURNAL_NAME}: no journal yet (nothing has run)")
    return open_store(config)


def describe(run: RunRow) -> dict[str, object]:
    s = run.summary
    mode = "dry" if run.dry_run else "real"
    return {
        "run_id": run.run_id,
        "job": run.job,
        "started_at": run.started_at,
        "finished_at": run.finished_at or "",
        "mode": mode,
        "status": run.status,
        "exit_code": "" if run.exit_code is None else run.exit_code,
        "to_delete": s.get("to_delete", ""),
        "deleted": s.get("deleted", ""),
        "failed": s.get("failed", ""),
        "unknown": s.get("unknown", ""),
        "not_sent": s.get("not_sent", ""),
        "skipped": sum(s.get("skipped", {}).values()) if s.get("skipped") else 0,
        "resumed_from": run.resumed_from or "",
        "replica": run.replica,
        "refused": s.get("refused", ""),
        "error": s.get("error", ""),
    }


def print_history(config: Config, job: str | None, limit: int, out: TextIO) -> int:
    if job is not None:
        config.select([job])
    journal = _open(config)
    try:
        rows = [describe(r) for r in journal.runs(job, limit)]
    finally:
        journal.close()
    columns = ["run_id", "job", "started_at", "finished_at", "mode", "status", "exit_code",
               "to_delete", "deleted", "failed", "unknown", "not_sent", "skipped",
               "resumed_from", "replica", "refused", "error"]
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in columns[:-2]}
    out.write("  ".join(c.ljust(w) for c, w in widths.items()) + "  note\n")
    for r in rows:
        note = r["refused"] or r["error"]
        out.write("  ".join(str(r[c]).ljust(w) for c, w in widths.items()) + f"  {note}\n")
    return 0


def print_outcomes(config: Config, run_id: str, outcome: str | None, fmt: str,
                   out: TextIO) -> int:
    """Items of the plan ``run_id`` made, or of the plan it resumed."""
    journal = _open(config)
    try:
        run = journal.run(run_id)
        if run is None:
            raise ConfigError(f"no run {run_id!r} in {config.state_dir / JOURNAL_NAME}")
        plan_run = run.resumed_from or run_id
        items = journal.items(plan_run, outcome)
    finally:
        journal.close()
    if fmt == "json":
        for item in items:
            out.write(json.dumps({"item_id": item.item_id, "outcome": item.state,
                                  "detail": item.detail, "sends": item.sends},
                                 ensure_ascii=False) + "\n")
        return 0
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["item_id", "outcome", "detail"])
    writer.writerows([i.item_id, i.state, i.detail] for i in items)
    return 0
