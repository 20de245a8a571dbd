"""Daemon metrics: labels that do not clash, every job's series from the start, none left
behind by a removed job, no _created series."""

from __future__ import annotations

from prometheus_client import generate_latest

from reconciler.service.metrics import Metrics


def text(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_every_configured_job_has_its_series_before_any_run():
    metrics = Metrics(["a", "b"])
    out = text(metrics)
    assert 'reconciler_runs_total{reconciler_job="a",result="refused"} 0.0' in out
    assert 'reconciler_items_total{outcome="failed",reconciler_job="b"} 0.0' in out
    assert 'reconciler_pending_grace_ids{reconciler_job="b"} 0.0' in out
    assert "reconciler_config_reload_failures_total 0.0" in out
    assert "reconciler_build_info{" in out
    assert "_created" not in out and 'job="' not in out.replace("reconciler_job", "")


def test_a_removed_job_takes_its_series_with_it():
    metrics = Metrics(["a", "b"])
    metrics.observe("b", 0, {"deleted": 3, "skipped": {"protected": 1}, "pending_grace": 7})
    assert 'reconciler_pending_grace_ids{reconciler_job="b"} 7.0' in text(metrics)
    metrics.set_jobs(["a", "c"])
    out = text(metrics)
    assert 'reconciler_job="b"' not in out
    assert 'reconciler_runs_total{reconciler_job="c",result="ok"} 0.0' in out
