"""``reconciler demo``: the emulator, a sample export, a plan, then one real reconcile.

Everything runs in this process against the emulator on 127.0.0.1, with an embedded
config written next to the export so the user can rerun ``reconciler --config ... plan``
by hand afterwards.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from reconciler.cli.console import run_and_print as run_jobs
from reconciler.config import load_config
from reconciler.core.errors import ConfigError
from reconciler.emulator import Emulator, EmulatorSettings, generate_items
from reconciler.logging import configure

STALE_AWKWARD = ("SKU/with-slash", "comma,id", "ünïcødé-☃", "00123")

CONFIG = """\
# Written by `reconciler demo`: one job against the local emulator.
state_dir = "state"

[logging]
level = "info"
format = "json"

[jobs.demo-products]
schedule = "every 30m"

[jobs.demo-products.source]
path = "exports/products.csv"
id_column = "item_id"

[jobs.demo-products.target]
backend = "bloomreach"
base_url = "{base_url}"
project_token = "{project}"
catalog_id = "{catalog}"
api_key_id = "${{DEMO_API_KEY_ID}}"
api_secret = "${{DEMO_API_SECRET}}"

[jobs.demo-products.limits]
max_batch_ids = 250        # small batches, to show several rate-limited requests

[jobs.demo-products.safety]
grace_runs = 2             # the default: an id must be missing in two runs in a row
grace_period = "off"       # the demo's runs are seconds apart (the default is "1h")
protect = ["SKU-0000*"]    # ids never to delete, whatever the export says
"""


def write_export(path: Path, ids: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["item_id", "title"])
        writer.writerows([item_id, f"Title of {item_id}"] for item_id in ids)


def fresh_folder(folder: Path) -> None:
    """Each demo starts from a fresh state (a fresh emulator needs a fresh journal), so it
    can be run any number of times; only a folder an earlier demo wrote is cleared."""
    config = folder / "reconciler.toml"
    if not config.is_file():
        if folder.exists() and any(folder.iterdir()):
            raise ConfigError(f"demo: {folder} exists and was not written by the demo; "
                              "choose another --dir")
        return
    if not config.read_text(encoding="utf-8").startswith(CONFIG.splitlines()[0]):
        raise ConfigError(f"demo: {config} was not written by the demo; choose another --dir")
    for name in ("state", "exports"):
        shutil.rmtree(folder / name, ignore_errors=True)
    (folder / "demo.log").unlink(missing_ok=True)


def run_demo(folder: Path, item_count: int) -> int:
    import os

    folder = folder.resolve()
    fresh_folder(folder)
    items = generate_items(item_count)
    sku_ids = sorted(i for i in items if i.startswith("SKU-"))
    stale = set(sku_ids[::20]) | set(STALE_AWKWARD)  # 5% of the catalog, plus awkward ids
    source = [i for i in sorted(items) if i not in stale] + [f"NEW-{n:04d}" for n in range(50)]
    settings = EmulatorSettings()
    with Emulator(items, settings) as emulator:
        write_export(folder / "exports" / "products.csv", source)
        config_path = folder / "reconciler.toml"
        config_path.write_text(CONFIG.format(
            base_url=emulator.base_url, project=settings.project_token,
            catalog=settings.catalog_id,
        ), encoding="utf-8")
        os.environ.setdefault("DEMO_API_KEY_ID", settings.api_key_id)
        os.environ.setdefault("DEMO_API_SECRET", settings.api_secret)
        config = load_config(config_path)
        log_path = folder / "demo.log"
        with log_path.open("a", encoding="utf-8") as log_stream:
            configure("info", "json", config.secrets, stream=log_stream)
            print(f"demo: emulator at {emulator.base_url} holds {len(items)} items; "
                  f"the export at {folder / 'exports/products.csv'} lacks {len(stale)} of them")
            print("demo: step 1, plan (dry run, deletes nothing)")
            plan_code = run_jobs(config, [], dry_run=True, report_root=None,
                                 config_path=config_path)
            print("demo: step 2, run (the first run that sees ids missing only notes them: grace)")
            run_jobs(config, [], dry_run=False, report_root=None, config_path=config_path)
            print("demo: step 3, plan again (the ids missing twice are now due)")
            run_jobs(config, [], dry_run=True, report_root=None, config_path=config_path,
                     limit=5)
            print("demo: step 4, run again (still missing: now they are deleted)")
            run_code = run_jobs(config, [], dry_run=False, report_root=None,
                                config_path=config_path)
        remaining = emulator.ids()
        gone = set(items) - remaining
        protected = {i for i in stale if i.startswith("SKU-0000")}
        expected_gone = {i for i in stale if "/" not in i} - protected
        print(f"demo: the catalog now holds {len(remaining)} items; "
              f"{len(gone)} deleted, {len(stale) - len(gone)} skipped (unaddressable or "
              f"protected; {'as planned' if gone == expected_gone else 'NOT as planned'})")
        print(f"demo: backups of deleted items under {config.state_dir / 'backups'}")
        print(f"demo: config {config_path}; JSON logs {log_path}")
        print(f"demo: reports under {config.state_dir / 'reports' / 'demo-products'}")
    return plan_code or run_code or (0 if gone == expected_gone else 1)
