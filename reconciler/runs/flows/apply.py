"""apply PLAN: delete exactly a saved plan's ids, minus what drifted since it was made."""

from __future__ import annotations

import getpass

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.core.errors import SafetyRefusal
from reconciler.core.fingerprint import short
from reconciler.core.nearmatch import near_matches
from reconciler.core.plan import IdStats, Plan, column_stats, defer
from reconciler.core.safety import judge_caps, refusal
from reconciler.core.scope import SKIP_OUT_OF_SCOPE, in_scope_mask
from reconciler.core.states import SkipReason
from reconciler.runs.context import RunContext, RunRecord
from reconciler.runs.flows.gates import (
    catalog_size,
    deleted_today,
    gate_todays_source,
    protected_in,
    record_gates,
)
from reconciler.runs.flows.listing import back_up, remote_ids, snapshot_writer
from reconciler.runs.flows.send import log_skipped, send_deletes
from reconciler.sources.lastlook import in_other_columns
from reconciler.sources.reader import SourceRead, read_source
from reconciler.store import Store, preflight, saved_plan
from reconciler.store.saved_plan import SavedPlan

SKIP_DRIFTED = SkipReason.DRIFTED
SKIP_ALREADY_GONE = SkipReason.ALREADY_GONE

FUTURE_PLAN_SKEW = 300.0  # seconds a saved plan may seem to come from the future (skew)


def apply_saved(ctx: RunContext, rec: RunRecord, journal: Store,
                saved: SavedPlan) -> tuple[int, str]:
    """Delete exactly the saved plan's ids, minus those that drifted since it was made.

    Every cap is judged again here, on the plan's ids and the catalog as it is now
    (listed again, or the export or ledger that stands for it), never on numbers in
    the file: a plan over a cap needs ``--approve`` whatever the file says.
    """
    rules, now = ctx.job.safety, ctx.clock.utcnow().timestamp()
    rec.summary.update(applied_plan=saved.run_id, plan_created_at=saved.created_at)
    journal.start_run(ctx.run_id, ctx.job.name, False, rec.summary["started_at"],
                      target=ctx.target)
    preflight.writable_dir(ctx.folder, "report folder")  # before anything is deleted
    refuse_dry_job(ctx)
    refuse_stale(ctx, saved, now)
    refuse_spent(saved.run_id, journal.plan_spent_by(saved.run_id))
    read = read_source(ctx.job.source)
    source = read.ids
    rec.summary["source_changed"] = (
        saved_plan.file_sha256(ctx.job.source.path) != saved.source_sha256)
    ids = pa.array(list(saved.to_delete), pa.string())
    stats = column_stats(source)
    gate_todays_source(ctx, rec, journal, source, stats, read)  # drift is judged by it
    backend = ctx.factory(ctx.job, ctx.clock, ctx.log)
    snapshot = snapshot_writer(ctx)
    try:
        remote = remote_ids(ctx, rec, journal, backend, snapshot)
        plan = drift_checked(ctx, ids, stats, source, remote, read)
        remote_size = catalog_size(ctx, plan, remote)
        gates = judge_caps(rules, len(plan.to_delete), remote_size,
                           deleted_today(ctx, journal, now))
        record_gates(ctx, rec, gates)
        reason = refusal(gates)
        if reason is not None:
            if not ctx.request.approve:
                raise SafetyRefusal(f"{reason}; 'apply --approve --reason TEXT' goes past it")
            approval = {"user": getpass.getuser(), "reason": ctx.request.reason,
                        "past": reason}
            rec.summary["approved"] = approval
            ctx.log.warning("apply.approved", **approval)
        rec.plan = plan = back_up(ctx, rec, backend, plan, snapshot, SKIP_ALREADY_GONE)
        rec.summary.update(to_delete=len(plan.to_delete), skipped=plan.skipped_counts(),
                            source_ids=plan.source.unique, remote_ids=remote_size)
        journal.store_plan(
            ctx.run_id, plan.to_delete.to_pylist(),
            zip(plan.skipped_ids.to_pylist(), plan.skipped_reasons.to_pylist(), strict=True))
        log_skipped(ctx, plan.skipped_ids.to_pylist(), plan.skipped_reasons.to_pylist())
        # Spent at the last moment, atomically: a refused apply leaves the plan usable
        # (with --approve), and of two applies racing, one deletes.
        refuse_spent(saved.run_id, journal.spend_plan(saved.run_id, ctx.run_id, now))
        code, message = send_deletes(ctx, rec, journal, backend, ctx.run_id,
                                      plan.to_delete.to_pylist())
    finally:
        backend.close()
        if snapshot is not None:
            snapshot.path.unlink(missing_ok=True)  # refused before the backup took it
    return code, f"applied {saved.run_id}: {message}"


