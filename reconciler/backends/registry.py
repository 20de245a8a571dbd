"""The backends a config may name: one line per API, and the refusals their capabilities imply.

Adding an API: write ``reconciler/backends/<api>.py`` ending in a ``SPEC`` (see
``spec.py`` and the README's "Writing a backend"), its emulator under
``reconciler/emulator/``, its harness in ``tests/backends/test_contract.py``, and add it
to ``BACKENDS`` below. Nothing else names a backend.
"""

from __future__ import annotations

from reconciler.backends import adobe_classic, adobe_target, bloomreach
from reconciler.backends.spec import BackendSpec
from reconciler.core.errors import ConfigError
from reconciler.core.settings import Job

# The order is the order of ``emulator --api`` choices and of "unknown backend" messages;
# the first is the default.
BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec for spec in (bloomreach.SPEC, adobe_target.SPEC, adobe_classic.SPEC)
}
DEFAULT_BACKEND = next(iter(BACKENDS))


def names() -> tuple[str, ...]:
    return tuple(BACKENDS)


def spec_for(name: str) -> BackendSpec:
    """The spec of a configured backend (the config loader has already checked the name)."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})") from None


# The capabilities each action needs. Actions that read the remote ids need ``lists``
# only when the job names no inventory export and no ledger.
ACTION_NEEDS: dict[str, tuple[str, ...]] = {
    "plan": ("lists",), "run": ("lists",), "verify": ("lists",), "apply": ("lists",),
    "restore": ("restores",),
    "purge": ("lists", "purges"),  # a purge backs the whole catalog up from a listing first
}
_INVENTORY_SERVES = ("plan", "run", "verify", "apply")


def unsupported(job: Job, action: str, spec: BackendSpec | None = None) -> str | None:
    """Why ``job``'s backend cannot do ``action`` (one line), or None when it can."""
    if action not in ACTION_NEEDS:
        raise ValueError(f"unknown action {action!r}")
    spec = spec or spec_for(job.target.backend)
    has_inventory = job.target.inventory is not None or job.target.ledger
    for capability in ACTION_NEEDS[action]:
        if capability == "lists" and action in _INVENTORY_SERVES and has_inventory:
            continue
        if not getattr(spec.capabilities, capability):
            reason = spec.why_not.get(capability, f"it declares no '{capability}' capability")
            return (f"job {job.name!r}: {spec.name} cannot {action} ({reason}); "
                    "nothing was changed")
    return None


def refuse_unsupported(job: Job, action: str, spec: BackendSpec | None = None) -> None:
    """Raise ConfigError (exit 2) when ``job``'s backend cannot do ``action``: called before
    any lock is taken or journal row written, so a refusal leaves no trace."""
    problem = unsupported(job, action, spec)
    if problem is not None:
        raise ConfigError(problem)
