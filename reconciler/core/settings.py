"""The settings a run is judged and shaped by: frozen values, parsed from the config file.

These are plain values, owned by the core so that the pure rules (safety, batching, rate
arithmetic) can take them without reaching up to the loader (``reconciler.config``), which
reads TOML, expands ``${VAR}`` and resolves paths before building them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from reconciler.core.errors import ConfigError

LEDGER = "ledger"  # inventory = "ledger": ids seen in earlier source exports

# Characters an id may continue with, tried when a listing partition is too big for the
# API's offset window. Characters seen in listed ids are added at run time, so this only
# needs to cover what may hide beyond the window; see bloomreach.py.
DEFAULT_PREFIX_ALPHABET = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.:~ #+@%&=,;!$'()*"
)

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Secret:
    """A credential that never shows itself in a repr, a log or a report."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class IdFile:
    """A CSV or Parquet file and the column that holds the ids."""

    path: Path
    id_column: str = "item_id"


@dataclass(frozen=True)
class Limits:
    """Request shaping; the defaults are the Bloomreach documented limits."""

    requests_per_window: int = 5
    window_seconds: float = 10.0
    max_batch_ids: int = 10_000
    max_batch_bytes: int = 10_000_000
    list_page_size: int = 1001
    list_window: int = 1001
    max_attempts: int = 8
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    timeout_seconds: float = 30.0
    retry_deadline_seconds: float = 600.0
    verify_after_seconds: float = 3600.0
    # Listing and read-back calls where the API documents no limit for them (Bloomreach);
    # Adobe Target's searches and reads share requests_per_window (one documented limit).
    read_requests_per_window: int = 10
    read_window_seconds: float = 1.0


@dataclass(frozen=True)
class Safety:
    """Fail-closed rules; the defaults protect a user who writes no [safety] table at all."""

    max_age: float | None = 26 * 3600.0  # seconds; a source file older than this is refused
    min_ids: int = 1
    max_shrink: float = 0.10  # vs the source count of the last successful run
    max_error_share: float = 0.01  # empty ids among the source rows
    canary_ids: tuple[str, ...] = ()
    max_deletes: int | None = None
    max_delete_fraction: float = 0.10  # of the remote catalog, per run
    max_deletes_per_day: float | None = 0.20  # a count (>= 1) or a fraction of the catalog
    protect: tuple[str, ...] = ()  # exact ids, glob patterns, "file:PATH" lists
    protect_files: tuple[Path, ...] = ()
    grace_runs: int = 2
    grace_period: float | None = 3600.0  # seconds; and missing this long ("off": runs only)
    max_plan_age: float = 24 * 3600.0
    backup_retention: float = 30 * 86400.0
    report_retention: float | None = 30 * 86400.0  # report folders under state_dir; None: keep
    max_clock_skew: float = 300.0  # a source mtime further in the future than this is refused
    require_final_newline: bool = True  # a CSV source whose last row is cut short is refused
    allow_older_source: bool = False  # an export older than the last run's is refused
    max_near_match_share: float = 0.001  # near matches allowed, as a share of the source ids


class ApiSettings(Protocol):
    """What a backend's own settings (``reconciler.backends.<api>``) tell the rest of the
    program: which catalog they name, which values are secrets, and which fields name the
    catalog for the state fingerprint (``core/fingerprint.py``)."""

    @property
    def catalog_id(self) -> str: ...

    def secrets(self) -> tuple[Secret, ...]:
        """Credentials, redacted wherever they might appear."""
        ...

    def basic_auth(self) -> tuple[str, str] | None:
        """The (user, password) pair sent as HTTP Basic auth, if any (its Base64 is a secret)."""
        ...

    def fingerprint_fields(self) -> dict[str, object]:
        """The fields besides backend, base_url and catalog that name the catalog."""
        ...


@dataclass(frozen=True)
class Target:
    """Where the catalog lives and how to reach it: the keys every backend shares, and the
    backend's own ``settings`` (a frozen dataclass declared in its module)."""

    backend: str
    base_url: str
    settings: ApiSettings
    inventory: IdFile | None = None
    ledger: bool = False  # the inventory is the journal's ledger of earlier source ids

    @property
    def catalog_id(self) -> str:
        return self.settings.catalog_id

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must be redacted wherever they might appear."""
        return tuple(s.value for s in self.settings.secrets() if s.value)


@dataclass(frozen=True)
class Job:
    """One source export reconciled into one remote catalog."""

    name: str
    source: IdFile
    target: Target
    limits: Limits = Limits()
    schedule: str | None = None
    dry_run: bool = False
    safety: Safety = Safety()
    jitter_seconds: float = 0.0  # random delay added to each scheduled start
    scope: tuple[str, ...] = ()  # id prefixes or globs this job owns; () = every id


@dataclass(frozen=True)
class Logging:
    level: str = "info"
    format: str = "auto"
    item_events: bool = True


@dataclass(frozen=True)
class Daemon:
    """``reconciler daemon``: scheduling, health and metrics."""

    timezone: str = "UTC"
    misfire_grace_seconds: float = 300.0  # a run later than this past its slot is skipped
    workers: int = 4  # jobs of different catalogs run in parallel, up to this many
    listen: str | None = None  # "127.0.0.1:9464" serves /healthz and /metrics; off by default
    health_max_tick_age_seconds: float = 30.0
    stop_timeout_seconds: float = 20.0
    health_max_failed_runs: int = 3  # /healthz is 503 after this many failed runs in a row (0: off)


@dataclass(frozen=True)
class Config:
    path: Path
    state_dir: Path
    jobs: dict[str, Job]
    logging: Logging = Logging()
    budget_dir: Path | None = None  # where catalogs' shared rate budgets live
    daemon: Daemon = Daemon()
    # "postgresql://...": journal, leases, budgets and backups shared by replicas; None: the
    # embedded SQLite journal and files under state_dir.
    state: str | None = field(default=None, repr=False)  # the DSN may carry a password

    @property
    def budgets(self) -> Path:
        return self.budget_dir or self.state_dir / "budgets"

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for job in self.jobs.values() for s in job.target.secrets)

    def select(self, names: list[str]) -> list[Job]:
        """The named jobs in the order given, or every job when none is named."""
        if not names:
            return list(self.jobs.values())
        unknown = [n for n in names if n not in self.jobs]
        if unknown:
            known = ", ".join(self.jobs) or "none"
            raise ConfigError(f"{self.path}: no job named {unknown[0]!r} (jobs: {known})")
        return [self.jobs[n] for n in names]
