"""``restore`` and ``purge``: the two operations outside the normal plan-and-delete run.

``restore RUN_ID`` recreates the items a run deleted, from its backup, through bulk
partial update with ``upsert: true``, under the same rate budget, with per-item outcomes.
``purge JOB --confirm CATALOG_ID`` deletes every item of a catalog, only when the catalog
id is typed again by hand, and only after a backup of the whole catalog is on disk. No
schedule and no config key can reach it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from reconciler.core.clock import Clock, SystemClock
from reconciler.core.errors import ConfigError
from reconciler.core.settings import Config, IdFile
from reconciler.core.states import Action
from reconciler.runs.backend import default_backend
from reconciler.runs.capabilities import check_ownership, refuse_unsupported
from reconciler.runs.claims import claim_problems
from reconciler.runs.context import BackendFactory, RunResult
from reconciler.runs.flows.purge import Ask, purge_flow
from reconciler.runs.flows.restore import RestoreInput, restore_flow
from reconciler.runs.lifecycle import run_action
from reconciler.runs.signals import StopFlag
from reconciler.sources.reader import read_ids
from reconciler.store import backup_store, backups, open_store


def restore(config: Config, run_id: str, ids_file: Path | None = None,
            clock: Clock | None = None, *, stop: StopFlag | None = None,
            factory: BackendFactory = default_backend) -> RunResult:
    """Check the request (exit 2, no row) and run the restore flow in the lifecycle."""
    store = open_store(config)
    try:
        run = store.run(run_id)
    finally:
        store.close()
    if run is None:
        raise ConfigError(f"no run {run_id!r} in the journal of {config.state_dir}")
    job = config.select([run.job])[0]
    refuse_unsupported(job, Action.RESTORE)
    stored = backup_store(config)
    backup = stored.read(job.name, run_id)
    if backup is None:
        raise ConfigError(f"no backup for run {run_id} ({stored.where(job.name, run_id)})")
    written = (run.summary.get("backup") or {}).get("records")
    try:
        records = backups.backed_up(backup, stored.where(job.name, run_id),
                                    written if isinstance(written, int) else None)
    except backups.BackupDamaged as exc:
        raise ConfigError(f"{exc}: nothing was restored") from None
    wanted = sorted(records)
    absent: list[str] = []
    if ids_file is not None:
        asked = set(read_ids(IdFile(ids_file)).to_pylist())
        wanted = sorted(asked & set(records))
        absent = sorted(asked - set(records))
    given = RestoreInput(run_id, records, tuple(wanted), tuple(absent))
    return run_action(config, job, Action.RESTORE, partial(restore_flow, given),
                      clock=clock or SystemClock(), stop=stop, factory=factory,
                      restore_of=run_id, to_restore=len(wanted))


def purge(config: Config, job_name: str, confirm: str, clock: Clock | None = None,
          ask: Ask | None = None, *, stop: StopFlag | None = None,
          factory: BackendFactory = default_backend) -> RunResult:
    """``ask`` (a terminal's typed confirmation) hears the item count once the backup is
    written; False cancels before anything is deleted."""
    job = config.select([job_name])[0]
    catalog = job.target.catalog_id
    check_ownership(config, job)
    refuse_unsupported(job, Action.PURGE)
    clock = clock or SystemClock()
    # Another config sharing this state may own ids of the catalog: purge deletes them all.
    claimed = claim_problems(config, job, clock.utcnow().timestamp())
    if claimed:
        raise ConfigError(f"purge refused: {config.path}: {claimed[0]}")
    if job.dry_run:
        raise ConfigError(
            f"purge refused: job {job.name!r} has dry_run = true in its config: it deletes "
            "nothing, and nothing was deleted")
    if job.scope:
        raise ConfigError(
            f"purge refused: job {job.name!r} owns only its scope of catalog {catalog!r} "
            "and purge deletes every item; nothing was deleted")
    if confirm != catalog:
        raise ConfigError(
            f"purge refused: --confirm must repeat the catalog id of job {job.name!r} "
            f"exactly ({catalog!r}); nothing was deleted")
    return run_action(config, job, Action.PURGE, partial(purge_flow, ask),
                      clock=clock, stop=stop, factory=factory, purge=True)
