"""Prometheus metrics and the health endpoint of the daemon (``/metrics``, ``/healthz``).

Exposition is prometheus_client's; the tiny HTTP server is the standard library's, so one
listener serves both paths. Metrics are fed from each run's summary, after the run, so the
run code knows nothing of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

RESULTS = {0: "ok", 1: "error", 2: "config_error", 3: "refused", 4: "items_failed"}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("reconciler_runs", "Runs by job and result", ["job", "result"],
                            registry=r)
        self.items = Counter("reconciler_items", "Items by outcome", ["job", "outcome"],
                             registry=r)
        self.deletes_sent = Counter("reconciler_deletes_sent", "Ids sent in bulk deletes",
                                    ["job"], registry=r)
        self.throttled = Counter("reconciler_throttled", "429 answers", ["job"], registry=r)
        self.retries = Counter("reconciler_retries", "Retried requests", ["job"], registry=r)
        self.budget_wait = Counter("reconciler_budget_wait_seconds",
                                   "Time spent waiting for the rate budget", ["job"], registry=r)
        self.failures = Counter("reconciler_job_failures", "Runs that raised unexpectedly",
                                ["job"], registry=r)
        self.inventory = Gauge("reconciler_inventory_ids", "Remote ids at the last run",
                               ["job"], registry=r)
        self.source = Gauge("reconciler_source_ids", "Source ids at the last run", ["job"],
                            registry=r)
        self.last_success = Gauge("reconciler_last_success_timestamp_seconds",
                                  "When the job last ended well", ["job"], registry=r)
        self.duration = Histogram("reconciler_run_duration_seconds", "Run duration", ["job"],
                                  buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600),
                                  registry=r)

    def observe(self, job: str, exit_code: int, summary: Mapping[str, Any]) -> None:
        self.runs.labels(job, RESULTS.get(exit_code, str(exit_code))).inc()
        for outcome in ("deleted", "failed", "unknown", "not_sent"):
            count = int(summary.get(outcome) or 0)
            if count:
                self.items.labels(job, "queued" if outcome == "deleted" else outcome).inc(count)
        for reason, count in (summary.get("skipped") or {}).items():
            self.items.labels(job, f"skipped_{reason}").inc(count)
        sent = sum(int(summary.get(k) or 0) for k in ("deleted", "failed", "unknown"))
        self.deletes_sent.labels(job).inc(sent)
        self.throttled.labels(job).inc(int(summary.get("throttled") or 0))
        self.retries.labels(job).inc(int(summary.get("retries") or 0))
        self.budget_wait.labels(job).inc(float(summary.get("budget_wait_seconds") or 0))
        self.inventory.labels(job).set(int(summary.get("remote_ids") or 0))
        self.source.labels(job).set(int(summary.get("source_ids") or 0))
        self.duration.labels(job).observe(float(summary.get("run_seconds") or 0))
        if exit_code == 0:
            self.last_success.labels(job).set(time.time())


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
