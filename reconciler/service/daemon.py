"""``reconciler daemon``: every job on its schedule, until stopped. Only a clock around runs.

APScheduler 3 (BackgroundScheduler, in-memory job store) fires each job from its
``schedule``: a 5-field cron line in ``[daemon] timezone`` or ``every N(s|m|h)``, plus
the job's ``jitter_seconds``. A job never overlaps itself (``max_instances=1``), missed
slots coalesce into one run, and a run later than ``misfire_grace_seconds`` past its slot
is skipped and logged. Jobs of different catalogs run in parallel (``workers`` threads);
jobs of one catalog share its rate budget through the budget file.

Signals: SIGTERM/SIGINT stop scheduling and ask running jobs to stop gracefully (their
journal keeps them resumable), then exit 0 within ``stop_timeout_seconds``; a second
signal exits at once. SIGHUP re-reads the config: an invalid one is logged and the old one
kept; added, removed and changed jobs take effect without a restart. A job that raises is
logged with its run id and retried at its next slot; it never stops the daemon.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.config import INTERVAL_PATTERN, Config, Job, load_config
from reconciler.core.errors import (
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    ConfigError,
    EnvironmentProblem,
    ReconcilerError,
)
from reconciler.logging import get_logger
from reconciler.runs.jobs import run_jobs
from reconciler.runs.runner import (
    BackendFactory,
    RunRequest,
    RunResult,
    default_backend,
    run_job,
)
from reconciler.runs.signals import StopFlag
from reconciler.service import sdnotify
from reconciler.service.metrics import HealthServer, Metrics
from reconciler.store import job_lease, open_store, preflight, uses_postgres
from reconciler.store.locks import JobBusy

TICK_SECONDS = 1.0
_UNIT = {"s": 1, "m": 60, "h": 3600}


def make_trigger(job: Job, timezone: str) -> Any:
    """The APScheduler trigger of a job's ``schedule``; ConfigError naming the key if bad."""
    schedule = job.schedule or ""
    interval = INTERVAL_PATTERN.match(schedule.strip())
    jitter = int(job.jitter_seconds) or None
    try:
        if interval:
            seconds = int(interval.group(1)) * _UNIT[interval.group(2)]
            return IntervalTrigger(seconds=seconds, timezone=timezone, jitter=jitter)
        trigger = CronTrigger.from_crontab(schedule, timezone=timezone)
        trigger.jitter = jitter
        return trigger
    except (ValueError, LookupError) as exc:
        raise ConfigError(f"jobs.{job.name}.schedule: {schedule!r}: {exc}") from None


