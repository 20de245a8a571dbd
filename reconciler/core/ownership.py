"""Who may delete from a catalog, across every config that shares one state.

Within one config, ``scope.ownership_conflicts`` refuses two jobs on one catalog unless
their scopes are disjoint. A second config sharing the ``state_dir`` (or the PostgreSQL
state) cannot see the first one's jobs, so each run that may delete leaves a ``Claim`` in
the state: the job, its export, its config and its scope. A run then refuses while another
job's claim on the same catalog stands and the two scopes are not provably disjoint, and
the claim it leaves makes the other job refuse too: both stop until they declare scopes.

A claim stops counting when:
- it comes from this very config and its job is no longer in it (renamed or removed: the
  config in hand is the truth about its own jobs, and ``ownership_conflicts`` judges those
  with their current scopes);
- its job has not tried to run for ``CLAIM_LAPSE_SECONDS`` (a config that was retired).

Owners are told apart by job name and export path, so replicas of one config and a config
moved to another path stay one owner. Pure: plain values in and out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.core.scope import scopes_disjoint

CLAIM_LAPSE_SECONDS = 7 * 86400.0


@dataclass(frozen=True)
class Claim:
    """A job that deletes from a catalog, as the state last saw it try to run."""

    job: str
    source: str  # the export's path: with the job's name, who the owner is
    config: str  # the config file it last ran from
    scope: tuple[str, ...]
    last_run: float  # epoch seconds

    @property
    def owner(self) -> tuple[str, str]:
        return self.job, self.source


@dataclass(frozen=True)
class ConfigView:
    """The config a run was given, as the claims are judged against it."""

    path: str  # its real path
    jobs: frozenset[str]
    edited_at: float  # the file's mtime


def foreign_conflicts(mine: Claim, claims: Sequence[Claim], now: float,
                      config: ConfigView) -> list[Claim]:
    """The claims of other owners on this catalog that may share ids with ``mine``."""
    return [claim for claim in claims
            if claim.owner != mine.owner and _counts(claim, config, now)
            and not scopes_disjoint(mine.scope, claim.scope)]


def _counts(claim: Claim, config: ConfigView, now: float) -> bool:
    """Whether a claim stands against this config.

    A claim of a job in this config is judged by ``ownership_conflicts`` with the scopes
    the config has now. A claim made from this path by a job the config no longer has is
    the job's old name only if it last ran before the file was last edited (the edit that
    renamed or removed it); one that ran since is another config at the same path, say
    each team's container with its own ``/app/reconciler.toml`` on one shared state.
    """
    if now - claim.last_run > CLAIM_LAPSE_SECONDS:
        return False
    if claim.config != config.path:
        return True
    if claim.job in config.jobs:
        return False
    return claim.last_run >= config.edited_at


def foreign_conflict_line(mine: Claim, other: Claim) -> str:
    why = ("declare a disjoint 'scope' in each" if not mine.scope or not other.scope
           else "their scopes are not provably disjoint")
    last = datetime.fromtimestamp(other.last_run, UTC).strftime("%Y-%m-%d %H:%M UTC")
    lapse = datetime.fromtimestamp(other.last_run + CLAIM_LAPSE_SECONDS, UTC).strftime(
        "%Y-%m-%d %H:%M UTC")
    return (f"job {mine.job!r} and job {other.job!r} of {other.config} (export "
            f"{other.source}, last run {last}) delete from the same catalog and share this "
            f"state: {why} (an id may belong to one job only); nothing was deleted. A job "
            f"that no longer runs stops counting 7 days after its last run ({lapse})")
