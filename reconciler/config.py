"""Load the TOML config into frozen dataclasses, failing early with one line that names the key.

Validation is up front and complete: unknown keys, missing keys, wrong types, unset
``${VAR}`` references and unknown backends are all reported before any file or API is
touched. Relative paths are relative to the config file, so a config means the same
thing wherever the daemon is started from.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.backends import registry
from reconciler.core.errors import ConfigError
from reconciler.core.settings import (
    CSV_SUFFIXES,
    DEFAULT_PREFIX_ALPHABET,
    LEDGER,
    PARQUET_SUFFIXES,
    Config,
    Daemon,
    IdFile,
    Job,
    Limits,
    Logging,
    Safety,
    Secret,
    Target,
)
from reconciler.core.table import Table, parse_duration

__all__ = [
    "CSV_SUFFIXES",
    "DEFAULT_PREFIX_ALPHABET",
    "LEDGER",
    "PARQUET_SUFFIXES",
    "Config",
    "Daemon",
    "IdFile",
    "Job",
    "Limits",
    "Logging",
    "Safety",
    "Secret",
    "Target",
    "load_config",
    "parse_config",
    "parse_duration",
    "resolve_config_path",
]

DEFAULT_CONFIG_NAME = "reconciler.toml"
CONFIG_ENV_VAR = "RECONCILER_CONFIG"

# Job names become folder and file names under state_dir: nothing that could climb out.
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MIN_INTERVAL_SECONDS = 1  # "every 0s" would run back to back
INTERVAL_PATTERN = re.compile(r"^every\s+(\d+)\s*(s|m|h)$")
_LOG_LEVELS = ("debug", "info", "warning", "error")
_LOG_FORMATS = ("auto", "json", "console")


def resolve_config_path(cli_value: str | None, environ: dict[str, str] | None = None) -> Path:
    """``--config``, else ``$RECONCILER_CONFIG``, else ``./reconciler.toml``."""
    env = os.environ if environ is None else environ
    return Path(cli_value or env.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_NAME)


def load_config(path: Path, environ: dict[str, str] | None = None, *,
                secrets: bool = True) -> Config:
    """Read and validate ``path``; raise ConfigError naming the file and key on any fault.

    ``secrets=False`` (``history``, ``outcomes``: they read only the journal) leaves
    credentials whose variable or file is missing empty instead of failing."""
    env = dict(os.environ if environ is None else environ)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw, path, env, secrets=secrets)


def parse_config(raw: dict[str, Any], path: Path, environ: dict[str, str], *,
                 secrets: bool = True) -> Config:
    """Validate an already-parsed TOML document; ``path`` anchors relative paths."""
    base = path.resolve().parent
    top = Table(raw, "", path, environ)
    top.secrets_needed = secrets
    state_dir = base / top.string("state_dir", default="var")
    budget_dir_value = top.optional_string("budget_dir")
    budget_dir = base / budget_dir_value if budget_dir_value else None
    state = top.optional_string("state")
    if state is not None and not state.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"{path}: state: expected a PostgreSQL URL (postgresql://...) or no "
                          "key (the embedded SQLite journal under state_dir)")
    logging_cfg = _parse_logging(top.optional_table("logging"))
    daemon_table = top.optional_table("daemon")
    daemon_cfg = _parse_daemon(daemon_table) if daemon_table else Daemon()
    jobs_table = top.table("jobs")
    top.finish()
    for name in jobs_table.keys():  # noqa: SIM118
        if not JOB_NAME.fullmatch(name):
            raise ConfigError(f"{path}: jobs.{name}: a job name is letters, digits, '.', '_' "
                              "and '-', starting with a letter or digit")
    jobs = {name: _parse_job(name, jobs_table.table(name), base) for name in jobs_table.keys()}  # noqa: SIM118
    if not jobs:
        raise ConfigError(f"{path}: jobs: define at least one [jobs.NAME] table")
    return Config(path=path, state_dir=state_dir, jobs=jobs, logging=logging_cfg,
                  budget_dir=budget_dir, daemon=daemon_cfg, state=state)


def _parse_daemon(t: Table) -> Daemon:
    d = Daemon()
    listen = t.optional_string("listen")
    if listen is not None:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise t.error("listen", f"expected HOST:PORT such as 127.0.0.1:9464, got {listen!r}")
    daemon = Daemon(
        timezone=t.string("timezone", default=d.timezone),
        misfire_grace_seconds=t.number("misfire_grace_seconds", d.misfire_grace_seconds),
        workers=t.integer("workers", d.workers, minimum=1),
        listen=listen or None,
        health_max_tick_age_seconds=t.number("health_max_tick_age_seconds",
                                             d.health_max_tick_age_seconds),
        stop_timeout_seconds=t.number("stop_timeout_seconds", d.stop_timeout_seconds),
        health_max_failed_runs=t.integer("health_max_failed_runs", d.health_max_failed_runs,
                                         minimum=0),
    )
    t.finish()
    return daemon


def _parse_logging(t: Table | None) -> Logging:
    if t is None:
        return Logging()
    cfg = Logging(
        level=t.choice("level", _LOG_LEVELS, default="info"),
        format=t.choice("format", _LOG_FORMATS, default="auto"),
        item_events=t.boolean("item_events", default=True),
    )
    t.finish()
    return cfg


def _parse_job(name: str, t: Table, base: Path) -> Job:
    schedule = t.optional_string("schedule")
    if schedule is not None:
        _check_schedule(schedule, t.where("schedule"))
    source = _parse_id_file(t.table("source"), base)
    target = _parse_target(t.table("target"), base)
    limits_table = t.optional_table("limits")
    spec = registry.BACKENDS[target.backend]
    defaults = spec.limits()
    limits = _parse_limits(limits_table, defaults, spec.maxima) if limits_table else defaults
    safety_table = t.optional_table("safety")
    job = Job(
        name=name,
        source=source,
        target=target,
        limits=limits,
        schedule=schedule,
        dry_run=t.boolean("dry_run", default=False),
        safety=_parse_safety(safety_table, base) if safety_table else Safety(),
        jitter_seconds=t.number("jitter_seconds", 0.0, allow_zero=True),
        scope=_parse_scope(t),
    )
    t.finish()
    return job


def _parse_scope(t: Table) -> tuple[str, ...]:
    """``scope = ["EU-", "*-eu"]``: id prefixes, or globs that match the whole id."""
    raw = t.raw("scope")
    scope = tuple(t.string_list("scope"))
    if "" in scope:
        raise t.error("scope", "an empty entry would match every id")
    if raw is not None and not scope:
        raise t.error("scope", "an empty array would own no id; leave the key out instead")
    return scope


def _parse_id_file(t: Table, base: Path) -> IdFile:
    spec = IdFile(path=base / t.string("path"), id_column=t.string("id_column", default="item_id"))
    if not spec.path.name.lower().endswith(CSV_SUFFIXES + PARQUET_SUFFIXES):
        raise t.error("path", f"{spec.path.name!r}: expected a .csv, .csv.gz or .parquet file")
    t.finish()
    return spec


def _parse_target(t: Table, base: Path) -> Target:
    """The keys every backend shares here; the rest by the backend's own ``parse_settings``."""
    backend = t.string("backend")
    if backend not in registry.BACKENDS:
        known = ", ".join(registry.BACKENDS)
        raise t.error("backend", f"unknown backend {backend!r} (known: {known})")
    spec = registry.BACKENDS[backend]
    ledger = t.raw("inventory") == LEDGER
    inventory_table = None if ledger else t.optional_table("inventory")
    inventory = _parse_id_file(inventory_table, base) if inventory_table else None
    if not spec.capabilities.lists and inventory is None and not ledger:
        raise t.error("inventory", f'missing key: {backend} cannot list its entities; '
                                   'name an export ({ path = "..." }) or "ledger"')
    base_url = t.string("base_url", default=spec.default_base_url).rstrip("/")
    settings = spec.parse_settings(t, base)
    t.finish()
    return Target(backend=backend, base_url=base_url, settings=settings, inventory=inventory,
                  ledger=ledger)


