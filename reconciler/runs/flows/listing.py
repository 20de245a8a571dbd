"""The remote side of a run: the listing (or the export or ledger standing for it), its
records streamed to a snapshot, and the backup taken from them before anything is deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.backends.base import Backend, ReadBudgeted
from reconciler.core.errors import SourceError
from reconciler.core.plan import Plan, defer
from reconciler.core.states import SkipReason
from reconciler.report.html import key_properties
from reconciler.runs.context import RunContext, RunRecord
from reconciler.runs.progress import Progress
from reconciler.sources.reader import read_ids
from reconciler.store import Store, backup_store, backups, catalog_budget

SKIP_NO_BACKUP = SkipReason.NO_BACKUP

_MAX_PROPERTIES = 1_000_000  # listed items whose key properties are kept for the report


def ledger_ids(ctx: RunContext, rec: RunRecord, journal: Store) -> pa.Array:
    """Ids seen in earlier source exports and not deleted since: the remote catalog as
    far as this tool knows it. It proves nothing, so it is never called complete."""
    ids = journal.ledger(ctx.job.name, ctx.target)
    rec.summary["inventory"] = {"source": "ledger", "found": len(ids),
                                 "detail": "ids seen in earlier source exports"}
    rec.summary["inventory_complete"] = False
    return pa.array(ids, pa.string())


def list_remote(ctx: RunContext, rec: RunRecord, backend: Backend,
                snapshot: backups.RecordWriter | None = None) -> pa.Array:
    spec = ctx.job.target.inventory
    if spec is not None:
        try:
            remote = read_ids(spec)
        except SourceError as exc:
            raise SourceError(f"inventory export: {exc}") from None
        rec.summary["inventory"] = {"source": "export", "path": str(spec.path)}
        rec.summary["inventory_complete"] = True
        return remote
    started = ctx.clock.monotonic()
    share_read_budget(ctx, backend)
    listing = Progress("listing", ctx.log)

    def sink(records: Sequence[dict[str, Any]], total: int | None) -> None:
        listing.update(len(records), total)
        keep_properties(ctx, rec, records)
        if snapshot is not None:
            snapshot.write(records)

    try:
        inventory = backend.inventory(sink)
    finally:
        listing.close()
    rec.summary["inventory_complete"] = inventory.complete
    rec.summary["inventory"] = {
        "source": "api", "expected": inventory.expected, "found": len(inventory.ids),
        "requests": inventory.requests, "detail": inventory.detail,
    }
    rec.summary["assumptions"] = [a.as_dict() for a in inventory.assumptions]
    ctx.log.info(
        "inventory.listed", found=len(inventory.ids), expected=inventory.expected,
        complete=inventory.complete, requests=inventory.requests,
        seconds=round(ctx.clock.monotonic() - started, 3),
    )
    return pa.array(inventory.ids, type=pa.string())


def remote_ids(ctx: RunContext, rec: RunRecord, journal: Store, backend: Backend,
               snapshot: backups.RecordWriter | None) -> pa.Array:
    """The catalog's ids: the ledger, or a listing whose records stream to ``snapshot``
    (closed here, listed or not, for the backup to read)."""
    try:
        if ctx.job.target.ledger:
            return ledger_ids(ctx, rec, journal)
        return list_remote(ctx, rec, backend, snapshot)
    finally:
        if snapshot is not None:
            snapshot.close()


def share_read_budget(ctx: RunContext, backend: Backend) -> None:
    """List and read calls count against a budget shared by every process, per catalog."""
    # ``backend`` is wrapped (RedactingBackend): ask what it can do, not what class it is.
    if isinstance(backend, ReadBudgeted):
        backend.share_read_budget(catalog_budget(
            ctx.config, backend.read_budget_key, *backend.read_rate))


def keep_properties(ctx: RunContext, rec: RunRecord, records: Sequence[dict[str, Any]]) -> None:
    """A short line of each listed item's properties, for the plan and report.html."""
    kept = rec.html.properties
    if len(kept) >= _MAX_PROPERTIES:
        return
    for record in records:
        text = key_properties(record.get("properties"))
        if text:
            kept[str(record["item_id"])] = text


def snapshot_writer(ctx: RunContext) -> backups.RecordWriter | None:
    """Listed records stream here on real runs and applies, for the backup (see
    backups.py): apply's backup comes from this listing, with no GET per id."""
    if ctx.dry_run or ctx.job.target.inventory is not None or ctx.job.target.ledger:
        return None
    path = backups.backup_dir(ctx.config.state_dir, ctx.job.name) / \
        f"{ctx.run_id}.inventory{backups.SUFFIX}"
    return backups.RecordWriter(path)


def back_up(ctx: RunContext, rec: RunRecord, backend: Backend, plan: Plan,
            snapshot: backups.RecordWriter | None, missing_reason: str = "") -> Plan:
    """Back up every id about to be deleted; ids with no record to back up are skipped."""
    wanted = set(plan.to_delete.to_pylist())
    if not wanted:  # nothing to delete: no (empty) backup file
        if snapshot is not None:
            snapshot.path.unlink(missing_ok=True)
        return plan
    read_back: list[str] = []
    if snapshot is not None:
        records, read_back = listed_records(ctx, rec, backend, snapshot, wanted,
                                            missing_reason)
    elif not backend.reads_back:
        # The API cannot read an item back: the backup keeps the ids, which is what a
        # re-upload needs to know; there are no properties to keep.
        records = [{"item_id": i, "properties": None} for i in sorted(wanted)]
    else:
        read_back = sorted(wanted)
        records = read_records_back(ctx, backend, read_back)
    written, path = backup_store(ctx.config).write(ctx.job.name, ctx.run_id, records)
    rec.summary["backup"] = {"path": path, "records": written, "read_back": len(read_back)}
    ctx.log.info("backup.written", path=path, records=written)
    missing = wanted - {r["item_id"] for r in records}
    return defer(plan, pc.is_in(plan.to_delete, value_set=pa.array(sorted(missing),
                                                                 pa.string())),
                 missing_reason or SKIP_NO_BACKUP)


def listed_records(ctx: RunContext, rec: RunRecord, backend: Backend,
                   snapshot: backups.RecordWriter, wanted: set[str], missing_reason: str
                   ) -> tuple[list[dict[str, Any]], list[str]]:
    """The backup's records from the listing this run made anyway, and the ids that
    still had to be read back one GET each (through the read budget): the listed ids
    when the listing carries no properties (Adobe Target's search: a backup of bare ids
    would restore empty items), and, on apply (``missing_reason``), ids an incomplete
    listing did not show (not proven gone)."""
    records = list(backups.records_for(snapshot.path, wanted))
    snapshot.path.unlink()
    if not backend.reads_back:
        return records, []
    listed = {str(r["item_id"]) for r in records}
    read_back: list[str] = []
    if not backend.lists_properties:
        read_back, records = sorted(listed), []
    if missing_reason and not rec.summary.get("inventory_complete"):
        read_back += sorted(wanted - listed)
    if read_back:
        records += read_records_back(ctx, backend, read_back)
    return records, read_back


def read_records_back(ctx: RunContext, backend: Backend, ids: list[str]) -> list[dict[str, Any]]:
    share_read_budget(ctx, backend)
    return [{"item_id": r.item_id, "properties": dict(r.properties)}
            for r in backend.read_back(ids)]
