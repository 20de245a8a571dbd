"""Sending a plan's ids: the executor through the catalog's budget, every batch and
outcome journaled (``JournalLedger``), logged and counted in the summary.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

from reconciler.backends.base import Backend
from reconciler.core.clock import Clock
from reconciler.core.errors import EXIT_ITEMS_FAILED, EXIT_OK, describe_os_error
from reconciler.core.states import JOURNAL_STATE
from reconciler.runs.context import RunContext, RunRecord
from reconciler.runs.executor import FAILED, NOT_SENT, QUEUED, SKIPPED, UNKNOWN, Executor, Outcome
from reconciler.runs.progress import Progress
from reconciler.store import Store, catalog_budget, environment_errors
from reconciler.store.journal import STOPPED


class JournalLedger:
    """The executor's ledger, written to the journal; times itself for the summary."""

    def __init__(self, journal: Store, run_id: str, plan_run: str, clock: Clock) -> None:
        self.journal, self.run_id, self.plan_run, self.clock = journal, run_id, plan_run, clock
        self.seconds = 0.0

    def sending(self, seq: int, ids: Sequence[str]) -> None:
        started = time.perf_counter()
        now = self.clock.utcnow().timestamp()
        self.journal.mark_sent(self.run_id, self.plan_run, seq, ids, now)
        self.seconds += time.perf_counter() - started

    def answered(self, seq: int | None, outcomes: Sequence[Outcome]) -> None:
        started = time.perf_counter()
        self.journal.record_outcomes(
            self.run_id, self.plan_run, seq,
            [(o.item_id, JOURNAL_STATE[o.outcome], o.detail) for o in outcomes],
            self.clock.utcnow().timestamp(),
        )
        self.seconds += time.perf_counter() - started


def send_deletes(ctx: RunContext, rec: RunRecord, journal: Store, backend: Backend, plan_run: str,
                 ids: list[str]) -> tuple[int, str]:
    ledger = JournalLedger(journal, ctx.run_id, plan_run, ctx.clock)
    started = ctx.clock.monotonic()
    deleting = Progress("deleting", ctx.log)

    def on_batch(seq: int, outcomes: Sequence[Outcome], seconds: float) -> None:
        deleting.update(len(outcomes), len(ids))
        rec.html.batches.append((ctx.clock.monotonic() - started, len(outcomes)))
        log_batch(ctx, seq, outcomes, seconds)

    limits = ctx.job.limits
    budget = catalog_budget(ctx.config, backend.budget_key, limits.requests_per_window,
                            limits.window_seconds)
    executor = Executor(
        backend, limits, ctx.clock, budget,
        ledger=ledger, should_stop=ctx.stop, first_seq=journal.next_batch_seq(plan_run),
        on_outcome=partial(log_outcome, ctx), on_batch=on_batch,
    )
    failure: Exception | None = None
    try:
        result = executor.run(ids)
    except environment_errors() as exc:
        # The journal (or the budget file) failed mid-run: the report still says what the
        # server answered; the ids never sent are not_sent. The run then stops (exit 1).
        failure, result = exc, executor.partial
        result.stopped = f"stopped: {describe_os_error(exc)}"
        answered = {o.item_id for o in result.outcomes}
        sent = set(executor.in_flight) - answered  # on the wire, the answer lost
        result.outcomes.extend(Outcome(i, UNKNOWN if i in sent else NOT_SENT, result.stopped)
                               for i in ids if i not in answered)
    deleting.close()
    rec.outcomes = result.outcomes
    counts = result.counts()
    rec.summary.update(
        deleted=counts[QUEUED], failed=counts[FAILED], unknown=counts[UNKNOWN],
        not_sent=counts[NOT_SENT], batches=result.batches, requests=result.requests,
        throttled=result.throttled, retries=result.retries, splits=result.splits,
        budget_wait_seconds=round(result.budget_wait_seconds, 3),
        delete_seconds=round(ctx.clock.monotonic() - started, 3),
        journal_seconds=round(ledger.seconds, 3),
    )
    if result.stopped:
        rec.status = STOPPED
        rec.summary["error"] = result.stopped
        ctx.log.warning("run.stopped", reason=result.stopped)
    bad = counts[FAILED] + counts[UNKNOWN] + counts[NOT_SENT]
    if failure is not None:
        raise failure
    message = f"{counts[QUEUED]} deleted, {bad} not deleted"
    return (EXIT_ITEMS_FAILED if bad else EXIT_OK), message


def log_skipped(ctx: RunContext, ids: list[str], reasons: list[str]) -> None:
    if not ctx.request.item_events:
        return
    for item_id, reason in zip(ids, reasons, strict=True):
        ctx.log.info("item", item_id=item_id, outcome=SKIPPED, detail=reason)


def log_outcome(ctx: RunContext, outcome: Outcome) -> None:
    if not ctx.request.item_events:
        return
    level = ctx.log.info if outcome.outcome == QUEUED else ctx.log.warning
    level("item", item_id=outcome.item_id, outcome=outcome.outcome, detail=outcome.detail)


def log_batch(ctx: RunContext, number: int, outcomes: Sequence[Outcome], seconds: float) -> None:
    queued = sum(1 for o in outcomes if o.outcome == QUEUED)
    ctx.log.info(
        "batch", batch=number, size=len(outcomes), queued=queued,
        not_queued=len(outcomes) - queued, seconds=round(seconds, 3),
    )