_GENERIC_MAXIMA = {"max_attempts": 100, "requests_per_window": 10_000}
_DAY = 86400.0


def _parse_limits(t: Table, d: Limits, maxima: Mapping[str, int]) -> Limits:
    top = {**_GENERIC_MAXIMA, **maxima}

    def integer(key: str, default: int, minimum: int) -> int:
        return t.integer(key, default, minimum=minimum, maximum=top.get(key))

    limits = Limits(
        requests_per_window=integer("requests_per_window", d.requests_per_window, 1),
        window_seconds=t.number("window_seconds", d.window_seconds, maximum=_DAY),
        max_batch_ids=integer("max_batch_ids", d.max_batch_ids, 1),
        max_batch_bytes=integer("max_batch_bytes", d.max_batch_bytes, 16),
        list_page_size=integer("list_page_size", d.list_page_size, 1),
        list_window=integer("list_window", d.list_window, 2),
        max_attempts=integer("max_attempts", d.max_attempts, 1),
        backoff_initial_seconds=t.number("backoff_initial_seconds", d.backoff_initial_seconds,
                                         maximum=_DAY),
        backoff_max_seconds=t.number("backoff_max_seconds", d.backoff_max_seconds,
                                     maximum=_DAY),
        timeout_seconds=t.number("timeout_seconds", d.timeout_seconds, maximum=3600.0),
        retry_deadline_seconds=t.number("retry_deadline_seconds", d.retry_deadline_seconds,
                                        maximum=_DAY),
        verify_after_seconds=t.number("verify_after_seconds", d.verify_after_seconds,
                                      maximum=30 * _DAY),
        read_requests_per_window=integer("read_requests_per_window",
                                         d.read_requests_per_window, 1),
        read_window_seconds=t.number("read_window_seconds", d.read_window_seconds,
                                     maximum=_DAY),
    )
    if limits.list_page_size > limits.list_window:
        raise t.error("list_page_size", f"must not exceed list_window ({limits.list_window})")
    t.finish()
    return limits


