"""run --verify (and every real run): read back earlier deletes against the listing."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.runs.context import RunContext, RunRecord
from reconciler.store import Store
from reconciler.store.journal import STILL_PRESENT, VERIFIED_GONE


def verify_earlier(ctx: RunContext, rec: RunRecord, journal: Store, remote: pa.Array) -> None:
    """Read back ids queued by earlier runs: gone, still present (too long), or pending."""
    queued = journal.queued_before(ctx.job.name, ctx.run_id, ctx.target)
    if not queued:
        rec.summary["verified"] = {VERIFIED_GONE: 0, STILL_PRESENT: 0, "pending": 0}
        return
    if not rec.summary["inventory_complete"]:
        rec.summary["verified"] = {"skipped": "inventory incomplete", "pending": len(queued)}
        return
    ids = pa.array([q[1] for q in queued], type=remote.type)
    present = pc.is_in(ids, value_set=remote).to_pylist()
    now = ctx.clock.utcnow().timestamp()
    after = ctx.job.limits.verify_after_seconds
    updates = []
    for (plan_run, item_id, queued_at, _sends), listed in zip(queued, present, strict=True):
        if not listed:
            updates.append((plan_run, item_id, VERIFIED_GONE, ""))
        elif now - queued_at >= after:
            detail = f"still listed {int(now - queued_at)} s after it was queued; resent"
            updates.append((plan_run, item_id, STILL_PRESENT, detail))
    journal.mark_verified(updates)
    gone = sum(1 for u in updates if u[2] == VERIFIED_GONE)
    still = len(updates) - gone
    rec.summary["verified"] = {VERIFIED_GONE: gone, STILL_PRESENT: still,
                                "pending": len(queued) - len(updates)}
    ctx.log.info("verify.done", **rec.summary["verified"])


def verified_line(verified: dict[str, Any]) -> str:
    """``run --verify``'s one line, from the summary's ``verified`` counts."""
    if "skipped" in verified:
        return (f"verified nothing: {verified['skipped']} "
                f"({verified.get('pending', 0)} deletes still to verify)")
    gone, still = verified.get(VERIFIED_GONE, 0), verified.get(STILL_PRESENT, 0)
    pending = verified.get("pending", 0)
    if not gone + still + pending:
        return "verified: no earlier deletes waiting to be verified"
    return (f"verified: {gone} gone, {still} still listed (resent by the next run), "
            f"{pending} too recent to judge")
