"""apply's read-back: requests per 1,000 ids backed up, one GET per id (before) against
the listing apply makes anyway (after), for each backend over its emulator on 127.0.0.1.

``apply`` lists the catalog to judge its caps on the catalog as it is now. Before, it then
read every id to delete back with one GET (through the read budget) for the backup; now
the listing's records are the backup (Bloomreach lists each item's properties) and only
what the listing cannot stand for is read back: the listed ids when the listing carries
no properties (Adobe Target's search asks for ids only), and ids an incomplete listing
did not show. Adobe Recommendations classic has neither a listing nor a read-back: its
backups hold ids.

"After" is a real ``plan --out`` + ``apply`` (``run_job``) against the emulator, its
requests counted by the emulator; "before" is the same listing plus ``read_back`` of the
same ids on a fresh copy of the catalog (what apply did), through the same adapter.

    python benchmarks/readback.py [--items 20000] [--ids 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.backends import registry
from reconciler.config import load_config
from reconciler.core.clock import SystemClock
from reconciler.core.settings import Job
from reconciler.emulator import Emulator, EmulatorSettings
from reconciler.emulator.adobe_target import AdobeTargetEmulator
from reconciler.emulator.adobe_target import AdobeTargetSettings as TargetEmulatorSettings
from reconciler.logging import configure
from reconciler.runs.runner import RunRequest, run_job
from reconciler.store import saved_plan

SAFETY = """[jobs.{name}.safety]          # this measures requests: let apply delete at once
grace_runs = 1
grace_period = "off"
min_ids = 0
max_delete_fraction = 1.0
max_deletes_per_day = "off"
[jobs.{name}.limits]          # no waiting on the read budget: only requests are counted
read_requests_per_window = 1000000
read_window_seconds = 1
requests_per_window = {limit}
window_seconds = 1
"""


@dataclass
class Served:
    """One emulated API: how to count its read requests, and the job's target keys."""

    name: str
    start: Callable[[dict[str, dict[str, Any]]], tuple[Any, str]]
    reads: Callable[[Any], int]
    target: Callable[[Any, str], str]


def _bloomreach(items: dict[str, dict[str, Any]]) -> tuple[Any, str]:
    emulator = Emulator(items, EmulatorSettings(bulk_requests_per_window=1000,
                                                bulk_window_seconds=1))
    return emulator, emulator.start()


def _adobe_target(items: dict[str, dict[str, Any]]) -> tuple[Any, str]:
    emulator = AdobeTargetEmulator({1: list(items)},
                                   TargetEmulatorSettings(requests_per_window=1_000_000,
                                                          window_seconds=1))
    return emulator, emulator.start()


SERVED = [
    Served("bloomreach", _bloomreach,
           lambda e: e.stats.list_requests + e.stats.get_requests,
           lambda e, url: (f'backend = "bloomreach"\nbase_url = "{url}"\n'
                           'project_token = "demo-project"\ncatalog_id = "demo-catalog"\n'
                           'api_key_id = "demo-key"\napi_secret = "demo-secret"\n')),
    Served("adobe-target", _adobe_target,
           lambda e: e.stats.requests - e.stats.delete_requests,
           lambda e, url: (f'backend = "adobe-target"\nbase_url = "{url}"\n'
                           f'tenant = "{e.settings.tenant}"\nenvironment = 1\n'
                           f'api_key = "{e.settings.api_key}"\ntoken = "{e.settings.token}"\n')),
]


def job_for(folder: Path, served: Served, emulator: Any, url: str, keep: list[str]) -> Job:
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "source.csv"
    source.write_text("item_id\n" + "\n".join(keep) + "\n", encoding="utf-8")
    limit = 10_000  # Adobe Target: reads share this budget
    text = (f'state_dir = "state"\n[logging]\nformat = "json"\nitem_events = false\n'
            f'[jobs.bench.source]\npath = "{source}"\n[jobs.bench.target]\n'
            + served.target(emulator, url) + SAFETY.format(name="bench", limit=limit))
    (folder / "reconciler.toml").write_text(text, encoding="utf-8")
    return load_config(folder / "reconciler.toml").jobs["bench"]


