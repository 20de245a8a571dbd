"""``reconciler emulator``: serve the Bloomreach emulator in the foreground."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reconciler.core.errors import ConfigError
from reconciler.core.settings import IdFile
from reconciler.emulator import Emulator, EmulatorSettings, generate_items
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
    """The emulator for ``--api``, its label, and the facts its banner tells the user."""
    from reconciler.emulator.adobe_classic import AdobeClassicEmulator
    from reconciler.emulator.adobe_target import AdobeTargetEmulator

    if args.api == "adobe-target":
        s = AdobeTargetEmulator({1: list(items)})
        return s, " (adobe-target)", (f"tenant={s.settings.tenant} token={s.settings.token} "
                                      f"api_key={s.settings.api_key} environment=1 ")
    if args.api == "adobe-classic":
        c = AdobeClassicEmulator(list(items))
        return c, " (adobe-classic)", (f"client={c.settings.client} "
                                       f"client_token={c.settings.client_token} ")
    limit, window = parse_rate(args.rate)
    settings = EmulatorSettings(
        bulk_requests_per_window=limit,
        bulk_window_seconds=window,
        send_retry_after=not args.no_retry_after,
        query_semantics=getattr(args, "query_semantics", "prefix"),
    )
    return Emulator(items, settings), "", (
        f"project={settings.project_token} catalog={settings.catalog_id} "
        f"key={settings.api_key_id}:{settings.api_secret} bulk rate={limit}/{window:g}s "
    )


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
