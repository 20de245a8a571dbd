"""What a backend declares about itself: one ``BackendSpec`` at the foot of its module.

The config loader, the CLI (``emulator --api``, ``check``), the emulator launcher, the run
flows and the contract suite read everything they need to know about an API from its spec
(via ``reconciler.backends.registry``), so a new API is one new module, its emulator, its
test harness and one line in the registry. What an API cannot do is declared here
(``Capabilities``) and refused before a run starts, not discovered by a failed call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from reconciler.core.settings import ApiSettings, Limits
from reconciler.core.table import Table


@dataclass(frozen=True)
class Capabilities:
    """What the API can do, as this tool uses it."""

    lists: bool  # inventory() lists the whole catalog (else: an export or the ledger)
    reads_back: bool  # read_back() returns records (else backups hold ids only)
    restores: bool  # restore() recreates items (an upsert)
    purges: bool  # delete_all() empties the catalog (purge also needs ``lists``: a backup)
    per_item_answers: bool  # a bulk delete answers per id (else per batch)
    # inventory() records carry each item's properties as read_back() gives them, so the
    # listing a run makes anyway stands for a read-back (backups need no GET per id)
    lists_properties: bool = False

    def missing(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if not getattr(self, f.name))


# (target, limits, clock, *, transport=None, on_retry=None) -> a Backend
BackendFactory = Callable[..., Any]
# (the [jobs.NAME.target] table, the config file's folder) -> the backend's own settings
SettingsParser = Callable[[Table, Path], ApiSettings]


@dataclass(frozen=True)
class BackendSpec:
    """One API, as the rest of the program sees it."""

    name: str  # the config's ``backend = "..."``
    settings_type: type  # the frozen dataclass ``parse_settings`` builds
    parse_settings: SettingsParser
    default_base_url: str
    capabilities: Capabilities
    factory: BackendFactory
    # Limits where the API's documented values differ from ``Limits()``'s (Bloomreach's).
    default_limits: Mapping[str, int | float] = field(default_factory=dict)
    # Upper bounds from the API's documented limits (a larger value only earns 400s or 414s).
    maxima: Mapping[str, int] = field(default_factory=dict)
    # Why a capability is missing, in the words of a refusal: {"restores": "its API has no
    # upsert"}; every False capability that an action needs should have one.
    why_not: Mapping[str, str] = field(default_factory=dict)
    # The module of ``reconciler.emulator`` serving a local copy of this API (``emulator
    # --api NAME``); it provides ``from_cli(items, args) -> (emulator, banner facts)``.
    emulator: str = ""

    def limits(self, **overrides: Any) -> Limits:
        """``Limits`` with this API's defaults (and any overrides, for tests)."""
        return Limits(**{**self.default_limits, **overrides})