class Daemon:
    def __init__(self, config_path: Path, *, factory: BackendFactory = default_backend,
                 environ: dict[str, str] | None = None) -> None:
        self.config_path = config_path
        self.config = load_config(config_path, environ)
        self._environ = environ
        self._check_schedules(self.config)
        self.factory = factory
        self.stop = StopFlag()
        self.reload_requested = threading.Event()
        self.metrics = Metrics(self.config.jobs)
        self.log = get_logger(component="daemon")
        self.last_tick = time.monotonic()
        self.failed_runs: dict[str, tuple[int, str]] = {}
        self._health_lock = threading.Lock()
        settings = self.config.daemon
        self.scheduler = BackgroundScheduler(
            timezone=settings.timezone,
            executors={"default": ThreadPoolExecutor(settings.workers)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": int(settings.misfire_grace_seconds)},
        )
        self.scheduler.add_listener(self._missed, EVENT_JOB_MISSED)

    # -- scheduling ----------------------------------------------------------------------

    def _check_schedules(self, config: Config) -> None:
        for job in config.jobs.values():
            if not job.schedule:
                raise ConfigError(f"{config.path}: jobs.{job.name}.schedule: missing key "
                                  "(the daemon runs every job on its schedule)")
            make_trigger(job, config.daemon.timezone)

    def _schedule(self, job: Job) -> None:
        self.scheduler.add_job(self._run, make_trigger(job, self.config.daemon.timezone),
                               id=job.name, name=job.name, args=[job.name],
                               replace_existing=True)

    def _missed(self, event: JobExecutionEvent) -> None:
        self.log.warning("job.missed", job=event.job_id,
                         scheduled_for=event.scheduled_run_time.isoformat())

    def _run(self, name: str) -> None:
        """One scheduled run; nothing it raises may reach the scheduler."""
        if self.stop():
            return
        config = self.config
        job = config.jobs.get(name)
        if job is None:
            return
        if uses_postgres(config) and self._leased_elsewhere(config, name):
            return
        try:
            result = run_job(config, job, RunRequest(dry_run=False,
                                                     item_events=config.logging.item_events),
                             backend_factory=self.factory, stop=self.stop)
        except Exception as exc:  # a job that raises never kills the daemon
            self.metrics.failed(name)
            self._count_run(name, False, f"{type(exc).__name__}: {exc}")
            self.log.error("job.crashed", job=name, run_id=None,
                           error=f"{type(exc).__name__}: {exc}",
                           traceback=traceback.format_exc())
            return
        self.metrics.observe(name, result.exit_code, result.summary)
        failed = result.exit_code not in (EXIT_OK, EXIT_ITEMS_FAILED)
        if result.exit_code == EXIT_UNEXPECTED:
            self.metrics.failures.labels(name).inc()
        self._count_run(name, not failed, result.message)
        if result.traceback:
            self.log.error("job.crashed", job=name, run_id=result.run_id,
                           exit_code=result.exit_code, message=result.message,
                           traceback=result.traceback)
            return
        (self.log.error if failed else self.log.info)(
            "job.done", job=name, run_id=result.run_id, exit_code=result.exit_code,
            message=result.message)

    def _leased_elsewhere(self, config: Config, name: str) -> bool:
        """With replicas, a slot whose job another replica is running is not a run here:
        no journal row, no report, no failed run (the lease's holder does the work)."""
        lease = job_lease(config, name)
        try:
            lease.acquire()
        except JobBusy as exc:
            self.metrics.lease_elsewhere.labels(name).inc()
            self.log.info("job.leased_elsewhere", job=name, detail=str(exc))
            return True
        except ReconcilerError:
            return False  # the run itself will say what is wrong, once, in its report
        lease.release()
        return False

    def _count_run(self, name: str, ok: bool, message: str) -> None:
        """Consecutive failed runs per job, for /healthz (``health_max_failed_runs``)."""
        with self._health_lock:
            if ok:
                self.failed_runs.pop(name, None)
            else:
                count = self.failed_runs.get(name, (0, ""))[0] + 1
                self.failed_runs[name] = (count, message)

    def health_problem(self) -> str:
        """'' when healthy; else why /healthz answers 503 (stalled loop, failing jobs)."""
        if not self.healthy():
            return "unhealthy: the scheduler loop is not ticking"
        limit = self.config.daemon.health_max_failed_runs
        with self._health_lock:
            failing = sorted((name, count, message) for name, (count, message)
                             in self.failed_runs.items() if limit and count >= limit)
        return "; ".join(f"degraded: job {name} failed {count} runs in a row (last: {message})"
                         for name, count, message in failing)

    # -- reload --------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the config; keep the old one (and say why) when the new one is invalid."""
        try:
            new = load_config(self.config_path, self._environ)
            self._check_schedules(new)
        except ReconcilerError as exc:
            self.log.error("config.reload_failed", error=str(exc), keeping="the running config")
            self.metrics.reload_failures.inc()
            return False
        old, self.config = self.config, new
        for name in set(old.jobs) - set(new.jobs):
            self.scheduler.remove_job(name)
            self.log.info("job.removed", job=name)
        for name, job in new.jobs.items():
            if old.jobs.get(name) != job:
                self._schedule(job)
                self.log.info("job.scheduled", job=name, change="added" if name not in old.jobs
                              else "changed", next_run=self._next_run(name))
        self.metrics.set_jobs(new.jobs)
        self.log.info("config.reloaded", jobs=sorted(new.jobs))
        return True

    def _next_run(self, name: str) -> str | None:
        job = self.scheduler.get_job(name)
        when = getattr(job, "next_run_time", None) if job else None
        return when.isoformat() if when else None

    # -- the loop ------------------------------------------------------------------------

    def healthy(self) -> bool:
        age = time.monotonic() - self.last_tick
        return not self.stop() and age <= self.config.daemon.health_max_tick_age_seconds

    def _preflight(self) -> None:
        """Before scheduling: state_dir must take writes (else one line, exit 3); rows of
        runs whose process died become ``crashed`` (their next run resumes them)."""
        preflight.writable_dir(self.config.state_dir, "state_dir")
        journal = open_store(self.config)
        try:
            crashed = journal.mark_crashed()
        finally:
            journal.close()
        if crashed:
            self.log.warning("runs.crashed", run_ids=crashed)
        for job in self.config.jobs.values():
            try:
                preflight.readable_file(job.source.path, "source")
            except EnvironmentProblem as exc:  # exports may land later: say so, go on
                self.log.warning("job.source_unreadable", job=job.name, error=str(exc))

    def serve(self, install_signals: bool = True) -> int:
        self._preflight()
        if install_signals:
            self._install_signals()
        health = None
        if self.config.daemon.listen:
            health = HealthServer(self.config.daemon.listen, self.metrics, self.health_problem)
            health.start()
        for job in self.config.jobs.values():
            self._schedule(job)
        self.scheduler.start()
        for name in self.config.jobs:
            self.log.info("job.scheduled", job=name, next_run=self._next_run(name))
        sdnotify.notify("READY=1\nSTATUS=scheduling " + ", ".join(self.config.jobs))
        self._loop()
        self.log.info("daemon.stopping", reason=self.stop.reason)
        sdnotify.notify("STOPPING=1")
        self._shutdown()
        if health is not None:
            health.stop()
        self.log.info("daemon.stopped")
        return EXIT_OK

    def _loop(self) -> None:
        watchdog = sdnotify.watchdog_interval()
        last_ping = 0.0
        while not self.stop():
            self.last_tick = time.monotonic()
            if watchdog is not None and self.last_tick - last_ping >= watchdog:
                sdnotify.notify("WATCHDOG=1")
                last_ping = self.last_tick
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            self.stop.event.wait(min(TICK_SECONDS, watchdog or TICK_SECONDS))

    def _shutdown(self) -> None:
        """Stop scheduling; running jobs see the stop flag; wait for them, bounded."""
        self.scheduler.pause()
        done = threading.Event()

        def shut() -> None:
            self.scheduler.shutdown(wait=True)
            done.set()

        threading.Thread(target=shut, daemon=True).start()
        if not done.wait(self.config.daemon.stop_timeout_seconds):
            self.log.error("daemon.stop_timeout", seconds=self.config.daemon.stop_timeout_seconds)

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            if self.stop():
                import os

                os._exit(128 + signum)  # a second signal: at once (the journal is consistent)
            self.stop.request(signal.Signals(signum).name)

        def hup(_signum: int, _frame: Any) -> None:
            self.reload_requested.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)

    # -- daemon --once -------------------------------------------------------------------

    def once(self, report: Callable[[str, int, str], None]) -> list[int]:
        """Run every job once now, one after the other (for cron and CI users)."""

        def observe(job: Job, result: RunResult) -> None:
            self.metrics.observe(job.name, result.exit_code, result.summary)
            report(job.name, result.exit_code, f"{result.message} (report {result.report_dir})")

        return run_jobs(self.config, list(self.config.jobs.values()), RunRequest(dry_run=False),
                        stop=self.stop, factory=self.factory, on_result=observe)

