"""Pure bookkeeping of the API assumptions a backend checks on every answer.

The public documentation leaves some behaviour open (query semantics, counts, paging);
each backend keeps each assumption in one named function and records here whether the
answers it got confirmed or contradicted it. ``summary.json`` carries the verdicts
under ``assumptions`` and ``reconciler check --probe`` prints them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

CONFIRMED = "confirmed"
CONTRADICTED = "contradicted"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Assumption:
    name: str
    status: str  # confirmed | contradicted | unknown
    evidence: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "evidence": self.evidence}


@dataclass
class Evidence:
    """Per assumption: the first contradiction seen, else the latest confirmation."""

    contradicted: dict[str, str] = field(default_factory=dict)
    confirmed: dict[str, str] = field(default_factory=dict)

    def contradict(self, name: str, evidence: str) -> None:
        self.contradicted.setdefault(name, evidence)

    def confirm(self, name: str, evidence: str) -> None:
        self.confirmed[name] = evidence

    def verdict(self, name: str) -> Assumption:
        if name in self.contradicted:
            return Assumption(name, CONTRADICTED, self.contradicted[name])
        if name in self.confirmed:
            return Assumption(name, CONFIRMED, self.confirmed[name])
        return Assumption(name, UNKNOWN, "no answer tested it")

    def verdicts(self, names: Iterable[str]) -> tuple[Assumption, ...]:
        return tuple(self.verdict(n) for n in names)


def any_contradicted(assumptions: Iterable[Assumption]) -> bool:
    return any(a.status == CONTRADICTED for a in assumptions)
