"""plan and run: read the source, list the catalog, plan, judge, and (run) back up and
delete; ``plan --out`` saves the plan, a terminal's run asks before deleting.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from reconciler.backends.base import Backend
from reconciler.core.errors import EXIT_OK, ConfigError, SafetyRefusal
from reconciler.core.plan import Plan, make_plan
from reconciler.report.files import prune_reports
from reconciler.runs.context import RunContext, RunRecord, RunResult
from reconciler.runs.executor import QUEUED
from reconciler.runs.flows.gates import judge
from reconciler.runs.flows.listing import back_up, remote_ids, snapshot_writer
from reconciler.runs.flows.send import log_skipped, send_deletes
from reconciler.runs.flows.verify import verified_line, verify_earlier
from reconciler.sources.reader import read_source
from reconciler.store import Store, backup_store, backups, plan_key, saved_plan
from reconciler.store.saved_plan import SavedPlan


def reconcile(ctx: RunContext, rec: RunRecord, journal: Store, backend: Backend) -> tuple[int, str]:
    """A fresh plan: the source against the catalog, judged; a dry run stops there (with
    ``verify_only``, after reading back earlier deletes), a real run backs up and deletes."""
    now = ctx.clock.utcnow().timestamp()
    if journal.interrupted_run(ctx.job.name, ctx.target) is None:
        # Never while a plan waits to be resumed (a dry run's turn came first): its backup
        # is what lets the resume delete (no backup, no delete).
        backup_store(ctx.config).prune(ctx.job.name, ctx.job.safety.backup_retention, now)
    if ctx.request.report_root is None:
        pruned = prune_reports(ctx.folder.parent, ctx.job.safety.report_retention, now,
                               keep=ctx.folder)
        if pruned:
            ctx.log.info("reports.pruned", folders=len(pruned))
    source_read = read_source(ctx.job.source)
    source = source_read.ids
    ctx.log.info("source.read", path=str(ctx.job.source.path), rows=len(source))
    snapshot = snapshot_writer(ctx)
    remote = remote_ids(ctx, rec, journal, backend, snapshot)
    if ctx.request.verify_only or not ctx.dry_run:
        verify_earlier(ctx, rec, journal, remote)
    plan = make_plan(source, remote, backend.address_rules)
    summarize_plan(ctx, rec, plan)
    if ctx.request.verify_only:
        return EXIT_OK, verified_line(rec.summary.get("verified", {}))
    plan, caps_refusal = judge(ctx, rec, journal, plan, source, remote, now, source_read)
    rec.plan = plan
    ctx.log.info(
        "plan.made", to_delete=len(plan.to_delete), skipped=plan.skipped_counts(),
        source_ids=plan.source.unique, remote_ids=plan.remote.unique,
    )
    if ctx.request.plan_out is not None:
        save_plan(ctx, rec, plan, source, remote, now, caps_refusal)
    if ctx.dry_run:
        return EXIT_OK, (f"dry run: {len(plan.to_delete)} ids would be deleted"
                         + pending_note(ctx, rec))
    ask_confirmation(ctx, rec, plan, snapshot)
    rec.plan = plan = back_up(ctx, rec, backend, plan, snapshot)
    rec.summary.update(to_delete=len(plan.to_delete), skipped=plan.skipped_counts())
    journal.store_plan(
        ctx.run_id, plan.to_delete.to_pylist(),
        zip(plan.skipped_ids.to_pylist(), plan.skipped_reasons.to_pylist(), strict=True),
    )
    log_skipped(ctx, plan.skipped_ids.to_pylist(), plan.skipped_reasons.to_pylist())
    code, message = send_deletes(ctx, rec, journal, backend, ctx.run_id, plan.to_delete.to_pylist())
    if ctx.job.target.ledger:
        queued = [o.item_id for o in rec.outcomes or [] if o.outcome == QUEUED]
        journal.update_ledger(ctx.job.name, ctx.target, source.to_pylist(), queued)
    return code, message + pending_note(ctx, rec)


def save_plan(ctx: RunContext, rec: RunRecord, plan: Plan, source: pa.Array,
              remote: pa.Array, now: float, caps_refusal: str | None) -> None:
    path = ctx.request.plan_out
    assert path is not None
    key = plan_key(ctx.config)
    try:
        write_saved_plan(ctx, path, plan, remote, now, key, caps_refusal)
    except OSError as exc:
        raise ConfigError(f"plan --out {path}: cannot write the plan "
                          f"({exc.strerror or type(exc).__name__}); nothing was saved"
                          ) from None
    rec.summary["saved_plan"] = str(path)
    ctx.log.info("plan.saved", path=str(path), to_delete=len(plan.to_delete))
    if caps_refusal is not None:
        raise SafetyRefusal(f"{caps_refusal}; the plan is saved in {path}: "
                            "'reconciler apply PLAN --approve --reason TEXT' goes past the cap")


def write_saved_plan(ctx: RunContext, path: Path, plan: Plan, remote: pa.Array, now: float,
                     key: bytes, caps_refusal: str | None) -> None:
    saved_plan.write(path, SavedPlan(
        job=ctx.job.name, run_id=ctx.run_id, created_at=now,
        source_path=str(ctx.job.source.path),
        source_sha256=saved_plan.file_sha256(ctx.job.source.path),
        inventory_sha256=saved_plan.ids_sha256(remote), remote_ids=plan.remote.unique,
        to_delete=tuple(plan.to_delete.to_pylist()), skipped=plan.skipped_counts(),
        caps_refusal=caps_refusal, target=ctx.target,
    ), key)


def ask_confirmation(ctx: RunContext, rec: RunRecord, plan: Plan,
                     snapshot: backups.RecordWriter | None) -> None:
    ask = ctx.request.confirm
    if ask is None or not len(plan.to_delete):
        return
    preview = RunResult(ctx.job.name, ctx.run_id, EXIT_OK, ctx.folder, rec.summary,
                        "", [], plan=plan, properties=rec.html.properties)
    if not ask(preview):
        if snapshot is not None:
            snapshot.path.unlink(missing_ok=True)
        rec.summary["cancelled"] = True
        raise SafetyRefusal("not confirmed at the prompt; nothing was deleted")


def pending_note(ctx: RunContext, rec: RunRecord) -> str:
    pending = rec.summary.get("pending_grace", 0)
    return f" ({pending} more pending grace)" if pending else ""


def summarize_plan(ctx: RunContext, rec: RunRecord, plan: Plan) -> None:
    rec.summary.update(
        source_ids=plan.source.unique,
        remote_ids=plan.remote.unique,
        to_delete=len(plan.to_delete),
        skipped=plan.skipped_counts(),
        source={
            "path": str(ctx.job.source.path), "rows": plan.source.rows,
            "empty_ids": plan.source.empty, "duplicate_ids": plan.source.duplicates,
            "whitespace_ids": plan.source.whitespace,
        },
    )
    rec.summary["inventory"].update(
        rows=plan.remote.rows, empty_ids=plan.remote.empty,
        duplicate_ids=plan.remote.duplicates,
    )