def refuse_dry_job(ctx: RunContext) -> None:
    """A job set ``dry_run = true`` deletes nothing, by any command: its config says so.
    (Applied anyway, its deletes would be journaled as a dry run's, and leave no claim.)"""
    if ctx.job.dry_run:
        raise SafetyRefusal(
            f"job {ctx.job.name!r} has dry_run = true in its config: it deletes nothing, "
            "and nothing was deleted; set dry_run = false to apply a plan")


def refuse_stale(ctx: RunContext, saved: SavedPlan, now: float) -> None:
    """A plan for another target, from the future or past ``max_plan_age`` is refused."""
    rules = ctx.job.safety
    if saved.target != ctx.target:
        raise SafetyRefusal(
            f"the plan was made for target {short(saved.target)}, but job "
            f"{ctx.job.name!r} now targets {short(ctx.target)}: nothing was deleted; "
            "make a new plan")
    if saved.created_at - now > FUTURE_PLAN_SKEW:
        raise SafetyRefusal(
            f"the plan was made {(saved.created_at - now) / 3600:.1f} h in the future "
            "(a clock was wrong): nothing was deleted; make a new one")
    if now - saved.created_at > rules.max_plan_age:
        raise SafetyRefusal(
            f"the plan is {(now - saved.created_at) / 3600:.1f} h old; max_plan_age is "
            f"{rules.max_plan_age / 3600:.1f} h: make a new one")


def refuse_spent(plan_run: str, applied_by: str | None) -> None:
    """A saved plan deletes once: applied again (after a restore, say), its ids would go
    with no listing of their grace; a new plan judges them afresh."""
    if applied_by is not None:
        raise SafetyRefusal(
            f"the plan made by run {plan_run} was already applied by run {applied_by} "
            "(a saved plan is applied once): nothing was deleted; make a new plan")


def drift_checked(ctx: RunContext, ids: pa.Array, stats: IdStats, source: pa.Array,
                  remote: pa.Array, read: SourceRead) -> Plan:
    """The saved ids as a plan, minus those now out of scope, back in the source or
    protected (``drifted``), back in the source under another spelling (``near_match``:
    the same normal forms ``run`` judges by), or held in another column of it
    (``in_other_column``: the last look ``run`` takes before a delete)."""
    plan = Plan(to_delete=ids, skipped_ids=pa.array([], pa.string()),
                skipped_reasons=pa.array([], pa.string()), source=stats,
                remote=IdStats(rows=int(pc.count_distinct(remote).as_py() or 0),
                               empty=0, duplicates=0))
    plan = defer(plan, pc.invert(in_scope_mask(ids, ctx.job.scope)), SKIP_OUT_OF_SCOPE)
    drifted = pc.or_(pc.is_in(plan.to_delete, value_set=source.cast(pa.string())),
                     protected_in(ctx, plan.to_delete))
    plan = defer(plan, drifted, SKIP_DRIFTED)
    near = near_matches(plan.to_delete, source)
    plan = defer(plan, pc.is_in(plan.to_delete, value_set=near.ids), SkipReason.NEAR_MATCH)
    elsewhere = in_other_columns(ctx.job.source, read, plan.to_delete)
    return defer(plan, pc.is_in(plan.to_delete, value_set=elsewhere),
                 SkipReason.IN_OTHER_COLUMN)
