"""The daemon as an operator runs it: a real process, real signals, a real notify socket."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from reconciler.config import load_config
from reconciler.runs.runner import default_backend
from reconciler.service.daemon import Daemon
from reconciler.store.journal import Journal
from tests.helpers import (
    free_port,
    job_toml,
    start_reconciler,
    wait_for,
    write_config,
    write_csv,
)

pytestmark = pytest.mark.integration

ITEMS = [f"i{n:04d}" for n in range(300)]


def runs_of(state_dir: Path, job: str) -> list:
    if not (state_dir / "journal.sqlite3").exists():
        return []
    journal = Journal.in_state_dir(state_dir)
    try:
        return journal.runs(job)
    finally:
        journal.close()


def daemon_config(tmp_path, emulators, schedules, port=None, extra_jobs=""):
    text = ""
    for (name, emulator), schedule in zip(emulators.items(), schedules, strict=True):
        source = tmp_path / f"{name}.csv"
        if not source.exists():
            write_csv(source, ITEMS)
        text += f'[jobs.{name}]\nschedule = "{schedule}"\n'
        text += job_toml(name, emulator.base_url, source, emulator=emulator)
    daemon = "[daemon]\nstop_timeout_seconds = 20\n"
    if port:
        daemon += f'listen = "127.0.0.1:{port}"\n'
    path = write_config(tmp_path, daemon + text + extra_jobs)
    return path


def test_the_daemon_runs_reloads_reports_and_stops(tmp_path, start_emulator):
    one, two = start_emulator(ITEMS), start_emulator(ITEMS)
    port = free_port()
    config_path = daemon_config(tmp_path, {"one": one, "two": two}, ["every 1s", "every 1s"],
                                port)
    state = tmp_path / "state"
    notify_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(notify_path)
        notify.settimeout(60)
        daemon = start_reconciler("--config", config_path, "daemon",
                                  env={"NOTIFY_SOCKET": notify_path})
        try:
            assert notify.recv(200).startswith(b"READY=1")
            wait_for(lambda: len(runs_of(state, "one")) >= 2 and len(runs_of(state, "two")) >= 2,
                     what="both jobs to run twice")
            health = httpx.get(f"http://127.0.0.1:{port}/healthz")
            assert (health.status_code, health.text) == (200, "ok\n")
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            assert 'reconciler_runs_total{reconciler_job="one",result="ok"}' in metrics
            assert 'reconciler_source_ids{reconciler_job="two"} 300.0' in metrics
            assert "_created" not in metrics
            assert 'job="' not in metrics.replace('reconciler_job="', "")
            assert 'reconciler_build_info{python="' in metrics

            # SIGHUP with an added job: it runs without a restart.
            three = start_emulator(ITEMS)
            daemon_config(tmp_path, {"one": one, "two": two, "three": three},
                          ["every 1s", "every 1s", "every 1s"], port)
            daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: len(runs_of(state, "three")) >= 1, what="the added job")

            # SIGHUP with an invalid config: the old one keeps running.
            good = config_path.read_text()
            config_path.write_text(good.replace('schedule = "every 1s"', 'schedule = "often"', 1))
            daemon.send_signal(signal.SIGHUP)
            count = len(runs_of(state, "two"))
            wait_for(lambda: len(runs_of(state, "two")) > count, what="runs after a bad reload")
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200

            # SIGTERM while a delete is in flight: it is journaled and the process exits.
            one.hold("bulk", 0)
            write_csv(tmp_path / "one.csv", ITEMS[10:])
            assert one.held.wait(60)
            daemon.send_signal(signal.SIGTERM)
            one.release()
            out, err = daemon.communicate(timeout=30)
            assert daemon.returncode == 0, err[-2000:]
            messages = []
            while True:
                try:
                    messages.append(notify.recv(200))
                except TimeoutError:
                    break
                if messages[-1] == b"STOPPING=1":
                    break
            assert messages[-1] == b"STOPPING=1"
        finally:
            if daemon.returncode is None:
                daemon.kill()
    assert '"event": "config.reload_failed"' in out
    assert "jobs.one.schedule: 'often'" in out
    statuses = {r.status for job in ("one", "two", "three") for r in runs_of(state, job)}
    assert "running" not in statuses  # every run was closed in the journal
    assert set(one.stats.deleted) == set(ITEMS[:10])


def test_a_failing_job_does_not_stop_the_other_or_the_daemon(tmp_path, start_emulator):
    good, bad = start_emulator(ITEMS), start_emulator(ITEMS)
    config_path = daemon_config(tmp_path, {"good": good, "bad": bad}, ["every 1s", "every 1s"])

    def factory(job, clock, log):
        if job.name == "bad":
            raise RuntimeError("backend exploded")
        return default_backend(job, clock, log)

    daemon = Daemon(config_path, factory=factory)
    thread = threading.Thread(target=daemon.serve, kwargs={"install_signals": False})
    thread.start()
    try:
        failures = daemon.metrics.failures.labels("bad")
        wait_for(lambda: failures._value.get() >= 2 and
                 len(runs_of(tmp_path / "state", "good")) >= 2, what="runs and failures")
        assert daemon.scheduler.running and daemon.healthy()
    finally:
        daemon.stop.request("test")
        thread.join(30)
    assert not thread.is_alive()


def test_daemon_once_runs_every_job_and_exits(tmp_path, start_emulator):
    one = start_emulator(ITEMS)
    config_path = daemon_config(tmp_path, {"one": one}, ["*/5 * * * *"])
    write_csv(tmp_path / "one.csv", ITEMS[5:])
    done = subprocess.run([sys.executable, "-m", "reconciler", "--config", str(config_path),
                           "daemon", "--once"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("one: 5 deleted, 0 not deleted")


def test_a_bad_schedule_is_a_config_error(tmp_path, start_emulator):
    one = start_emulator(ITEMS)
    config_path = daemon_config(tmp_path, {"one": one}, ["61 * * * *"])
    done = subprocess.run([sys.executable, "-m", "reconciler", "--config", str(config_path),
                           "daemon"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"reconciler: {config_path}: jobs.one.schedule: '61 * * * *': ")


def test_the_systemd_unit_has_its_keys():
    unit = Path(__file__).parents[2] / "systemd" / "reconciler.service"
    text = unit.read_text()
    for key in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "DynamicUser=yes",
                "RestartPreventExitStatus=2", "SystemCallFilter=@system-service",
                "StateDirectory=", "LoadCredential=", "ProtectSystem=strict", "ProtectHome=",
                "NoNewPrivileges=", "PrivateTmp=", "CapabilityBoundingSet=",
                "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"):
        assert key in text, key
    # systemd-analyze verify runs in tests/browser/test_systemd_unit.py (make test-browser).


def test_load_config_of_the_daemon_example(tmp_path, start_emulator):
    one = start_emulator(ITEMS)
    config = load_config(daemon_config(tmp_path, {"one": one}, ["every 15m"], 9999))
    assert config.daemon.listen == "127.0.0.1:9999" and config.jobs["one"].schedule == "every 15m"


def test_a_job_failing_run_after_run_degrades_healthz_and_logs_its_traceback(
        tmp_path, start_emulator, log_stream):
    import json
    import re

    good, bad = start_emulator(ITEMS), start_emulator(ITEMS)
    port = free_port()
    config_path = daemon_config(tmp_path, {"good": good, "bad": bad}, ["every 1s", "every 1s"],
                                port)

    def factory(job, clock, log):
        if job.name == "bad":
            raise RuntimeError("backend exploded")
        return default_backend(job, clock, log)

    daemon = Daemon(config_path, factory=factory)
    thread = threading.Thread(target=daemon.serve, kwargs={"install_signals": False})
    thread.start()
    try:
        wait_for(lambda: daemon.failed_runs.get("bad", (0, ""))[0] >= 3, what="3 failed runs")
        health = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert health.status_code == 503
        assert re.fullmatch(r"degraded: job bad failed \d+ runs in a row \(last: unexpected "
                            r"error: RuntimeError: backend exploded\)\n", health.text)
        assert "good" not in daemon.failed_runs
    finally:
        daemon.stop.request("test")
        thread.join(30)
    events = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    crashed = [e for e in events if e["event"] == "job.crashed"]
    assert crashed and crashed[0]["run_id"] and crashed[0]["job"] == "bad"
    assert "RuntimeError: backend exploded" in crashed[0]["message"]
    assert crashed[0]["traceback"].rstrip().endswith("RuntimeError: backend exploded")
    run_crashed = next(e for e in events if e["event"] == "run.crashed")
    assert run_crashed["traceback"].startswith("Traceback (most recent call last)")
    assert run_crashed["traceback"].rstrip().endswith("RuntimeError: backend exploded")
    assert {r.status for r in runs_of(tmp_path / "state", "bad")} == {"failed"}


def test_the_daemon_does_not_start_with_an_unusable_state_dir(tmp_path, start_emulator):
    one = start_emulator(ITEMS)
    config_path = daemon_config(tmp_path, {"one": one}, ["every 1s"])
    state = load_config(config_path).state_dir
    shutil.rmtree(state, ignore_errors=True)
    state.write_text("a file")
    done = subprocess.run([sys.executable, "-m", "reconciler", "--config", str(config_path),
                           "daemon"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stderr == f"reconciler: state_dir {state} is not a folder\n"
