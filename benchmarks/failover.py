"""Failover of replicas: takeover time and the combined rate against the API's ceiling.

Two real ``reconciler daemon`` processes on one config and one PostgreSQL (a throwaway
pgserver, or ``RECONCILER_TEST_POSTGRES``) delete ``--ids`` ids in batches of ``--batch``
from the emulator (``--limit`` bulk calls per ``--window`` s). The replica holding the lease
is killed with SIGKILL while its ``--kill-after``+1-th delete is in flight; the other takes
the lease at its next slot (``every 1s``) and resumes the plan. Printed:

* takeover: from the kill to the survivor's first delete, and to the plan's end;
* the combined rate of bulk calls over the whole delete phase (both replicas) against the
  ceiling ``limit / window``, and the 429s seen (target: zero);
* ids sent more than once (at most the batch in flight at the kill).

    python benchmarks/failover.py [--ids 3000] [--batch 100] [--limit 5] [--window 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from reconciler.emulator import Emulator, EmulatorSettings
from tests.helpers import FAST_LIMITS, job_toml, start_reconciler, write_csv


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ids", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--kill-after", type=int, default=6)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="reconciler-failover-"))
    server, admin_dsn = start_postgres()
    try:
        run(args, folder, admin_dsn)
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def start_postgres():
    given = os.environ.get("RECONCILER_TEST_POSTGRES")
    if given:
        return None, given
    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="reconciler-pg-"), cleanup_mode="stop")
    return server, server.get_uri()


def run(args, folder: Path, admin_dsn: str) -> None:
    name = f"failover_{os.getpid()}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    params = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    host = str(params.get("host", ""))
    dsn = (f"postgresql://{params.get('user', 'postgres')}@/{name}?host={host}"
           if host.startswith("/") else
           f"postgresql://{params.get('user', 'postgres')}@{host}:{params.get('port', 5432)}"
           f"/{name}")
    items = [f"sku-{n:06d}" for n in range(args.ids * 2)]
    stale = set(items[::2])
    emulator = Emulator(items, EmulatorSettings(bulk_requests_per_window=args.limit,
                                                bulk_window_seconds=args.window))
    emulator.start()
    source = write_csv(folder / "products.csv", [i for i in items if i not in stale])
    limits = {**FAST_LIMITS, "max_batch_ids": args.batch, "requests_per_window": args.limit,
              "window_seconds": args.window}
    config = folder / "reconciler.toml"
    config.write_text(f'state = "{dsn}"\nstate_dir = "state"\n[logging]\nformat = "json"\n'
                      'level = "warning"\n[jobs.products]\nschedule = "every 1s"\n'
                      + job_toml("products", emulator.base_url, source, emulator=emulator,
                                 limits=limits), encoding="utf-8")
    emulator.hold("bulk", args.kill_after)
    replicas = [start_reconciler("--config", config, "daemon") for _ in range(2)]
    try:
        arrivals = watch_first(emulator)
        assert emulator.held.wait(600), "no replica reached the held delete"
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pid FROM runs WHERE status = 'running'"
                               " ORDER BY seq DESC LIMIT 1").fetchone()
        victim = next(r for r in replicas if row and r.pid == row[0])
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(30)
        killed = time.monotonic()
        before = emulator.stats.bulk_delete_requests
        emulator.release()
        first_after = None
        while emulator.ids() != set(items) - stale:
            if first_after is None and emulator.stats.bulk_delete_requests > before + 1:
                first_after = time.monotonic()
            time.sleep(0.005)
            if time.monotonic() - killed > 600:
                raise SystemExit("the plan was not finished within 600 s")
        finished = time.monotonic()
    finally:
        for replica in replicas:
            if replica.returncode is None:
                replica.kill()
        emulator.stop()
    calls = emulator.stats.bulk_delete_requests
    elapsed = finished - arrivals
    ceiling = args.limit / args.window
    print(f"replicas: 2 daemons, one PostgreSQL; {len(stale)} ids in {calls} bulk calls of "
          f"<= {args.batch}; API ceiling {args.limit} per {args.window:g} s")
    print(f"takeover: first delete by the survivor {first_after - killed:.2f} s after the "
          f"SIGKILL (lease freed at once; next slot <= 1 s); plan finished "
          f"{finished - killed:.2f} s after it")
    print(f"combined rate: {calls / elapsed:.2f} calls/s over {elapsed:.1f} s "
          f"= {calls / elapsed / ceiling:.0%} of the ceiling {ceiling:.2f} calls/s "
          f"(the takeover gap included); 429s: {emulator.stats.throttled}")
    print(f"ids sent more than once: {emulator.stats.bulk_delete_entries - len(stale)} "
          f"(at most the batch in flight at the kill: {args.batch}); deleted exactly the plan: "
          f"{sorted(emulator.stats.deleted) == sorted(stale)}")


def watch_first(emulator: Emulator) -> float:
    """When the first bulk delete arrives (the delete phase starts)."""
    while emulator.stats.bulk_delete_requests == 0:
        time.sleep(0.005)
    return time.monotonic()


if __name__ == "__main__":
    main()
