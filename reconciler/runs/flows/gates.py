"""What a fresh plan must pass before it may delete: scope, protect lists, near
matches, the source's health, grace, then the caps (the order is explained in safety.py).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.core.errors import SafetyRefusal, SourceError
from reconciler.core.gracetime import GraceTick
from reconciler.core.gracetime import tick as grace_tick
from reconciler.core.nearmatch import NearMatches, near_matches
from reconciler.core.plan import IdStats, Plan, defer
from reconciler.core.safety import (
    SKIP_NEAR_MATCH,
    SKIP_PENDING_GRACE,
    SKIP_PROTECTED,
    Gate,
    Grace,
    SourceFacts,
    grace_split,
    judge_caps,
    judge_source,
    missing_from,
    placeholder_ids,
    protected_mask,
    refusal,
)
from reconciler.core.scope import SKIP_OUT_OF_SCOPE, in_scope_mask
from reconciler.core.settings import IdFile
from reconciler.core.states import SkipReason
from reconciler.runs.context import RunContext, RunRecord
from reconciler.sources.lastlook import in_other_columns
from reconciler.sources.reader import SourceRead, read_source
from reconciler.store import Store


def judge(ctx: RunContext, rec: RunRecord, journal: Store, plan: Plan, source: pa.Array,
          remote: pa.Array, now: float, read: SourceRead | None) -> tuple[Plan, str | None]:
    """Skip what is not ours to delete, gate the source, defer what is within grace,
    then cap what is due now (the order is explained in safety.py)."""
    bare_plan = ctx.dry_run and ctx.request.plan_out is None
    plan, near = skip_not_ours(ctx, plan, source, read, look=not bare_plan)
    gate_source(ctx, rec, journal, plan, source, near, now, read)
    plan, grace, clock = split_grace(ctx, rec, journal, plan, now)
    if read is not None and bare_plan and len(plan.to_delete):
        # A bare 'plan' looks only at the ids due now (it reads every column only when
        # something is due), so what it lists to delete is what the run would delete.
        plan = last_look(ctx, plan, read)
    if not ctx.dry_run:
        # Recorded before the caps judge: a healthy source's absences count even on a
        # run a cap refuses, so grace moves on and a saved plan can hold the due ids.
        journal.replace_absences(ctx.job.name, ctx.target, grace.absences())
        journal.set_grace_mark(ctx.job.name, ctx.target, clock.mark)
    caps_refusal = judge_the_caps(ctx, rec, journal, plan, remote, now, clock)
    rec.summary.update(to_delete=len(plan.to_delete), skipped=plan.skipped_counts())
    return plan, caps_refusal


def skip_not_ours(ctx: RunContext, plan: Plan, source: pa.Array, read: SourceRead | None,
                  *, look: bool) -> tuple[Plan, NearMatches]:
    """Out of scope, protected, near matches and, with ``look``, ids held in another
    column: never deletions, whatever the source gates say."""
    plan = defer(plan, pc.invert(in_scope_mask(plan.to_delete, ctx.job.scope)),
                 SKIP_OUT_OF_SCOPE)
    plan = defer(plan, protected_in(ctx, plan.to_delete), SKIP_PROTECTED)
    near = near_matches(plan.to_delete, source)
    plan = defer(plan, pc.is_in(plan.to_delete, value_set=near.ids), SKIP_NEAR_MATCH)
    if read is not None and look:
        # The last look before a delete (a real run, or a plan saved for 'apply'), at every
        # missing id: a broken export is refused on its first run, before grace.
        plan = last_look(ctx, plan, read)
    return plan, near


def gate_source(ctx: RunContext, rec: RunRecord, journal: Store, plan: Plan,
                source: pa.Array, near: NearMatches, now: float,
                read: SourceRead | None) -> None:
    """Judge the source as a whole; a source refused here records nothing."""
    rules = ctx.job.safety
    placeholders, placeholder = placeholder_ids(source)
    facts = SourceFacts(
        path=str(ctx.job.source.path),
        age_seconds=now - (read.identity.mtime if read else
                           ctx.job.source.path.stat().st_mtime),
        rows=plan.source.rows, unique=plan.source.unique, empty=plan.source.empty,
        last_unique=journal.last_source_ids(ctx.job.name, ctx.target),
        missing_canaries=missing_from(source, rules.canary_ids),
        near_matches=len(near.ids), near_match_kinds=near.kinds,
        final_newline=read.final_newline if read else None,
        mtime=read.identity.mtime if read else None,
        last_mtime=journal.last_source_mtime(ctx.job.name, ctx.target),
        placeholders=placeholders, placeholder=placeholder,
    )
    if read is not None and isinstance(rec.summary.get("source"), dict):
        rec.summary["source"]["mtime"] = read.identity.mtime  # the next run's baseline
    source_gates = judge_source(rules, facts)
    record_gates(ctx, rec, source_gates)
    source_reason = refusal(source_gates)
    if source_reason is not None:
        raise SafetyRefusal(source_reason)  # a refused source records no absence


def gate_todays_source(ctx: RunContext, rec: RunRecord, journal: Store, source: pa.Array,
                       stats: IdStats, read: SourceRead) -> None:
    """The source gates over the export a resume or an apply reads to drop the ids that
    came back: cut short (still being written), stale, shrunk or full of empty ids, it
    would hide some. Ids back under another spelling are skipped one by one by the
    caller, so the near-match share is not judged here."""
    none = pa.array([], pa.string())
    gate_source(ctx, rec, journal, Plan(to_delete=none, skipped_ids=none,
                                        skipped_reasons=none, source=stats, remote=stats),
                source, NearMatches(none, {}), ctx.clock.utcnow().timestamp(), read)


def split_grace(ctx: RunContext, rec: RunRecord, journal: Store, plan: Plan,
                now: float) -> tuple[Plan, Grace, GraceTick]:
    """Defer the ids not missing long enough, by runs and by grace's own clock."""
    rules = ctx.job.safety
    clock = grace_tick(journal.grace_mark(ctx.job.name, ctx.target), now, ctx.clock.boot())
    grace = grace_split(plan.to_delete, journal.absences(ctx.job.name, ctx.target), rules,
                        clock.mark.reading)
    due, pending = int(grace.due.sum()), int((~grace.due).sum())
    plan = defer(plan, pa.array(~grace.due), SKIP_PENDING_GRACE)
    rec.summary["pending_grace"] = pending
    rec.summary["grace"] = {"runs": rules.grace_runs, "period_seconds": rules.grace_period,
                            "due": due, "pending": pending, "clock": clock.as_dict()}
    if clock.disagrees:
        ctx.log.warning("grace.clocks_disagree", **clock.as_dict(),
                        detail="the wall clock moved otherwise than the boot clock since "
                               "the last run; grace counts the smaller")
    period = "off" if rules.grace_period is None else _hours(rules.grace_period)
    record_gates(ctx, rec, [Gate(
        "grace", True, f"{due} ids due, {pending} pending grace "
        f"(grace_runs {rules.grace_runs} and grace_period {period})",
        {"due": due, "pending": pending, "grace_runs": rules.grace_runs,
         "grace_period_seconds": rules.grace_period},
    )])
    return plan, grace, clock


