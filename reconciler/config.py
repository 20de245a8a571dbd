"""Load the TOML config into frozen dataclasses, failing early with one line that names the key.

Validation is up front and complete: unknown keys, missing keys, wrong types, unset
``${VAR}`` references and unknown backends are all reported before any file or API is
touched. Relative paths are relative to the config file, so a config means the same
thing wherever the daemon is started from.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from reconciler.core.errors import ConfigError
from reconciler.core.settings import (
    ADOBE_CLASSIC,
    ADOBE_TARGET,
    BLOOMREACH,
    CSV_SUFFIXES,
    DEFAULT_PREFIX_ALPHABET,
    KNOWN_BACKENDS,
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

__all__ = [
    "ADOBE_CLASSIC",
    "ADOBE_TARGET",
    "BLOOMREACH",
    "CSV_SUFFIXES",
    "DEFAULT_PREFIX_ALPHABET",
    "KNOWN_BACKENDS",
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
    "resolve_config_path",
]

DEFAULT_CONFIG_NAME = "reconciler.toml"
CONFIG_ENV_VAR = "RECONCILER_CONFIG"

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
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
    top = _Table(raw, "", path, environ)
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


def _parse_daemon(t: _Table) -> Daemon:
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


def _parse_logging(t: _Table | None) -> Logging:
    if t is None:
        return Logging()
    cfg = Logging(
        level=t.choice("level", _LOG_LEVELS, default="info"),
        format=t.choice("format", _LOG_FORMATS, default="auto"),
        item_events=t.boolean("item_events", default=True),
    )
    t.finish()
    return cfg


def _parse_job(name: str, t: _Table, base: Path) -> Job:
    schedule = t.optional_string("schedule")
    if schedule is not None:
        _check_schedule(schedule, t.where("schedule"))
    source = _parse_id_file(t.table("source"), base)
    target = _parse_target(t.table("target"), base)
    limits_table = t.optional_table("limits")
    defaults = Limits(**BACKEND_LIMITS.get(target.backend, {}))  # type: ignore[arg-type]
    limits = _parse_limits(limits_table, defaults, target.backend) if limits_table else defaults
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


def _parse_scope(t: _Table) -> tuple[str, ...]:
    """``scope = ["EU-", "*-eu"]``: id prefixes, or globs that match the whole id."""
    raw = t.raw("scope")
    scope = tuple(t.string_list("scope"))
    if "" in scope:
        raise t.error("scope", "an empty entry would match every id")
    if raw is not None and not scope:
        raise t.error("scope", "an empty array would own no id; leave the key out instead")
    return scope


def _parse_id_file(t: _Table, base: Path) -> IdFile:
    spec = IdFile(path=base / t.string("path"), id_column=t.string("id_column", default="item_id"))
    if not spec.path.name.lower().endswith(CSV_SUFFIXES + PARQUET_SUFFIXES):
        raise t.error("path", f"{spec.path.name!r}: expected a .csv, .csv.gz or .parquet file")
    t.finish()
    return spec


def _parse_target(t: _Table, base: Path) -> Target:
    backend = t.string("backend")
    if backend not in KNOWN_BACKENDS:
        known = ", ".join(KNOWN_BACKENDS)
        raise t.error("backend", f"unknown backend {backend!r} (known: {known})")
    ledger = t.raw("inventory") == LEDGER
    inventory_table = None if ledger else t.optional_table("inventory")
    inventory = _parse_id_file(inventory_table, base) if inventory_table else None
    if backend == ADOBE_TARGET:
        return replace(_parse_adobe_target(t, inventory, base), ledger=ledger)
    if backend == ADOBE_CLASSIC:
        return _parse_adobe_classic(t, inventory, ledger, base)
    target = Target(
        backend=backend,
        base_url=t.string("base_url", default="https://api.exponea.com").rstrip("/"),
        project_token=t.string("project_token"),
        catalog_id=t.string("catalog_id"),
        api_key_id=_secret(t, "api_key_id", base),
        api_secret=_secret(t, "api_secret", base),
        inventory=inventory,
        prefix_alphabet=t.string("prefix_alphabet", default=DEFAULT_PREFIX_ALPHABET),
        ledger=ledger,
    )
    if not target.prefix_alphabet:
        raise t.error("prefix_alphabet", "must not be empty")
    t.finish()
    return target


def _parse_adobe_target(t: _Table, inventory: IdFile | None, base: Path) -> Target:
    tenant = t.string("tenant")
    environment = t.integer("environment", -1, minimum=0)
    if environment < 0:
        raise t.error("environment", "missing key (a delete without it would reach every "
                                     "environment)")
    raw_token = t.string("token")
    token_file = base / raw_token.removeprefix("file:") if raw_token.startswith("file:") \
        else None
    target = Target(
        backend=ADOBE_TARGET,
        base_url=t.string("base_url", default="https://mc.adobe.io").rstrip("/"),
        project_token="", catalog_id=f"{tenant}/environment-{environment}",
        api_key_id=_secret(t, "api_key", base), api_secret=Secret(""), inventory=inventory,
        tenant=tenant, environment=environment,
        token=_secret(t, "token", base), token_file=token_file,
    )
    t.finish()
    return target


def _parse_adobe_classic(t: _Table, inventory: IdFile | None, ledger: bool,
                         base: Path) -> Target:
    """Recommendations classic has no API to list entities: the inventory is an export of
    the catalog or the ledger of ids seen in earlier source exports."""
    if inventory is None and not ledger:
        raise t.error("inventory", 'missing key: adobe-classic cannot list its entities; '
                                   'name an export ({ path = "..." }) or "ledger"')
    client = t.string("client")
    target = Target(
        backend=ADOBE_CLASSIC,
        base_url=t.string("base_url", default="https://recommendations.omniture.com"
                          ).rstrip("/"),
        project_token="", catalog_id=client, api_key_id=Secret(""),
        api_secret=_secret(t, "client_token", base), inventory=inventory, ledger=ledger,
        tenant=client,
    )
    t.finish()
    return target


# Limits that differ by backend when the config does not set them.
BACKEND_LIMITS = {
    BLOOMREACH: {},
    ADOBE_TARGET: {"requests_per_window": 50, "window_seconds": 60.0, "max_batch_ids": 1000,
                   "max_batch_bytes": 8192, "list_page_size": 500, "list_window": 501},
    ADOBE_CLASSIC: {"requests_per_window": 10, "window_seconds": 10.0, "max_batch_ids": 1000,
                    "max_batch_bytes": 8192},
}


def _secret(t: _Table, key: str, base: Path | None = None) -> Secret:
    """A credential, given inline, as ``${VAR}``, or as ``file:PATH`` (systemd credentials:
    ``file:${CREDENTIALS_DIRECTORY}/name``); a file's surrounding whitespace is dropped."""
    try:
        value = t.string(key)
    except ConfigError:
        if t.secrets_needed or not isinstance(t.raw(key), str):
            raise
        return Secret("")
    if not value.startswith("file:"):
        return Secret(value)
    if not t.secrets_needed:
        return Secret("")  # not read: the command needs no credentials
    path = Path(value.removeprefix("file:"))
    if base is not None:
        path = base / path  # relative to the config file's folder, like every other path
    try:
        return Secret(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise t.error(key, f"cannot read the secret file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise t.error(key, f"the secret file {path} is not UTF-8 text") from None


# Upper bounds from each API's documented limits (a larger value would only earn 400s or
# 414s); keys without an entry are bounded by _GENERIC_MAXIMA alone.
API_MAXIMA: dict[str, dict[str, int]] = {
    BLOOMREACH: {"max_batch_ids": 10_000, "max_batch_bytes": 10_000_000, "list_window": 1001},
    ADOBE_TARGET: {"max_batch_ids": 10_000, "max_batch_bytes": 8192, "list_page_size": 500,
                   "list_window": 501},
    ADOBE_CLASSIC: {"max_batch_ids": 10_000, "max_batch_bytes": 8192},
}
_GENERIC_MAXIMA = {"max_attempts": 100, "requests_per_window": 10_000}
_DAY = 86400.0


def _parse_limits(t: _Table, d: Limits, backend: str = BLOOMREACH) -> Limits:
    top = {**_GENERIC_MAXIMA, **API_MAXIMA.get(backend, {})}

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


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> float | None:
    """``"26h"``, ``"7d"``, ``"90m"``, ``"30s"`` in seconds; None when malformed."""
    match = _DURATION.match(value)
    if not match:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _parse_safety(t: _Table, base: Path) -> Safety:
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


_T = TypeVar("_T")


class _Table:
    """One TOML table being validated; remembers which keys were read to find unknown ones."""

    def __init__(
        self, data: dict[str, Any], prefix: str, path: Path, env: dict[str, str]
    ) -> None:
        self._data = data
        self._prefix = prefix
        self._path = path
        self._env = env
        self._seen: set[str] = set()
        self.secrets_needed = True  # False: an unresolvable credential is left empty

    def keys(self) -> list[str]:
        self._seen.update(self._data)
        return list(self._data)

    def where(self, key: str) -> str:
        return f"{self._path}: {self._prefix}{key}"

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {problem}")

    def _get(self, key: str, kind: type[_T], kind_name: str, required: bool) -> _T | None:
        self._seen.add(key)
        if key not in self._data:
            if required:
                raise self.error(key, "missing key")
            return None
        value = self._data[key]
        # bool is an int in Python; a config that says `count = true` is still wrong.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.error(key, f"expected {kind_name}, got {_toml_type(value)}")
        return value

    def string(self, key: str, default: str | None = None) -> str:
        """A string, required when there is no default; ``${VAR}`` is expanded."""
        value = self._get(key, str, "a string", required=default is None)
        return self._expand(key, value) if value is not None else str(default)

    def raw(self, key: str) -> Any:
        """The value as written, for keys that take more than one type."""
        self._seen.add(key)
        return self._data.get(key)

    def optional_string(self, key: str) -> str | None:
        value = self._get(key, str, "a string", required=False)
        return None if value is None else self._expand(key, value)

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.string(key, default=default)
        if value not in options:
            raise self.error(key, f"expected one of {', '.join(options)}, got {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, bool, "true or false", required=False)
        return default if value is None else value

    def integer(self, key: str, default: int, minimum: int, maximum: int | None = None) -> int:
        value = self._get(key, int, "an integer", required=False)
        if value is None:
            return default
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum:,}, got {value:,}")
        return value

    def number(self, key: str, default: float, allow_zero: bool = False,
               maximum: float | None = None) -> float:
        value = self._get(key, (int, float), "a number", required=False)  # type: ignore[arg-type]
        if value is None:
            return default
        self._finite(key, value)
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum:g}, got {value:g}")
        if value < 0 or (value == 0 and not allow_zero):
            bound = "at least 0" if allow_zero else "greater than 0"
            raise self.error(key, f"must be {bound}, got {value}")
        return float(value)

    def string_list(self, key: str) -> list[str]:
        value = self._get(key, list, "an array of strings", required=False)
        if value is None:
            return []
        if not all(isinstance(v, str) for v in value):
            raise self.error(key, "expected an array of strings")
        return [self._expand(key, v) for v in value]

    def optional_integer(self, key: str) -> int | None:
        value = self._get(key, int, "an integer", required=False)
        if value is not None and value < 0:
            raise self.error(key, f"must be at least 0, got {value}")
        return value

    def _finite(self, key: str, value: float) -> None:
        """TOML allows nan and inf; no setting means anything with them."""
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value}")

    def fraction(self, key: str, default: float) -> float:
        value = self._get(key, (int, float), "a number", required=False)  # type: ignore[arg-type]
        if value is None:
            return default
        self._finite(key, value)
        if not 0 <= value <= 1:
            raise self.error(key, f"expected a fraction from 0 to 1, got {value}")
        return float(value)

    def count_or_fraction(self, key: str, default: float | None) -> float | None:
        value = self._get(key, (int, float, str), "a number or \"off\"",  # type: ignore[arg-type]
                          required=False)
        if value is None:
            return default
        if value == "off":
            return None
        if not isinstance(value, str):
            self._finite(key, value)
        if isinstance(value, str) or value < 0 or (isinstance(value, float) and value > 1):
            raise self.error(key, f"expected a count, a fraction below 1 or \"off\", got {value!r}")
        return float(value)

    def duration(self, key: str, default: float | None, allow_off: bool = False,
                 allow_zero: bool = False) -> float | None:
        value = self._get(key, str, 'a duration such as "26h"', required=False)
        if value is None:
            return default
        if allow_off and value == "off":
            return None
        seconds = parse_duration(value)
        if seconds is None or seconds < 0 or (seconds == 0 and not allow_zero):
            raise self.error(key, f"expected a duration such as \"26h\", \"7d\" or \"90m\","
                                  f" got {value!r}")
        return seconds

    def table(self, key: str) -> _Table:
        found = self.optional_table(key, required=True)
        assert found is not None  # _get raised for a missing required key
        return found

    def optional_table(self, key: str, required: bool = False) -> _Table | None:
        value = self._get(key, dict, "a table", required)
        if value is None:
            return None
        child = _Table(value, f"{self._prefix}{key}.", self._path, self._env)
        child.secrets_needed = self.secrets_needed
        return child

    def finish(self) -> None:
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            raise self.error(unknown[0], "unknown key")

    def _expand(self, key: str, value: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self._env:
                raise self.error(key, f"environment variable {name} is not set")
            return self._env[name]

        return _VAR.sub(replace, value)


def _toml_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names.update({dict: "a table", list: "an array"})
    return names.get(type(value), type(value).__name__)
