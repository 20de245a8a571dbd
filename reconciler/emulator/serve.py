"""``reconciler emulator``: serve the emulator of the backend `--api` names, in the foreground."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from reconciler.core.errors import ConfigError
from reconciler.core.settings import IdFile
from reconciler.emulator import generate_items
from reconciler.sources.reader import read_ids


def parse_rate(text: str) -> tuple[int, float]:
    """``"5/10"`` means 5 requests per 10 seconds."""
    count, _, seconds = text.partition("/")
    try:
        limit, window = int(count), float(seconds)
    except ValueError:
        raise ConfigError(f"--rate: expected N/SECONDS such as 5/10, got {text!r}") from None
    if limit < 1 or window <= 0:
        raise ConfigError(f"--rate: expected N >= 1 and SECONDS > 0, got {text!r}")
    return limit, window


def load_items(path: Path) -> dict[str, dict[str, Any]]:
    """Records from ``.jsonl`` (``{"item_id", "properties"}``), or bare ids from CSV/Parquet."""
    if path.name.endswith(".jsonl"):
        items = {}
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    items[str(record["item_id"])] = dict(record.get("properties") or {})
                except (ValueError, KeyError, TypeError):
                    raise ConfigError(
                        f"{path}:{number}: expected a JSON record with item_id"
                    ) from None
        return items
    return {i: {} for i in read_ids(IdFile(path)).to_pylist()}


def _build(args: argparse.Namespace,
           items: dict[str, dict[str, Any]]) -> tuple[Any, str, str]:
    """The emulator the backend ``--api`` names (its spec's ``emulator`` module), its label,
    and the facts its banner tells the user."""
    from reconciler.backends.registry import DEFAULT_BACKEND, spec_for

    spec = spec_for(args.api)
    module = importlib.import_module(f"reconciler.emulator.{spec.emulator}")
    emulator, facts = module.from_cli(items, args)
    label = "" if spec.name == DEFAULT_BACKEND else f" ({spec.name})"
    return emulator, label, facts


def serve_from_args(args: argparse.Namespace) -> int:
    items = load_items(args.items) if args.items else generate_items(args.generate or 1000)
    emulator, label, facts = _build(args, items)
    try:
        base_url = emulator.bind(args.host, args.port)
    except OSError as exc:
        print(f"reconciler: emulator: cannot listen on {args.host}:{args.port}: {exc}",
              file=sys.stderr)
        return 1
    print(f"emulator{label}: {base_url} {facts}items={len(items)}", flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0
