"""Delete throughput against the API's own rate limit (the emulator, real 5 per 10 s window).

Runs real `reconciler run` processes deleting 200,000 ids (20 bulk requests of 10,000) and
prints, for one job alone and for two jobs sharing one catalog:

* achieved ids/s over the delete phase, and the ceiling for the same number of requests:
  with L requests per W seconds, N requests cannot finish before (ceil(N/L) - 1) * W
  (plus one request's latency), so efficiency = that ideal time / the measured time;
* 429s seen (target: zero when the tool is the only writer);
* the journal's share of each run's own wall time (target: under 5%).

    python benchmarks/throughput.py [--ids 200000] [--limit 5] [--window 10]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.emulator import Emulator, EmulatorSettings

JOB = """
[jobs.{name}.source]
path = "{source}"
[jobs.{name}.target]
backend = "bloomreach"
base_url = "{base_url}"
project_token = "demo-project"
catalog_id = "demo-catalog"
api_key_id = "demo-key"
api_secret = "demo-secret"
[jobs.{name}.limits]
requests_per_window = {limit}
window_seconds = {window}
[jobs.{name}.safety]          # this measures throughput: let the run delete at once
grace_runs = 1
max_delete_fraction = 1.0
max_deletes_per_day = "off"
"""


def write_source(path: Path, ids: list[str]) -> None:
    path.write_text("item_id\n" + "\n".join(ids) + "\n", encoding="utf-8")


def run_jobs(folder: Path, emulator: Emulator, jobs: dict[str, list[str]], limit: int,
             window: float) -> tuple[list[dict[str, object]], float]:
    """Start one `reconciler run` process per job at once; their summaries and wall time."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "reconciler.toml"
    text = 'state_dir = "state"\n[logging]\nformat = "json"\nitem_events = false\n'
    for name, source_ids in jobs.items():
        source = folder / f"{name}.csv"
        write_source(source, source_ids)
        text += JOB.format(name=name, source=source, base_url=emulator.base_url, limit=limit,
                           window=window)
    config.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    processes = [
        subprocess.Popen([sys.executable, "-m", "reconciler", "--config", str(config), "run",
                          name, "--report-dir", str(folder / "reports")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name in jobs
    ]
    codes = [p.wait() for p in processes]
    wall = time.perf_counter() - started
    if any(codes):
        raise SystemExit(f"a run failed: exit codes {codes}")
    summaries = [json.loads((folder / "reports" / name / "summary.json").read_text())
                 for name in jobs]
    return summaries, wall


def ideal_seconds(requests: int, limit: int, window: float) -> float:
    return (math.ceil(requests / limit) - 1) * window


def report(label: str, summaries: list[dict[str, object]], wall: float, limit: int,
           window: float, throttled_at_server: int) -> None:
    deleted = sum(int(s["deleted"]) for s in summaries)  # type: ignore[call-overload]
    requests = sum(int(s["requests"]) for s in summaries)  # type: ignore[call-overload]
    delete_seconds = max(float(s["delete_seconds"]) for s in summaries)  # type: ignore[arg-type]
    shares = [float(s["journal_seconds"]) / float(s["run_seconds"])  # type: ignore[arg-type]
              for s in summaries]
    ideal = ideal_seconds(requests, limit, window)
    print(f"{label}")
    print(f"  deleted {deleted:,} ids in {requests} requests; delete phase {delete_seconds:.1f} s"
          f" (ideal {ideal:.1f} s); process wall {wall:.1f} s")
    print(f"  achieved {deleted / delete_seconds:,.0f} ids/s; ceiling for this schedule "
          f"{deleted / ideal:,.0f} ids/s; efficiency {ideal / delete_seconds:.1%}")
    print(f"  429s: client saw {sum(int(s['throttled']) for s in summaries)},"  # type: ignore[call-overload]
          f" server sent {throttled_at_server}")
    print("  journal share of each run's wall time: "
          + ", ".join(f"{share:.2%}" for share in shares))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=200_000)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()

    stale = [f"gone-{n:07d}" for n in range(args.ids)]
    kept = [f"kept-{n:05d}" for n in range(1000)]
    settings = EmulatorSettings(bulk_requests_per_window=args.limit,
                                bulk_window_seconds=args.window)
    print(f"emulator: {args.limit} bulk requests per {args.window:g} s; ceiling "
          f"{args.limit * 10_000 / args.window:,.0f} ids/s in steady state")
    with tempfile.TemporaryDirectory() as tmp:
        with Emulator(stale + kept, settings) as emulator:
            summaries, wall = run_jobs(Path(tmp) / "one", emulator, {"alone": kept},
                                       args.limit, args.window)
            report("one job", summaries, wall, args.limit, args.window,
                   emulator.stats.throttled)
        half = len(stale) // 2
        with Emulator(stale + kept, settings) as emulator:
            jobs = {"first": kept + stale[half:], "second": kept + stale[:half]}
            # A fresh window: the second emulator has seen no request yet.
            summaries, wall = run_jobs(Path(tmp) / "two", emulator, jobs, args.limit,
                                       args.window)
            report("two jobs sharing one catalog (and its budget)", summaries, wall,
                   args.limit, args.window, emulator.stats.throttled)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
