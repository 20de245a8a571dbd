"""Prometheus metrics and the health endpoint of the daemon (``/metrics``, ``/healthz``).

Exposition is prometheus_client's; the tiny HTTP server is the standard library's, so one
listener serves both paths. Metrics are fed from each run's summary, after the run, so the
run code knows nothing of them.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from reconciler import __version__

RESULTS = {0: "ok", 1: "error", 2: "config_error", 3: "refused", 4: "items_failed"}
OUTCOMES = ("queued", "failed", "unknown", "not_sent")
# Not "job" (nor "instance"): Prometheus sets those on every scraped series itself, and a
# clash renames ours to "exported_job".
JOB = "reconciler_job"

# No "_created" series beside every counter and histogram (it doubles the series count).
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """Every job's series exist from the start (alerts see 0, not "no data"); a job removed
    from the config takes its series with it."""

    def __init__(self, jobs: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("reconciler_runs", "Runs by job and result", [JOB, "result"],
                            registry=r)
        self.items = Counter("reconciler_items", "Items by outcome", [JOB, "outcome"],
                             registry=r)
        self.deletes_sent = Counter("reconciler_deletes_sent", "Ids sent in bulk deletes",
                                    [JOB], registry=r)
        self.throttled = Counter("reconciler_throttled", "429 answers", [JOB], registry=r)
        self.retries = Counter("reconciler_retries", "Retried requests", [JOB], registry=r)
        self.budget_wait = Counter("reconciler_budget_wait_seconds",
                                   "Time spent waiting for the rate budget", [JOB], registry=r)
        self.failures = Counter("reconciler_job_failures", "Runs that raised unexpectedly",
                                [JOB], registry=r)
        self.inventory = Gauge("reconciler_inventory_ids", "Remote ids at the last run",
                               [JOB], registry=r)
        self.source = Gauge("reconciler_source_ids", "Source ids at the last run", [JOB],
                            registry=r)
        self.pending_grace = Gauge("reconciler_pending_grace_ids",
                                   "Ids missing from the source, not yet deleted (grace)",
                                   [JOB], registry=r)
        self.last_success = Gauge("reconciler_last_success_timestamp_seconds",
                                  "When the job last ended well", [JOB], registry=r)
        self.duration = Histogram("reconciler_run_duration_seconds", "Run duration", [JOB],
                                  buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600),
                                  registry=r)
        self.reload_failures = Counter("reconciler_config_reload_failures",
                                       "Reloads (SIGHUP) refused because the new config was "
                                       "invalid", registry=r)
        self.build_info = Gauge("reconciler_build_info", "The running build (always 1)",
                                ["version", "python"], registry=r)
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self.replica_info = Gauge("reconciler_replica_info",
                                  "Which replica (hostname:pid) serves these series (always 1)",
                                  ["replica"], registry=r)
        self.replica_info.labels(f"{socket.gethostname()}:{os.getpid()}").set(1)
        self.lease_elsewhere = Counter("reconciler_lease_held_elsewhere",
                                       "Slots skipped because another replica held the job's "
                                       "lease", [JOB], registry=r)
        self._children: dict[str, set[tuple[Any, tuple[str, ...]]]] = {}
        self.set_jobs(jobs)

    def _child(self, metric: Any, job: str, *rest: str) -> Any:
        """``metric.labels(job, *rest)``, remembered so the job's series can be dropped."""
        self._children.setdefault(job, set()).add((metric, (job, *rest)))
        return metric.labels(job, *rest)

    def set_jobs(self, jobs: Iterable[str]) -> None:
        """Initialise every label set of the configured jobs; drop those of removed jobs."""
        wanted = set(jobs)
        for job in set(self._children) - wanted:
            for metric, labels in self._children.pop(job):
                with contextlib.suppress(KeyError):
                    metric.remove(*labels)
        for job in wanted - set(self._children):
            for result in RESULTS.values():
                self._child(self.runs, job, result)
            for outcome in OUTCOMES:
                self._child(self.items, job, outcome)
            for metric in (self.deletes_sent, self.throttled, self.retries, self.budget_wait,
                           self.failures, self.inventory, self.source, self.pending_grace,
                           self.last_success, self.duration):
                self._child(metric, job)

    def failed(self, job: str) -> None:
        self._child(self.failures, job).inc()

    def observe(self, job: str, exit_code: int, summary: Mapping[str, Any]) -> None:
        c = self._child
        c(self.runs, job, RESULTS.get(exit_code, str(exit_code))).inc()
        for outcome in ("deleted", "failed", "unknown", "not_sent"):
            count = int(summary.get(outcome) or 0)
            if count:
                c(self.items, job, "queued" if outcome == "deleted" else outcome).inc(count)
        for reason, count in (summary.get("skipped") or {}).items():
            c(self.items, job, f"skipped_{reason}").inc(count)
        sent = sum(int(summary.get(k) or 0) for k in ("deleted", "failed", "unknown"))
        c(self.deletes_sent, job).inc(sent)
        c(self.throttled, job).inc(int(summary.get("throttled") or 0))
        c(self.retries, job).inc(int(summary.get("retries") or 0))
        c(self.budget_wait, job).inc(float(summary.get("budget_wait_seconds") or 0))
        c(self.inventory, job).set(int(summary.get("remote_ids") or 0))
        c(self.source, job).set(int(summary.get("source_ids") or 0))
        c(self.pending_grace, job).set(int(summary.get("pending_grace") or 0))
        c(self.duration, job).observe(float(summary.get("run_seconds") or 0))
        if exit_code == 0:
            c(self.last_success, job).set(time.time())


class HealthServer:
    """Serves ``/healthz`` (200 while ``healthy()``, else 503 with the reason) and ``/metrics``."""

    def __init__(self, address: str, metrics: Metrics,
                 healthy: Callable[[], bool | str]) -> None:
        host, _, port = address.rpartition(":")
        metrics_ref, healthy_ref = metrics, healthy

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    # healthy() is True/False, or '' (healthy) / the reason it is not.
                    answer = healthy_ref()
                    ok = answer is True or answer == ""
                    reason = "unhealthy" if answer is False else str(answer)
                    body, status, kind = (b"ok\n" if ok else f"{reason}\n".encode(),
                                          200 if ok else 503, "text/plain; charset=utf-8")
                elif self.path == "/metrics":
                    body, status = generate_latest(metrics_ref.registry), 200
                    kind = CONTENT_TYPE_LATEST
                else:
                    body, status, kind = b"not found\n", 404, "text/plain"
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((host, int(port)), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
