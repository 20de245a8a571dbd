"""Diff speed and memory: `reconciler plan` against a bare-pyarrow floor, on several shapes.

For every data shape and size, prints wall time and peak RSS of the real `reconciler plan`
(a fresh process: export inventory, every source check and gate, report written) next to
a bare-pyarrow floor measured in the same run on the same files: read both id columns,
`is_in`, filter. Each is a fresh process, so peak RSS is each one's own and both pay the
same interpreter start and pyarrow import. Target: every ratio within 1.3 (PASS/FAIL per
row; the exit status is 1 when a row fails). Each figure is the median of ``--repeat``
runs after one unmeasured warm-up run, floor and plan alternating (ABBA), so one noisy
run on a loaded machine does not decide; the cpu column (plan/floor user+sys time) is
steadier than wall time when the machine is shared.

Shapes (the remote export holds the source's ids plus ``--stale`` more, shuffled):
  sku-parquet   "SKU-0000000042" ids, the id column only (the original benchmark)
  uuid-csv      shuffled uuid-like ids with title, price and stock columns, CSV
  uuid-parquet  the same table as Parquet

    python benchmarks/diff.py [--rows 5000000,10000000] [--shapes sku-parquet,uuid-csv,...]
                              [--stale 0.0476] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / ".data"
SHAPES = ("sku-parquet", "uuid-csv", "uuid-parquet")
TARGET = 1.3

# VmHWM is this process image's own peak: ru_maxrss would include the RSS the parent had
# when it forked (the benchmark's parent holds the generated data for a while).
PEAK = """
def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
"""

FLOOR = PEAK + """
import sys
import pyarrow as pa, pyarrow.compute as pc, pyarrow.csv as pacsv, pyarrow.parquet as pq
def read(path):
    if path.endswith(".parquet"):
        return pq.read_table(path, columns=["item_id"]).column("item_id").combine_chunks()
    convert = pacsv.ConvertOptions(include_columns=["item_id"],
                                   column_types={"item_id": pa.string()})
    return pacsv.read_csv(path, convert_options=convert).column("item_id").combine_chunks()
source, remote = read(sys.argv[1]), read(sys.argv[2])
stale = remote.filter(pc.invert(pc.is_in(remote, value_set=source)))
print(len(stale), peak_kib(), file=sys.stderr)
"""

PLAN = PEAK + """
import sys
from reconciler.cli.main import main
code = main(["--config", sys.argv[1], "plan", "--report-dir", sys.argv[2]])
print(code, peak_kib(), file=sys.stderr)
"""

CONFIG = """
state_dir = "state"
[logging]
format = "json"
item_events = false
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


def make_data(shape: str, rows: int, stale_share: float) -> tuple[Path, Path, int]:
    """Source: ``rows`` shuffled ids; remote: the same ids plus the stale ones, shuffled."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    stale = int(rows * stale_share / (1 - stale_share) + 0.5) if stale_share else 0
    DATA.mkdir(exist_ok=True)
    suffix = ".csv" if shape.endswith("csv") else ".parquet"
    source_path = DATA / f"{shape}-source-{rows}{suffix}"
    remote_path = DATA / f"{shape}-remote-{rows}-{stale}{suffix}"
    if source_path.exists() and remote_path.exists():
        return source_path, remote_path, stale
    rng = np.random.default_rng(42)
    numbers = rng.permutation(rows + stale)
    kept = numbers[:rows]
    remote = numbers.copy()
    rng.shuffle(remote)
    ids = _sku_ids if shape.startswith("sku") else _uuid_ids(rows + stale, rng)

    def table(which: np.ndarray) -> pa.Table:
        columns = {"item_id": ids(which)}
        if not shape.startswith("sku"):
            columns["title"] = pa.array(np.char.add("Product ", which.astype(str)))
            columns["price"] = pa.array((which % 10_000) / 100.0)
            columns["stock"] = pa.array(which % 97)
        return pa.table(columns)

    for path, which in ((source_path, kept), (remote_path, remote)):
        if suffix == ".csv":
            pacsv.write_csv(table(which), path)
        else:
            pq.write_table(table(which), path)
    return source_path, remote_path, stale


def _sku_ids(numbers: object) -> object:
    import pyarrow as pa
    import pyarrow.compute as pc

    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), 10, "0")
    return pc.binary_join_element_wise("SKU-", digits, "")


def _uuid_ids(count: int, rng: object) -> object:
    """A function from numbers to uuid-like ids (8-4-4-4-12 lower-case hex), vectorised."""
    import numpy as np
    import pyarrow as pa

    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)  # type: ignore[attr-defined]
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty((count, 36), dtype=np.uint8)
    chars[:, [8, 13, 18, 23]] = ord("-")
    spots = [i for i in range(36) if i not in (8, 13, 18, 23)]
    chars[:, spots[0::2]] = hexdigits[raw >> 4]
    chars[:, spots[1::2]] = hexdigits[raw & 15]

    def ids(numbers: np.ndarray) -> pa.Array:
        picked = np.ascontiguousarray(chars[numbers]).view("S36").ravel()
        return pa.array(picked, pa.binary(36)).cast(pa.string())

    return ids


# Bytecode is cached (outside the tree) as an installed package has it: a sandbox that sets
# PYTHONDONTWRITEBYTECODE would otherwise have every plan compile the reconciler's modules
# from source (~0.07 s a start) while the floor loads pyarrow's compiled ones.
CHILD_ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
             "PYTHONPYCACHEPREFIX": str(DATA / "pycache")}


def measure(script: str, *args: str) -> tuple[float, int, str, float]:
    """(wall seconds, peak RSS in MiB, first stderr word, CPU seconds) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          env=CHILD_ENV)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{done.stderr[-2000:]}")
    last = done.stderr.strip().splitlines()[-1].split()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, int(last[1]) // 1024, last[0], cpu


