"""restore RUN_ID: recreate the items a run deleted, from its backup (bulk upserts).

Ids the backend cannot address (an id containing ``/``) are skipped with the reason
``unaddressable`` and the rest goes on; ids asked for (``--ids``) but not in the backup
are skipped as ``not_in_backup``. Stopped by a signal, the rest is ``not_sent``: run the
same restore again (upserts are idempotent) to finish it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.backends.base import Record
from reconciler.core.batching import BatchShape
from reconciler.core.errors import EXIT_ITEMS_FAILED, EXIT_OK
from reconciler.core.states import RunStatus, SkipReason
from reconciler.runs.context import Context, FlowResult
from reconciler.runs.flows.common import (
    addressable,
    counts_summary,
    execute,
    not_done,
    report_plan,
)


@dataclass(frozen=True)
class RestoreInput:
    run_id: str  # the run whose backup is restored
    records: dict[str, dict[str, Any]]  # item id -> properties, from the backup (each once)
    wanted: tuple[str, ...]  # sorted ids to restore
    absent: tuple[str, ...] = ()  # asked for, not in the backup


def restore_flow(given: RestoreInput, ctx: Context) -> FlowResult:
    backend = ctx.factory(ctx.job, ctx.clock, ctx.log)
    try:
        to_send, unaddressable = addressable(backend, given.wanted)
        records = given.records
        limits = ctx.job.limits
        shape = BatchShape(limits.max_batch_ids, limits.max_batch_bytes,
                           entry=lambda i: {"item_id": i, "properties": records[i],
                                            "upsert": True})
        result = execute(
            ctx, backend, to_send, "restoring", shape=shape,
            send=lambda ids: backend.restore([Record(i, records[i]) for i in ids]))
    finally:
        backend.close()
    skipped = sorted([(i, str(SkipReason.NOT_IN_BACKUP)) for i in given.absent]
                     + [(i, str(SkipReason.UNADDRESSABLE)) for i in unaddressable],
                     key=lambda s: (s[1], s[0]))
    plan = report_plan(to_send, skipped)
    summary = counts_summary(result, "restored")
    summary.update(to_restore=len(to_send), skipped=plan.skipped_counts())
    bad = not_done(result)
    restored = summary["restored"]
    message = f"restored {restored} of {len(given.wanted)} items of run {given.run_id}"
    if unaddressable:
        message += f" ({len(unaddressable)} skipped: unaddressable)"
    status = RunStatus.FINISHED
    if result.stopped:
        status = RunStatus.STOPPED
        summary["error"] = result.stopped
        message += f"; {result.stopped}"
    ctx.log.info("restore.done", restore_of=given.run_id, restored=restored, not_restored=bad)
    return FlowResult(EXIT_ITEMS_FAILED if bad else EXIT_OK, message, summary, status,
                      result.outcomes, plan, report_action="restored")
