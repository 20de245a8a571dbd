"""Claims on a catalog: ownership across configs that share one state (core/ownership.py).

A run that may delete leaves its claim before it looks at the others, so that when two
configs collide both stop, not only the one that came second.
"""

from __future__ import annotations

from reconciler.core.errors import ConfigError
from reconciler.core.fingerprint import target_fingerprint
from reconciler.core.ownership import (
    Claim,
    ConfigView,
    foreign_conflict_line,
    foreign_conflicts,
)
from reconciler.core.settings import Config, Job
from reconciler.store.base import Store
from reconciler.store.journal import JOURNAL_NAME


def claim_of(config: Config, job: Job, now: float) -> Claim:
    """The config by its real path: ``reconciler.toml`` run from two folders is two configs,
    and one config reached through a symlink or a relative path is one."""
    return Claim(job.name, str(job.source.path), str(config.path.resolve()), tuple(job.scope),
                 now)


def config_view(config: Config) -> ConfigView:
    path = config.path.resolve()
    try:
        edited_at = path.stat().st_mtime
    except OSError:  # no file (a config built in code): nothing was edited away
        edited_at = float("inf")
    return ConfigView(str(path), frozenset(config.jobs), edited_at)


def stake_claim(config: Config, job: Job, store: Store, target: str, now: float, *,
                record: bool) -> None:
    """Refuse (exit 2, one line) while another config's job may share this catalog's ids;
    with ``record``, first leave this job's claim (a run that may delete)."""
    mine = claim_of(config, job, now)
    if record:
        store.claim(target, mine)
    conflicts = foreign_conflicts(mine, store.claims(target), now, config_view(config))
    if conflicts:
        raise ConfigError(f"{config.path}: {foreign_conflict_line(mine, conflicts[0])}")


def claim_problems(config: Config, job: Job, now: float) -> list[str]:
    """For ``check``: the foreign claims that would refuse this job's runs (none when the
    state does not exist yet)."""
    if config.state is None and not (config.state_dir / JOURNAL_NAME).is_file():
        return []
    from reconciler.store import open_store

    store = open_store(config)
    try:
        mine = claim_of(config, job, now)
        return [foreign_conflict_line(mine, other) for other in
                foreign_conflicts(mine, store.claims(target_fingerprint(job.target)), now,
                                  config_view(config))]
    finally:
        store.close()