@dataclass(frozen=True)
class Row:
    shape: str
    rows: int
    floor_time: float
    plan_time: float
    floor_rss: int
    plan_rss: int
    floor_cpu: float
    plan_cpu: float

    @property
    def time_ratio(self) -> float:
        return self.plan_time / self.floor_time

    @property
    def rss_ratio(self) -> float:
        return self.plan_rss / self.floor_rss

    @property
    def passed(self) -> bool:
        return self.time_ratio <= TARGET and self.rss_ratio <= TARGET

    def line(self) -> str:
        return (f"{self.shape:13}{self.rows:>12,}{self.floor_time:9.2f}{self.plan_time:9.2f}"
                f"{self.time_ratio:7.2f}{self.floor_rss:10d}{self.plan_rss:10d}"
                f"{self.rss_ratio:7.2f}{self.plan_cpu / self.floor_cpu:7.2f}"
                f"  {'PASS' if self.passed else 'FAIL'}")


HEADER = (f"{'shape':13}{'source ids':>12}{'floor s':>9}{'plan s':>9}{'time':>7}"
          f"{'floor MiB':>10}{'plan MiB':>10}{'memory':>7}{'cpu':>7}  result")


def bench(shape: str, rows: int, stale_share: float, repeat: int) -> Row:
    source, remote, stale = make_data(shape, rows, stale_share)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "reconciler.toml"
        config.write_text(CONFIG.format(source=source, remote=remote), encoding="utf-8")
        floor_args = (FLOOR, str(source), str(remote))
        plan_args = (PLAN, str(config), str(Path(tmp) / "reports"))
        # One unmeasured run of each (files in the page cache, bytecode compiled), then
        # the measured ones in ABBA order, so a drift in the machine's load favours neither.
        measure(*floor_args)
        measure(*plan_args)
        floors, plans = [], []
        for n in range(repeat):
            order = ((floors, floor_args), (plans, plan_args))
            for runs, args in order if n % 2 == 0 else order[::-1]:
                runs.append(measure(*args))
        summary = json.loads((Path(tmp) / "reports" / "bench" / "summary.json").read_text())
    # With the default safety rules a first plan defers every id (grace): count both.
    planned = summary["to_delete"] + summary.get("pending_grace", 0)
    assert int(floors[0][2]) == planned == stale, (floors[0], summary)
    row = Row(shape, rows,
              floor_time=statistics.median(f[0] for f in floors),
              plan_time=statistics.median(p[0] for p in plans),
              floor_rss=int(statistics.median(f[1] for f in floors)),
              plan_rss=int(statistics.median(p[1] for p in plans)),
              floor_cpu=statistics.median(f[3] for f in floors),
              plan_cpu=statistics.median(p[3] for p in plans))
    print(row.line(), flush=True)
    return row


def _load() -> str:
    """The 1-minute load average: wall time means little when the machine is busy."""
    return f"{os.getloadavg()[0]:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", default="5000000,10000000",
                        help="comma-separated source sizes")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--stale", type=float, default=0.5 / 10.5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        parser.error(f"unknown shapes {sorted(unknown)}; known: {', '.join(SHAPES)}")
    sizes = [int(r) for r in args.rows.split(",") if r]
    print(f"remote = source + {args.stale:.2%} stale ids; each figure the median of "
          f"{args.repeat} fresh processes; PASS: plan/floor within {TARGET}x in time (wall) "
          "and memory (peak RSS); cpu (user+sys) for information; load average "
          f"{_load()} on {os.cpu_count()} cores")
    print(HEADER)
    results = [bench(shape, rows, args.stale, args.repeat) for rows in sizes for shape in shapes]
    failed = [r for r in results if not r.passed]
    worst = max(max(r.time_ratio, r.rss_ratio) for r in results)
    print(f"{len(results) - len(failed)} of {len(results)} within {TARGET}x; worst ratio "
          f"{worst:.2f}; load average {_load()}")
    for r in failed:
        print(f"FAIL {r.shape} {r.rows:,}: time {r.time_ratio:.2f}x, memory {r.rss_ratio:.2f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