def _parse_safety(t: Table, base: Path) -> Safety:
    d = Safety()
    protect = t.string_list("protect")
    files = tuple(base / p.removeprefix("file:") for p in protect if p.startswith("file:"))
    safety = Safety(
        max_age=t.duration("max_age", d.max_age, allow_off=True),
        min_ids=t.integer("min_ids", d.min_ids, minimum=0),
        max_shrink=t.fraction("max_shrink", d.max_shrink),
        max_error_share=t.fraction("max_error_share", d.max_error_share),
        canary_ids=tuple(t.string_list("canary_ids")),
        max_deletes=t.optional_integer("max_deletes"),
        max_delete_fraction=t.fraction("max_delete_fraction", d.max_delete_fraction),
        max_deletes_per_day=t.count_or_fraction("max_deletes_per_day", d.max_deletes_per_day),
        protect=tuple(p for p in protect if not p.startswith("file:")),
        protect_files=files,
        grace_runs=t.integer("grace_runs", d.grace_runs, minimum=1),
        grace_period=t.duration("grace_period", d.grace_period, allow_off=True,
                                allow_zero=True),
        max_plan_age=t.duration("max_plan_age", d.max_plan_age) or d.max_plan_age,
        backup_retention=t.duration("backup_retention", d.backup_retention)
        or d.backup_retention,
        report_retention=t.duration("report_retention", d.report_retention, allow_off=True),
        max_clock_skew=t.duration("max_clock_skew", d.max_clock_skew) or d.max_clock_skew,
        require_final_newline=t.boolean("require_final_newline", d.require_final_newline),
        allow_older_source=t.boolean("allow_older_source", d.allow_older_source),
        max_near_match_share=t.fraction("max_near_match_share", d.max_near_match_share),
    )
    t.finish()
    return safety


def _check_schedule(value: str, where: str) -> None:
    """Accept ``every N(s|m|h)`` (at least ``MIN_INTERVAL_SECONDS``) or a five-field cron
    line the scheduler can parse: checked for every command, not only the daemon."""
    interval = INTERVAL_PATTERN.match(value.strip())
    if interval:
        seconds = int(interval.group(1)) * {"s": 1, "m": 60, "h": 3600}[interval.group(2)]
        if seconds < MIN_INTERVAL_SECONDS:
            raise ConfigError(f"{where}: {value!r}: the interval must be at least "
                              f"{MIN_INTERVAL_SECONDS} s")
        return
    if len(value.split()) != 5:
        raise ConfigError(
            f"{where}: {value!r} is neither a 5-field cron line nor 'every N(s|m|h)'"
        )
    from apscheduler.triggers.cron import CronTrigger  # the scheduler's own parser

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except (ValueError, LookupError) as exc:
        raise ConfigError(f"{where}: {value!r}: {exc}") from None
