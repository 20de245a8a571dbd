"""``restore`` and ``purge``: the two operations outside the normal plan-and-delete run.

``restore RUN_ID`` recreates the items a run deleted, from its backup, through bulk
partial update with ``upsert: true``, under the same rate budget, with per-item outcomes.
``purge JOB --confirm CATALOG_ID`` deletes every item of a catalog, only when the catalog
id is typed again by hand, and only after a backup of the whole catalog is on disk. No
schedule and no config key can reach it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from reconciler.backends.base import Record
from reconciler.backends.registry import refuse_unsupported
from reconciler.core.batching import BatchShape
from reconciler.core.clock import Clock, SystemClock
from reconciler.core.errors import (
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    ConfigError,
    SafetyRefusal,
)
from reconciler.core.fingerprint import target_fingerprint
from reconciler.core.plan import IdStats, Plan
from reconciler.core.settings import Config, IdFile
from reconciler.logging import get_logger
from reconciler.report.files import write_report
from reconciler.runs.executor import FAILED, NOT_SENT, QUEUED, UNKNOWN, Executor
from reconciler.runs.runner import (
    RunResult,
    base_summary,
    check_ownership,
    default_backend,
    iso_now,
    new_run_id,
    report_dir_for,
)
from reconciler.sources.reader import read_ids
from reconciler.store import backup_store, backups, catalog_budget, job_lease, open_store
from reconciler.store.journal import FINISHED, REFUSED

SKIP_NOT_IN_BACKUP = "not_in_backup"


def restore(config: Config, run_id: str, ids_file: Path | None = None,
            clock: Clock | None = None) -> RunResult:
    clock = clock or SystemClock()
    journal = open_store(config)
    try:
        run = journal.run(run_id)
        if run is None:
            raise ConfigError(f"no run {run_id!r} in the journal of {config.state_dir}")
        job = config.select([run.job])[0]
        refuse_unsupported(job, "restore")  # before the lock and the journal row
        stored = backup_store(config)
        backup = stored.read(job.name, run_id)
        if backup is None:
            raise ConfigError(f"no backup for run {run_id} ({stored.where(job.name, run_id)})")
        records = {r["item_id"]: dict(r.get("properties") or {}) for r in backup}
        wanted = sorted(records)
        absent: list[str] = []
        if ids_file is not None:
            asked = set(read_ids(IdFile(ids_file)).to_pylist())
            wanted = sorted(asked & set(records))
            absent = sorted(asked - set(records))
        restore_id = new_run_id(clock)
        log = get_logger(job=job.name, run_id=restore_id)
        summary = base_summary(job, restore_id, clock, restore_of=run_id, to_restore=len(wanted))
        with job_lease(config, job.name):
            journal.start_run(restore_id, job.name, False, summary["started_at"],
                              target=target_fingerprint(job.target))
            backend = default_backend(job, clock, log)
            limits = job.limits
            shape = BatchShape(limits.max_batch_ids, limits.max_batch_bytes,
                               entry=lambda i: {"item_id": i, "properties": records[i],
                                                "upsert": True})
            try:
                result = Executor(
                    backend, limits, clock,
                    catalog_budget(config, backend.budget_key, limits.requests_per_window,
                                   limits.window_seconds),
                    send=lambda ids: backend.restore([Record(i, records[i]) for i in ids]),
                    shape=shape,
                ).run(wanted)
            finally:
                backend.close()
            counts = result.counts()
            bad = counts[FAILED] + counts[UNKNOWN] + counts[NOT_SENT]
            summary.update(restored=counts[QUEUED], failed=counts[FAILED],
                           unknown=counts[UNKNOWN], not_sent=counts[NOT_SENT],
                           skipped={SKIP_NOT_IN_BACKUP: len(absent)} if absent else {},
                           finished_at=iso_now(clock),
                           exit_code=EXIT_ITEMS_FAILED if bad else EXIT_OK)
            journal.finish_run(restore_id, FINISHED, summary["exit_code"], summary["finished_at"],
                               summary)
        folder = report_dir_for(config, job, restore_id, None)
        empty = pa.array([], pa.string())
        report_plan = Plan(to_delete=empty, skipped_ids=pa.array(absent, pa.string()),
                           skipped_reasons=pa.array([SKIP_NOT_IN_BACKUP] * len(absent),
                                                    pa.string()),
                           source=IdStats(0, 0, 0), remote=IdStats(0, 0, 0))
        write_report(folder, summary, report_plan, result.outcomes, action="restored")
        log.info("restore.finished", restore_of=run_id, restored=counts[QUEUED], failed=bad)
        message = f"restored {counts[QUEUED]} of {len(wanted)} items of run {run_id}"
        return RunResult(job.name, restore_id, summary["exit_code"], folder, summary, message,
                         result.outcomes)
    finally:
        journal.close()


def purge(config: Config, job_name: str, confirm: str, clock: Clock | None = None,
          ask: Callable[[int], bool] | None = None) -> RunResult:
    """``ask`` (a terminal's typed confirmation) hears the item count once the backup is
    written; False cancels before anything is deleted."""
    job = config.select([job_name])[0]
    refuse_unsupported(job, "purge")  # before the lock and the journal row
    catalog = job.target.catalog_id
    check_ownership(config, job)
    if job.scope:
        raise ConfigError(
            f"purge refused: job {job.name!r} owns only its scope of catalog {catalog!r} "
            "and purge deletes every item; nothing was deleted")
    if confirm != catalog:
        raise ConfigError(
            f"purge refused: --confirm must repeat the catalog id of job {job.name!r} "
            f"exactly ({catalog!r}); nothing was deleted")
    clock = clock or SystemClock()
    run_id = new_run_id(clock)
    log = get_logger(job=job.name, run_id=run_id)
    summary = base_summary(job, run_id, clock, purge=True)
    with job_lease(config, job.name) as lease:
        journal = open_store(config, lease)
        try:
            journal.start_run(run_id, job.name, False, summary["started_at"],
                              target=target_fingerprint(job.target))
            backend = default_backend(job, clock, log)
            try:
                path = backups.backup_path(config.state_dir, job.name, run_id)
                writer = backups.RecordWriter(path)
                inventory = backend.inventory(lambda records, _total: writer.write(records))
                writer.close()
                if not inventory.complete:
                    raise SafetyRefusal(
                        f"purge refused: the listing found {len(inventory.ids)} of "
                        f"{inventory.expected} items, so the whole catalog cannot be backed "
                        "up first; nothing was deleted")
                log.warning("purge.backup_written", path=str(path), records=writer.count)
                if ask is not None and not ask(len(inventory.ids)):
                    journal.finish_run(run_id, REFUSED, EXIT_REFUSED, iso_now(clock), summary)
                    raise SafetyRefusal("purge not confirmed at the prompt; nothing was deleted")
                backend.delete_all()
            finally:
                backend.close()
            summary.update(deleted=len(inventory.ids), remote_ids=len(inventory.ids),
                           inventory_complete=True, backup={"path": str(path),
                                                            "records": writer.count},
                           finished_at=iso_now(clock), exit_code=EXIT_OK)
            log.warning("purge.done", deleted=len(inventory.ids), catalog_id=catalog)
            journal.finish_run(run_id, FINISHED, EXIT_OK, summary["finished_at"], summary)
        finally:
            journal.close()
    folder = report_dir_for(config, job, run_id, None)
    write_report(folder, summary, None, None)
    return RunResult(job.name, run_id, EXIT_OK, folder, summary,
                     f"purged {len(inventory.ids)} items from catalog {catalog}; backup {path}")
