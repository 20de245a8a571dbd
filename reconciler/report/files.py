"""Write one run's report folder: summary.json, deletes.csv, skipped.csv, outcomes.csv,
report.md and report.html (see ``report_html``).

CSV files are written by Arrow (quoting only where needed), so a plan of millions of ids
is written at disk speed and ids round-trip exactly through any CSV reader.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.csv as pacsv

from reconciler.core.plan import Plan
from reconciler.core.states import Outcome as States
from reconciler.report.html import MAX_ROWS, HtmlExtras, write_html

PLANNED, QUEUED, SKIPPED = States.PLANNED, States.QUEUED, States.SKIPPED


class Outcome(Protocol):
    """One id's outcome, as the executor gives it (the report needs only these)."""

    @property
    def item_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def detail(self) -> str: ...


SUMMARY = "summary.json"
DELETES = "deletes.csv"
SKIPPED_CSV = "skipped.csv"
OUTCOMES = "outcomes.csv"
HUMAN = "report.md"


def write_report(
    folder: Path,
    summary: dict[str, Any],
    plan: Plan | None,
    outcomes: Sequence[Outcome] | None,
    action: str = "deleted",
    extras: HtmlExtras | None = None,
) -> None:
    """Write every file; a refused run (no plan) still gets all of them, empty but headed.

    For a restore (``action="restored"``) the ids the API queued go to ``restored.csv``
    and ``deletes.csv`` stays empty: nothing was deleted.
    """
    folder.mkdir(parents=True, exist_ok=True)
    empty = pa.array([], type=pa.string())
    skipped_ids = plan.skipped_ids if plan else empty
    skipped_reasons = plan.skipped_reasons if plan else empty
    if outcomes is None:  # a dry run, or refused before any delete
        deleted = plan.to_delete if plan else empty
        done = pa.table({
            "item_id": deleted,
            "outcome": pa.repeat(pa.scalar(PLANNED, pa.string()), len(deleted)),
            "detail": pa.repeat(pa.scalar("", pa.string()), len(deleted)),
        })
    else:
        deleted = pa.array([o.item_id for o in outcomes if o.outcome == QUEUED], type=pa.string())
        done = pa.table({
            "item_id": pa.array([o.item_id for o in outcomes], type=pa.string()),
            "outcome": pa.array([o.outcome for o in outcomes], type=pa.string()),
            "detail": pa.array([o.detail for o in outcomes], type=pa.string()),
        })
    skipped_rows = pa.table({
        "item_id": skipped_ids,
        "outcome": pa.repeat(pa.scalar(SKIPPED, pa.string()), len(skipped_ids)),
        "detail": skipped_reasons,
    })
    listed = deleted  # what report.html lists: deleted, would be, or restored
    if action != "deleted":
        _write_csv(folder / f"{action}.csv", pa.table({"item_id": deleted}))
        deleted = empty
    _write_csv(folder / DELETES, pa.table({"item_id": deleted}))
    _write_csv(folder / SKIPPED_CSV, pa.table({"item_id": skipped_ids, "reason": skipped_reasons}))
    _write_csv(folder / OUTCOMES, pa.concat_tables([done, skipped_rows.cast(done.schema)]))
    _atomic_write(folder / HUMAN, human_report(summary))
    write_html(folder, summary, listed.slice(0, MAX_ROWS).to_pylist(), extras, action=action,
               total=len(listed))
    # summary.json last: its presence means the folder is complete.
    _atomic_write(folder / SUMMARY, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def _write_csv(path: Path, table: pa.Table) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed"))
    tmp.replace(path)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def human_report(summary: dict[str, Any]) -> str:
    """A short Markdown page an operator can read before trusting the tool."""
    lines = _header_lines(summary)
    if summary.get("action") in ("restore", "purge"):
        return "\n".join(lines + _operation_lines(summary))
    lines += _count_lines(summary) + _decision_lines(summary) + _inventory_lines(summary)
    lines += [
        "",
        f"Files: `{DELETES}` (deleted, or would be), `{SKIPPED_CSV}`, `{OUTCOMES}` "
        f"(every item's outcome), `{SUMMARY}`.",
        "",
    ]
    return "\n".join(lines)


def _header_lines(s: dict[str, Any]) -> list[str]:
    """What ran, against what, how it ended, and why it stopped when it did."""
    mode = "dry run, nothing deleted" if s["dry_run"] else "real run"
    title = {"restore": "Restore", "purge": "Purge"}.get(s.get("action", ""), "Reconcile")
    lines = [
        f"# {title} report: {s['job']}",
        "",
        f"- Run: `{s['run_id']}` ({mode}), {s['started_at']} to {s['finished_at']}",
        f"- Target: {s.get('backend', '?')} catalog `{s.get('catalog_id', '?')}`"
        f" (fingerprint `{s.get('target', '?')}`)",
        f"- Exit code: {s['exit_code']}",
    ]
    if s.get("target_changed"):
        change = s["target_changed"]
        lines += ["", f"**Target changed** since the last run (`{change['from']}` -> "
                      f"`{change['to']}`): no plan, grace, shrink baseline or daily total "
                      "of the old catalog was used."]
    if s.get("refused"):
        lines += ["", f"**Refused: {s['refused']}.** Nothing was deleted."]
    if s.get("error"):
        lines += ["", f"**Stopped: {s['error']}**"]
    return lines


def _count_lines(s: dict[str, Any]) -> list[str]:
    source = s.get("source", {})
    return [
        "",
        "| | count |",
        "|---|---:|",
        f"| source ids (distinct, non-empty) | {s['source_ids']} |",
        f"| source rows / empty / duplicate / with whitespace | {source.get('rows', 0)} / "
        f"{source.get('empty_ids', 0)} / {source.get('duplicate_ids', 0)} / "
        f"{source.get('whitespace_ids', 0)} |",
        f"| remote ids | {s['remote_ids']} |",
        f"| to delete | {s['to_delete']} |",
        f"| pending grace (missing, not yet due) | {s.get('pending_grace', 0)} |",
        f"| to delete + pending grace (what the caps judge) | "
        f"{s['to_delete'] + s.get('pending_grace', 0)} |",
        f"| skipped | {sum(s['skipped'].values())} |",
        f"| deleted (queued) | {s['deleted']} |",
        f"| failed / unknown / not sent | {s['failed']} / {s.get('unknown', 0)} / "
        f"{s.get('not_sent', 0)} |",
    ]


def _decision_lines(s: dict[str, Any]) -> list[str]:
    """Read-backs, gates, grace, approval, backup and skips: why each id went or stayed."""
    lines: list[str] = []
    verified = s.get("verified")
    if isinstance(verified, dict):
        lines += ["", "| verified (earlier deletes read back) | count |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in verified.items()]
    if s.get("gates"):
        lines += ["", "| gate | decision | why |", "|---|---|---|"]
        lines += [f"| {g['gate']} | {'passed' if g['passed'] else '**refused**'} | "
                  f"{g['detail']} |" for g in s["gates"]]
    if s.get("pending_grace"):
        lines += ["", f"Ids pending grace (missing, not yet deleted): {s['pending_grace']}"
                  f" (listed in `{SKIPPED_CSV}` as `pending_grace`)."]
    clock = (s.get("grace") or {}).get("clock") or {}
    if clock.get("clocks_disagree"):
        lines += ["", f"**Clocks disagree**: the wall clock moved "
                      f"{clock['since_last_run_wall_seconds']} s since the last run, the boot "
                      f"clock less; grace counted {clock['since_last_run_counted_seconds']} s."]
    if s.get("approved"):
        a = s["approved"]
        lines += ["", f"Approved past a cap by `{a['user']}`: {a['reason']}"]
    if s.get("backup"):
        lines += ["", f"Backup of the deleted items: `{s['backup']['path']}` "
                  f"({s['backup']['records']} records)."]
    if s["skipped"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in s["skipped"].items())
        lines += ["", f"Skipped by reason: {reasons}"]
    return lines


def _inventory_lines(s: dict[str, Any]) -> list[str]:
    inventory = s.get("inventory", {})
    if not inventory:
        return []
    if s["inventory_complete"]:
        return ["", f"Inventory ({inventory.get('source')}) is complete."]
    return [
        "",
        f"**Inventory incomplete**: found {inventory.get('found')} of "
        f"{inventory.get('expected')} ids the server reports. Ids not found cannot be "
        "deleted this run; nothing outside the source was deleted because of it. "
        f"{inventory.get('detail', '')}",
    ]


def _operation_lines(s: dict[str, Any]) -> list[str]:
    """The counts of a restore or a purge (no source, no gates: not a reconcile)."""
    skipped = s.get("skipped") or {}
    if s["action"] == "restore":
        rows = [("restore of run", f"`{s.get('restore_of', '?')}`"),
                ("to restore", s.get("to_restore", 0)),
                ("restored (queued)", s.get("restored", 0))]
        done = "restored.csv (restored)"
    else:
        rows = [("items listed (each once)", s.get("remote_ids", 0)),
                ("to delete (addressable)", s.get("to_delete", 0)),
                ("deleted (queued)", s.get("deleted", 0)),
                ("left in place (unaddressable)", skipped.get("unaddressable", 0))]
        done = f"{DELETES} (deleted)"
    rows += [("skipped", sum(skipped.values())),
             ("failed / unknown / not sent",
              f"{s.get('failed', 0)} / {s.get('unknown', 0)} / {s.get('not_sent', 0)}")]
    lines = ["", "| | count |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in rows]
    if skipped:
        lines += ["", "Skipped by reason: " + ", ".join(f"{k}: {v}" for k, v in skipped.items())]
    if s.get("backup"):
        lines += ["", f"Backup of the whole catalog, taken first: `{s['backup']['path']}` "
                  f"({s['backup']['records']} records)."]
    return [*lines, "", f"Files: {done}, `{SKIPPED_CSV}`, `{OUTCOMES}` (every item's "
            f"outcome), `{SUMMARY}`.", ""]


def prune_reports(job_folder: Path, retention_seconds: float | None, now: float,
                  keep: Path) -> list[Path]:
    """Remove a job's report folders (``state_dir/reports/<job>/<run_id>``) older than the
    retention, never ``keep`` (this run's); returns what was removed."""
    import shutil

    removed: list[Path] = []
    if retention_seconds is None or not job_folder.is_dir():
        return removed
    for folder in job_folder.iterdir():
        if folder == keep or not folder.is_dir() or folder.is_symlink():
            continue
        if now - folder.stat().st_mtime > retention_seconds:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