def judge_the_caps(ctx: RunContext, rec: RunRecord, journal: Store, plan: Plan,
                   remote: pa.Array, now: float, clock: GraceTick) -> str | None:
    """The caps, on what is due now; a refusal ends the run unless the plan is saved
    (``plan --out``: the way past a cap is that file, applied with ``--approve``)."""
    cap_gates = judge_caps(ctx.job.safety, len(plan.to_delete), catalog_size(ctx, plan, remote),
                           deleted_today(ctx, journal, now, clock))
    record_gates(ctx, rec, cap_gates)
    caps_refusal = refusal(cap_gates)
    if caps_refusal is not None and ctx.request.plan_out is None:
        raise SafetyRefusal(caps_refusal)
    return caps_refusal


def last_look(ctx: RunContext, plan: Plan, read: SourceRead) -> Plan:
    """Skip as ``in_other_column`` the ids to delete that the export still holds, whole, in
    another column; refuse a header repeated mid-file (``reader.in_other_columns``)."""
    elsewhere = in_other_columns(ctx.job.source, read, plan.to_delete)
    return defer(plan, pc.is_in(plan.to_delete, value_set=elsewhere),
                 SkipReason.IN_OTHER_COLUMN)


def catalog_size(ctx: RunContext, plan: Plan, remote: pa.Array) -> int:
    """The catalog the caps are a share of: the job's own scope of it, when it has one."""
    if not ctx.job.scope:
        return plan.remote.unique
    owned = remote.filter(in_scope_mask(remote, ctx.job.scope))
    return int(pc.count_distinct(owned).as_py() or 0)


def deleted_today(ctx: RunContext, journal: Store, now: float,
                  clock: GraceTick | None = None) -> int:
    """The catalog's deletes of the last 24 h, by any job or config; for a scoped job, those
    in its scope: its budget is a share of its scope, and a large neighbour's deletes must
    not spend a small scope's budget every day.

    The 24 h are widened by what the wall clock jumped ahead since the job's last run beyond
    what grace's clock counted (``clock``, or ticked here from the stored mark): deletes
    stamped by a clock that ran days behind, then was corrected, still count."""
    if clock is None:
        clock = grace_tick(journal.grace_mark(ctx.job.name, ctx.target), now, ctx.clock.boot())
    jump = max(0.0, (clock.wall_elapsed or 0.0) - (clock.counted or 0.0))
    since = now - 86400 - jump
    if not ctx.job.scope:
        return journal.queued_since(since, ctx.target)
    ids = pa.array(journal.queued_ids_since(since, ctx.target), pa.string())
    return int(pc.sum(in_scope_mask(ids, ctx.job.scope)).as_py() or 0)


def record_gates(ctx: RunContext, rec: RunRecord, gates: list[Gate]) -> None:
    rec.summary.setdefault("gates", []).extend(g.as_dict() for g in gates)
    for gate in gates:
        (ctx.log.info if gate.passed else ctx.log.error)(
            "gate", name=gate.name, passed=gate.passed, detail=gate.detail, **gate.numbers)


def protected_in(ctx: RunContext, ids: pa.Array) -> pa.Array:
    rules = ctx.job.safety
    listed = [protect_list(ctx, path) for path in rules.protect_files]
    values = pa.concat_arrays([a.cast(pa.string()) for a in listed]) if listed else \
        pa.array([], pa.string())
    return protected_mask(ids, rules.protect, values)


def protect_list(ctx: RunContext, path: Path) -> pa.Array:
    """A ``protect = ["file:..."]`` list, read as strictly as the source: one cut
    short (no line break after its last row) would protect fewer ids."""
    read = read_source(IdFile(path))
    if read.final_newline is False and ctx.job.safety.require_final_newline:
        raise SourceError(
            f"{path}: the last row of this protect list has no line break: it may be "
            "cut short (still being written?); nothing was deleted "
            "(require_final_newline = false accepts it)")
    return read.ids


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h"