def after(folder: Path, served: Served, items: dict[str, dict[str, Any]],
          keep: list[str]) -> tuple[int, int, int]:
    """(listing requests, read-back requests, ids backed up) of a real apply."""
    emulator, url = served.start(items)
    try:
        job = job_for(folder, served, emulator, url, keep)
        config = load_config(folder / "reconciler.toml")
        plan_file = folder / "plan.json"
        planned = run_job(config, job, RunRequest(dry_run=True, plan_out=plan_file,
                                                  item_events=False))
        assert planned.exit_code == 0, planned.message
        saved = saved_plan.load(plan_file, saved_plan.signing_key(config.state_dir))
        before = served.reads(emulator)
        applied = run_job(config, job, RunRequest(dry_run=False, apply=saved,
                                                  item_events=False))
        assert applied.exit_code == 0, applied.message
        total = served.reads(emulator) - before
        listing = int(applied.summary["inventory"]["requests"])
        return listing, total - listing, int(applied.summary["backup"]["records"])
    finally:
        emulator.stop()


def before(folder: Path, served: Served, items: dict[str, dict[str, Any]],
           wanted: list[str]) -> tuple[int, int]:
    """(listing requests, read-back requests) of the old apply: the listing, then one GET
    per id through the same adapter."""
    emulator, url = served.start(items)
    try:
        job = job_for(folder, served, emulator, url, [])
        backend = registry.spec_for(job.target.backend).factory(job.target, job.limits,
                                                                 SystemClock())
        try:
            start = served.reads(emulator)
            backend.inventory()
            listed = served.reads(emulator) - start
            backend.read_back(wanted)
            return listed, served.reads(emulator) - start - listed
        finally:
            backend.close()
    finally:
        emulator.stop()


def per_thousand(requests: int, ids: int) -> str:
    return f"{requests * 1000 / ids:8.1f}" if ids else "     n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000, help="catalog size")
    parser.add_argument("--ids", type=int, default=1_000, help="ids apply deletes")
    args = parser.parse_args()
    configure(level="error")  # the runs' own logs would bury the table
    items = {f"SKU-{n:07d}": {"title": f"Item {n}", "price": n} for n in range(args.items)}
    ids = sorted(items)
    step = max(1, len(ids) // args.ids)
    wanted = ids[::step][:args.ids]
    keep = sorted(set(ids) - set(wanted))
    print(f"catalog {args.items:,} items; apply deletes {len(wanted):,} ids; requests per "
          "1,000 ids backed up (listing: made by apply anyway, for its caps)")
    print(f"{'backend':<14}{'':>4}{'listing':>9}{'read-back':>11}{'total':>8}"
          f"{'/1,000 ids':>12}{'read-back /1,000':>18}")
    with tempfile.TemporaryDirectory() as tmp:
        for served in SERVED:
            listed, gets = before(Path(tmp) / f"{served.name}-before", served, items, wanted)
            after_listed, after_gets, backed_up = after(Path(tmp) / f"{served.name}-after",
                                                        served, items, keep)
            assert backed_up == len(wanted), (served.name, backed_up)
            for label, lst, rb in (("before", listed, gets), ("after", after_listed, after_gets)):
                print(f"{served.name:<14}{label:>7}{lst:>6}{rb:>11}{lst + rb:>8}"
                      f"{per_thousand(lst + rb, len(wanted)):>12}"
                      f"{per_thousand(rb, len(wanted)):>18}")
    print(f"{'adobe-classic':<14}{'both':>7}{0:>6}{0:>11}{0:>8}{'-':>12}{'-':>18}"
          "   (no listing, no read-back: backups hold ids)")


if __name__ == "__main__":
    main()
