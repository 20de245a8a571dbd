"""Diff speed and memory: `reconciler plan` on 10M source ids vs a 10.5M-id remote export.

Prints wall time and peak RSS of the real `reconciler plan` (export inventory, report
written) next to a bare-pyarrow floor measured in the same run: read both id columns,
`is_in`, filter. Each is run in a fresh process, so peak RSS is each one's own and both
pay the same interpreter start and pyarrow import. Target: within 1.5x of the floor.

    python benchmarks/diff.py [--rows 10000000] [--stale 0.05] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).parent / ".data"

FLOOR = """
import resource, sys
import pyarrow.compute as pc, pyarrow.parquet as pq
source = pq.read_table(sys.argv[1], columns=["item_id"]).column("item_id").combine_chunks()
remote = pq.read_table(sys.argv[2], columns=["item_id"]).column("item_id").combine_chunks()
stale = remote.filter(pc.invert(pc.is_in(remote, value_set=source)))
print(len(stale), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""

PLAN = """
import resource, sys
from reconciler.cli import main
code = main(["--config", sys.argv[1], "plan", "--report-dir", sys.argv[2]])
print(code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""

CONFIG = """
state_dir = "state"
[logging]
format = "json"
[jobs.bench.source]
path = "{source}"
[jobs.bench.target]
backend = "bloomreach"
base_url = "http://127.0.0.1:9"
project_token = "p"
catalog_id = "c"
api_key_id = "k"
api_secret = "s"
[jobs.bench.target.inventory]
path = "{remote}"
"""


def make_data(rows: int, stale_share: float) -> tuple[Path, Path, int]:
    """Source: ``rows`` shuffled ids; remote: the same ids plus the stale ones, shuffled."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    stale = int(rows * stale_share / (1 - stale_share) + 0.5) if stale_share else 0
    DATA.mkdir(exist_ok=True)
    source_path = DATA / f"source-{rows}.parquet"
    remote_path = DATA / f"remote-{rows}-{stale}.parquet"
    if source_path.exists() and remote_path.exists():
        return source_path, remote_path, stale
    rng = np.random.default_rng(42)

    def ids(numbers: np.ndarray) -> pa.Array:
        digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), 10, "0")
        return pc.binary_join_element_wise("SKU-", digits, "")

    numbers = rng.permutation(rows + stale)
    kept, gone = numbers[:rows], numbers[rows:]
    pq.write_table(pa.table({"item_id": ids(kept)}), source_path)
    remote = np.concatenate([kept, gone])
    rng.shuffle(remote)
    pq.write_table(pa.table({"item_id": ids(remote)}), remote_path)
    return source_path, remote_path, stale


def measure(script: str, *args: str) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MiB, first stderr word) of one fresh process."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    last = done.stderr.strip().splitlines()[-1].split()
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{done.stderr[-2000:]}")
    return wall, int(last[1]) // 1024, last[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--stale", type=float, default=0.5 / 10.5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    source, remote, stale = make_data(args.rows, args.stale)
    print(f"source {args.rows:,} ids, remote {args.rows + stale:,} ids ({stale:,} stale)")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "reconciler.toml"
        config.write_text(CONFIG.format(source=source, remote=remote), encoding="utf-8")
        floors, plans = [], []
        for _ in range(args.repeat):
            floors.append(measure(FLOOR, str(source), str(remote)))
            plans.append(measure(PLAN, str(config), str(Path(tmp) / "reports")))
        summary = json.loads((Path(tmp) / "reports" / "bench" / "summary.json").read_text())
    # With the default safety rules a first plan defers every id (grace): count both.
    planned = summary["to_delete"] + summary.get("pending_grace", 0)
    assert int(floors[0][2]) == planned == stale, (floors[0], summary)

    floor_time = statistics.median(f[0] for f in floors)
    plan_time = statistics.median(p[0] for p in plans)
    floor_rss = max(f[1] for f in floors)
    plan_rss = max(p[1] for p in plans)
    print(f"{'':22}{'wall s (median)':>16}{'peak RSS MiB':>14}")
    print(f"{'pyarrow floor':22}{floor_time:16.2f}{floor_rss:14d}")
    print(f"{'reconciler plan':22}{plan_time:16.2f}{plan_rss:14d}")
    print(f"{'ratio (target <= 1.5)':22}{plan_time / floor_time:16.2f}"
          f"{plan_rss / floor_rss:14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
