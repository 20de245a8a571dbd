"""The shared TOML reader: one table being validated, failing with one line naming the key.

Every part of the config is read through ``Table``: the loader (``reconciler.config``) for
the common keys and each backend (``reconciler.backends.*``) for its own settings, so every
backend reports a wrong key, type or unset ``${VAR}`` in the same words.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, TypeVar

from reconciler.core.errors import ConfigError
from reconciler.core.settings import Secret

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> float | None:
    """``"26h"``, ``"7d"``, ``"90m"``, ``"30s"`` in seconds; None when malformed."""
    match = _DURATION.match(value)
    if not match:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


_T = TypeVar("_T")


class Table:
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

    def table(self, key: str) -> Table:
        found = self.optional_table(key, required=True)
        assert found is not None  # _get raised for a missing required key
        return found

    def optional_table(self, key: str, required: bool = False) -> Table | None:
        value = self._get(key, dict, "a table", required)
        if value is None:
            return None
        child = Table(value, f"{self._prefix}{key}.", self._path, self._env)
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


def secret(t: Table, key: str, base: Path | None = None) -> Secret:
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
