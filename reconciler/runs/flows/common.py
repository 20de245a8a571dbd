"""Pieces the restore and purge flows share: the executor under the job's budget, with
progress and the stop flag, and the split of ids the backend cannot address."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from reconciler.backends.base import Backend, ItemResult
from reconciler.core.batching import BatchShape
from reconciler.core.plan import IdStats, Plan
from reconciler.core.states import Outcome as O
from reconciler.core.states import SkipReason
from reconciler.runs.context import Context
from reconciler.runs.executor import ExecutionResult, Executor, Outcome
from reconciler.runs.progress import Progress
from reconciler.store import catalog_budget


def addressable(backend: Backend, ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """(ids the backend can address, ids it cannot: no API edit can touch them)."""
    forbidden = backend.address_rules.forbidden_substrings
    ok: list[str] = []
    not_ok: list[str] = []
    for item_id in ids:
        (not_ok if any(s in item_id for s in forbidden) else ok).append(item_id)
    return ok, not_ok


def execute(ctx: Context, backend: Backend, ids: list[str], phase: str,
            send: Callable[[list[str]], list[ItemResult]] | None = None,
            shape: BatchShape | None = None) -> ExecutionResult:
    """Send ``ids`` in batches through the shared rate budget; stops between requests
    when ``ctx.stop`` is set (the rest ``not_sent``)."""
    limits = ctx.job.limits
    budget = catalog_budget(ctx.config, backend.budget_key, limits.requests_per_window,
                            limits.window_seconds)
    progress = Progress(phase, ctx.log)

    def on_batch(_seq: int, outcomes: Sequence[Outcome], _seconds: float) -> None:
        progress.update(len(outcomes), len(ids))

    try:
        return Executor(backend, limits, ctx.clock, budget, should_stop=ctx.stop,
                        on_batch=on_batch, send=send, shape=shape).run(ids)
    finally:
        progress.close()


def counts_summary(result: ExecutionResult, done_key: str) -> dict[str, Any]:
    counts = result.counts()
    return {done_key: counts[O.QUEUED], "failed": counts[O.FAILED],
            "unknown": counts[O.UNKNOWN], "not_sent": counts[O.NOT_SENT],
            "batches": result.batches, "requests": result.requests,
            "throttled": result.throttled, "retries": result.retries}


def not_done(result: ExecutionResult) -> int:
    counts = result.counts()
    return counts[O.FAILED] + counts[O.UNKNOWN] + counts[O.NOT_SENT]


def report_plan(to_send: list[str], skipped: list[tuple[str, str]]) -> Plan:
    """A plan for the report: what was to be sent, and the ids skipped with their reason."""
    return Plan(to_delete=pa.array(to_send, pa.string()),
                skipped_ids=pa.array([i for i, _ in skipped], pa.string()),
                skipped_reasons=pa.array([r for _, r in skipped], pa.string()),
                source=IdStats(0, 0, 0), remote=IdStats(0, 0, 0))


UNADDRESSABLE = SkipReason.UNADDRESSABLE
