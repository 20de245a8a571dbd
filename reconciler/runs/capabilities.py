"""Which actions a job's backend can do, and whether the job may touch its catalog at all
(ownership), asked once before any lock or journal row.

The backends declare their capabilities (``reconciler.backends.registry``); this is the
runs' one door to that answer.
"""

from __future__ import annotations

from reconciler.backends import registry
from reconciler.core.errors import ConfigError
from reconciler.core.fingerprint import target_fingerprint
from reconciler.core.scope import conflict_line, ownership_conflicts
from reconciler.core.settings import Config, Job
from reconciler.core.states import Action


def refuse_unsupported(job: Job, action: Action) -> None:
    """Raise ConfigError (exit 2) when ``job``'s backend cannot do ``action``."""
    registry.refuse_unsupported(job, str(action))


def check_ownership(config: Config, job: Job) -> None:
    """Refuse (exit 2) a job that shares its catalog with another job of the config, unless
    both declare scopes that are provably disjoint."""
    owners = {j.name: (target_fingerprint(j.target), j.scope) for j in config.jobs.values()}
    for a, b, why in ownership_conflicts(owners):
        if job.name in (a, b):
            raise ConfigError(f"{config.path}: {conflict_line(a, b, why)}")
