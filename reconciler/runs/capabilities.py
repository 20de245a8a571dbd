"""Which actions a job's backend can do, asked once before any lock or journal row.

For now derived from what each backend does today; the backend registry will declare it.
"""

from __future__ import annotations

from reconciler.core.errors import ConfigError
from reconciler.core.settings import ADOBE_CLASSIC, ADOBE_TARGET, Job
from reconciler.core.states import Action

# backend -> actions it cannot do, and why (what to do instead).
_UNSUPPORTED: dict[str, dict[Action, str]] = {
    ADOBE_TARGET: {
        Action.RESTORE: "re-import the entities from the backup file with your catalog feed",
        Action.PURGE: "delete the entities in Adobe Target itself",
    },
    ADOBE_CLASSIC: {
        Action.RESTORE: "re-upload the catalog",
        Action.PURGE: "adobe-classic cannot list its entities, so the whole catalog cannot "
                      "be backed up first",
    },
}


def refuse_unsupported(job: Job, action: Action) -> None:
    """Raise ConfigError (exit 2) when ``job``'s backend cannot do ``action``."""
    why = _UNSUPPORTED.get(job.target.backend, {}).get(action)
    if why is not None:
        raise ConfigError(f"{action} refused: backend {job.target.backend} of job {job.name!r} "
                          f"does not support {action} ({why}); nothing was changed")
