"""Which actions a job's backend can do, asked once before any lock or journal row.

The backends declare their capabilities (``reconciler.backends.registry``); this is the
runs' one door to that answer.
"""

from __future__ import annotations

from reconciler.backends import registry
from reconciler.core.settings import Job
from reconciler.core.states import Action


def refuse_unsupported(job: Job, action: Action) -> None:
    """Raise ConfigError (exit 2) when ``job``'s backend cannot do ``action``."""
    registry.refuse_unsupported(job, str(action))
