"""The clock grace is measured on: time that a corrected wall clock cannot shorten.

``grace_period`` asks how long an id has been missing. Measured on the wall clock alone, a
host whose clock ran hours slow and was then corrected (NTP, a VM resumed) sees hours pass
between two runs minutes apart, and deletes on a bad export that was never given its grace.

So grace runs on its own clock, kept per job and target in the state: each real run moves
it forward by the *smallest* honest witness of the time since the last run:

- the wall clock's difference from the latest wall reading any run has seen, never below
  zero (a clock set back never moves grace back, and never forward either; and since that
  reading never goes back, a replica or a boot whose clock runs behind cannot make the
  next run on a right clock count the gap between the two clocks);
- when both runs were on the same boot of the same host, the boot clock's difference
  (``CLOCK_BOOTTIME``: seconds since boot, suspend included, never stepped by NTP or by
  hand). A wall clock that jumped ahead between the runs is caught by it; one set back
  counts what the boot clock saw.

Different hosts or a reboot between the runs leave the wall clock as the only witness. The
first reading is the wall clock itself, so absences recorded on the wall clock before this
existed keep their meaning. Pure: plain values in and out.
"""

from __future__ import annotations

from dataclasses import dataclass

# Beyond this, the wall clock and the boot clock disagree enough to say so in the report.
DISAGREEMENT_SECONDS = 60.0


@dataclass(frozen=True)
class BootTime:
    """Where the host's boot clock stands: the boot's id and seconds since it began ("" for
    a host that cannot say; such readings never witness anything)."""

    boot_id: str
    uptime: float


@dataclass(frozen=True)
class GraceMark:
    """The grace clock at one real run: its own reading and the witnesses it was read
    against."""

    reading: float  # seconds; the grace clock itself (absences' first_missing is on it)
    wall: float  # the wall clock then (epoch seconds)
    boot_id: str
    uptime: float


@dataclass(frozen=True)
class GraceTick:
    """The grace clock now, and how it was judged (for the report)."""

    mark: GraceMark
    wall_elapsed: float | None  # since the last real run, on the wall clock
    counted: float | None  # what grace counted of it

    @property
    def disagrees(self) -> bool:
        return (self.wall_elapsed is not None and self.counted is not None
                and abs(self.wall_elapsed - self.counted) > DISAGREEMENT_SECONDS)

    def as_dict(self) -> dict[str, float | bool | None]:
        return {"since_last_run_wall_seconds": _round(self.wall_elapsed),
                "since_last_run_counted_seconds": _round(self.counted),
                "clocks_disagree": self.disagrees}


def tick(last: GraceMark | None, wall: float, boot: BootTime) -> GraceTick:
    """The grace clock now, moved on from ``last`` by the smallest witness of the time
    since (see the module docstring)."""
    if last is None:
        return GraceTick(GraceMark(wall, wall, boot.boot_id, boot.uptime), None, None)
    wall_elapsed = wall - last.wall
    counted = wall_elapsed
    if boot.boot_id and boot.boot_id == last.boot_id:
        boot_elapsed = boot.uptime - last.uptime
        # A wall clock behind the mark was set back (or the last run's was ahead): on one
        # boot the boot clock alone still witnesses the time that passed.
        counted = boot_elapsed if wall_elapsed < 0 else min(counted, boot_elapsed)
    counted = max(0.0, counted)
    # The mark's wall never goes back (it moves on by what was counted, at least): a replica
    # or a boot whose clock is behind must not lower it, or the next run on a right clock
    # would count the gap between the two clocks as time the ids were missing.
    return GraceTick(GraceMark(last.reading + counted, max(wall, last.wall + counted),
                               boot.boot_id, boot.uptime), wall_elapsed, counted)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
