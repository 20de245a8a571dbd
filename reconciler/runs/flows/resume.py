"""Finishing an interrupted plan: resend what was not queued, skip what came back (under
its own spelling or another)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.backends.base import Backend
from reconciler.core.nearmatch import near_matches
from reconciler.core.plan import IdStats, Plan, column_stats
from reconciler.core.safety import SKIP_NEAR_MATCH, SKIP_PROTECTED
from reconciler.core.scope import SKIP_OUT_OF_SCOPE, in_scope_mask
from reconciler.core.states import SkipReason
from reconciler.runs.context import RunContext, RunRecord
from reconciler.runs.executor import SKIPPED
from reconciler.runs.flows.gates import gate_todays_source, protected_in
from reconciler.runs.flows.send import log_skipped, send_deletes
from reconciler.sources.lastlook import in_other_columns
from reconciler.sources.reader import read_source
from reconciler.store import RunRow, Store, backup_store, backups
from reconciler.store.journal import RESUMED

SKIP_BACK_IN_SOURCE = SkipReason.BACK_IN_SOURCE


def resume(ctx: RunContext, rec: RunRecord, journal: Store, backend: Backend,
           old: RunRow) -> tuple[int, str]:
    at = journal.state_counts(old.run_id)
    rec.summary["resumed_from"] = old.run_id
    rec.summary["resumed_at"] = at
    ctx.log.warning("run.resuming", resumed_from=old.run_id, states=at)
    read = read_source(ctx.job.source)  # the plan is re-checked against today's source
    source = read.ids
    pending = journal.resendable(old.run_id)
    pending_ids = pa.array([p.item_id for p in pending], type=source.type)
    # ...which must pass the source gates, as a fresh run's would: an export cut short
    # (still being written), stale, shrunk or full of empty ids hides ids that came back.
    # Refused, the plan stays to be resumed by the next run. (Ids back under another
    # spelling are skipped below, one by one, as they always were.)
    gate_todays_source(ctx, rec, journal, source, column_stats(source), read)
    back = pc.is_in(pending_ids, value_set=source)
    outside = pc.and_(pc.invert(in_scope_mask(pending_ids, ctx.job.scope)),
                      pc.invert(back))
    protected = pc.and_(protected_in(ctx, pending_ids), pc.invert(pc.or_(back, outside)))
    # Back under another spelling (the normal forms ``run`` and ``apply`` judge by).
    rest = pc.invert(pc.or_(pc.or_(back, outside), protected))
    near = pc.and_(rest, pc.is_in(pending_ids, value_set=near_matches(
        pending_ids.filter(rest), source).ids.cast(pending_ids.type)))
    # Held whole in another column of it (the last look ``run`` takes before a delete).
    rest = pc.and_(rest, pc.invert(near))
    elsewhere = pc.and_(rest, pc.is_in(pending_ids, value_set=in_other_columns(
        ctx.job.source, read, pending_ids.filter(rest)).cast(pending_ids.type)))
    kept = pc.or_(pc.or_(pc.invert(rest), near), elsewhere)
    to_send = pending_ids.filter(pc.invert(kept)).to_pylist()
    # No backup, no delete: ids whose record is no longer in the run's backup (deleted,
    # pruned or damaged since) are left to a fresh run, which backs them up again.
    unbacked = without_backup(ctx, rec, old.run_id, to_send)
    if unbacked:
        to_send = [i for i in to_send if i not in unbacked]
    skipped = [(i, reason) for mask, reason in (
        (back, SKIP_BACK_IN_SOURCE), (outside, SKIP_OUT_OF_SCOPE), (protected, SKIP_PROTECTED),
        (near, SKIP_NEAR_MATCH), (elsewhere, SkipReason.IN_OTHER_COLUMN),
    ) for i in pending_ids.filter(mask).to_pylist()]
    skipped += [(i, SkipReason.NO_BACKUP) for i in sorted(unbacked)]
    journal.record_outcomes(ctx.run_id, old.run_id, None,
                            [(i, SKIPPED, reason) for i, reason in skipped],
                            ctx.clock.utcnow().timestamp())
    rec.plan = Plan(
        to_delete=pa.array(to_send, pa.string()),
        skipped_ids=pa.array([i for i, _ in skipped], pa.string()),
        skipped_reasons=pa.array([str(reason) for _, reason in skipped], pa.string()),
        source=IdStats(rows=len(source), empty=0, duplicates=0),
        remote=IdStats(rows=0, empty=0, duplicates=0),
    )
    rec.summary.update(to_delete=len(to_send), skipped=rec.plan.skipped_counts(),
                        inventory={"source": "journal", "plan_run": old.run_id})
    log_skipped(ctx, rec.plan.skipped_ids.to_pylist(),
                      rec.plan.skipped_reasons.to_pylist())
    code, message = send_deletes(ctx, rec, journal, backend, old.run_id, to_send)
    if not journal.resendable(old.run_id):
        journal.set_status(old.run_id, RESUMED)
    if unbacked:
        message += (f"; {len(unbacked)} skipped (no_backup): "
                    f"{rec.summary['backup_lost']}")
    return code, f"resumed {old.run_id}: {message}"


def without_backup(ctx: RunContext, rec: RunRecord, plan_run: str,
                   ids: list[str]) -> set[str]:
    """The ids of ``ids`` with no record in ``plan_run``'s backup: the backup was deleted,
    pruned or damaged between the crash and this resume (a damaged backup's readable
    records still count)."""
    if not ids:
        return set()
    stored = backup_store(ctx.config)
    where = stored.where(ctx.job.name, plan_run)
    records = stored.read(ctx.job.name, plan_run)
    found: set[str] = set()
    problem = f"the backup {where} is missing"
    if records is not None:
        try:
            found = set(backups.backed_up(records, where))
        except backups.BackupDamaged as exc:
            problem = str(exc)
            found = set(exc.found)
    missing = set(ids) - found
    if missing:
        rec.summary["backup_lost"] = (
            f"{problem}; they were not deleted, and a fresh run backs them up again")
        ctx.log.error("resume.no_backup", path=where, ids=len(missing), reason=problem)
    return missing
