"""Every state name in one place: ``StrEnum``s whose values are the strings that reports,
summary.json and the journal have always carried (so a member equals its old string).

* ``Outcome``: what happened to one id this run (the executor's answer).
* ``ItemState``: where an id stands in the journal (``Outcome`` values map onto it:
  ``not_sent`` is journaled as ``planned``, resendable).
* ``RunStatus``: a row of the history.
* ``SkipReason``: why an id was never sent.
* ``Action``: what a run was (``action`` in summary.json).
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    QUEUED = "queued"
    FAILED = "failed"
    UNKNOWN = "unknown"
    NOT_SENT = "not_sent"
    SKIPPED = "skipped"
    PLANNED = "planned"  # a dry run's: would be sent


class ItemState(StrEnum):
    PLANNED = "planned"
    SENT = "sent"
    QUEUED = "queued"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"
    VERIFIED_GONE = "verified_gone"
    STILL_PRESENT = "still_present"


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    REFUSED = "refused"
    FAILED = "failed"
    DRY = "dry"
    RESUMED = "resumed"  # interrupted; a later run (its resumed_from names this one) finished it
    CRASHED = "crashed"  # its process died while running (kill -9, power loss); resumable


class SkipReason(StrEnum):
    UNADDRESSABLE = "unaddressable"
    EMPTY = "empty_id"
    TOO_LONG = "too_long"
    OUT_OF_SCOPE = "out_of_scope"
    PROTECTED = "protected"
    PENDING_GRACE = "pending_grace"
    NEAR_MATCH = "near_match"
    BACK_IN_SOURCE = "back_in_source"
    NO_BACKUP = "no_backup"
    DRIFTED = "drifted"
    ALREADY_GONE = "already_gone"
    NOT_IN_BACKUP = "not_in_backup"
    IN_OTHER_COLUMN = "in_other_column"


class Action(StrEnum):
    PLAN = "plan"
    RUN = "run"
    VERIFY = "verify"
    APPLY = "apply"
    RESTORE = "restore"
    PURGE = "purge"


# The journal state an outcome is recorded as (``not_sent`` stays resendable: ``planned``).
JOURNAL_STATE: dict[str, ItemState] = {
    Outcome.QUEUED: ItemState.QUEUED, Outcome.FAILED: ItemState.FAILED,
    Outcome.UNKNOWN: ItemState.UNKNOWN, Outcome.NOT_SENT: ItemState.PLANNED,
}
