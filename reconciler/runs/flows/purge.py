"""purge JOB --confirm CATALOG_ID: back up the whole catalog, then delete every item it
can address with bulk deletes, in batches, through the executor and the rate budget.

Never the delete-everything call: an id the backend cannot address (an id containing
``/``) could never be restored by any API edit, so it is left in place and listed in the
report (skipped, ``unaddressable``). Stopped by a signal, the rest is ``not_sent``; purge
again to finish (the new backup then holds what is left).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reconciler.core.errors import EXIT_ITEMS_FAILED, EXIT_OK, SafetyRefusal
from reconciler.core.states import RunStatus, SkipReason
from reconciler.runs.context import Context, FlowResult
from reconciler.runs.flows.common import (
    addressable,
    counts_summary,
    execute,
    not_done,
    report_plan,
)
from reconciler.runs.progress import Progress
from reconciler.store import backup_store, backups

Ask = Callable[[int], bool]


def purge_flow(ask: Ask | None, ctx: Context) -> FlowResult:
    """``ask`` hears the count of ids to delete once the backup is written; False cancels."""
    backend = ctx.factory(ctx.job, ctx.clock, ctx.log)
    try:
        path = backups.backup_path(ctx.config.state_dir, ctx.job.name, ctx.run_id)
        writer = backups.RecordWriter(path)
        listing = Progress("listing", ctx.log)

        def sink(records: Sequence[dict[str, Any]], total: int | None) -> None:
            before = writer.count
            writer.write(records)  # each id once
            listing.update(writer.count - before, total)

        try:
            inventory = backend.inventory(sink)
        finally:
            writer.close()
            listing.close()
        ids = sorted(set(inventory.ids))
        if not inventory.complete:
            raise SafetyRefusal(
                f"purge refused: the listing found {len(ids)} of {inventory.expected} items, "
                "so the whole catalog cannot be backed up first; nothing was deleted")
        # Where every other backup goes (the database, with a PostgreSQL state), so that
        # restore finds it on any replica.
        records, where = backup_store(ctx.config).adopt(ctx.job.name, ctx.run_id, path)
        backup = {"path": where, "records": records}
        ctx.log.warning("purge.backup_written", path=where, records=records)
        to_delete, unaddressable = addressable(backend, ids)
        if ctx.stop():
            raise SafetyRefusal("purge stopped on request before any delete; nothing was "
                                "deleted")
        if ask is not None and not ask(len(to_delete)):
            raise SafetyRefusal("purge not confirmed at the prompt; nothing was deleted")
        result = execute(ctx, backend, to_delete, "deleting")
    finally:
        backend.close()
    skipped = [(i, str(SkipReason.UNADDRESSABLE)) for i in unaddressable]
    plan = report_plan(to_delete, skipped)
    summary = counts_summary(result, "deleted")
    summary.update(remote_ids=len(ids), to_delete=len(to_delete), inventory_complete=True,
                   skipped=plan.skipped_counts(), left_in_place=unaddressable[:1000],
                   backup=backup)
    deleted = summary["deleted"]
    catalog = ctx.job.target.catalog_id
    message = f"purged {deleted} of {len(ids)} items from catalog {catalog}; backup {where}"
    if unaddressable:
        message += (f"; {len(unaddressable)} unaddressable ids left in place "
                    "(skipped.csv lists them)")
    status = RunStatus.FINISHED
    if result.stopped:
        status = RunStatus.STOPPED
        summary["error"] = result.stopped
        message += f"; {result.stopped}"
    ctx.log.warning("purge.done", deleted=deleted, catalog_id=catalog,
                    left_in_place=len(unaddressable), not_deleted=not_done(result))
    return FlowResult(EXIT_ITEMS_FAILED if not_done(result) else EXIT_OK, message, summary,
                      status, result.outcomes, plan)
