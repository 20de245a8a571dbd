"""The grace clock: a corrected wall clock never shortens (or lengthens) grace."""

from __future__ import annotations

from reconciler.core.gracetime import BootTime, GraceMark, tick

HOST = "boot-a"


def test_the_first_reading_is_the_wall_clock():
    now = tick(None, 1000.0, BootTime(HOST, 50.0))
    assert now.mark == GraceMark(1000.0, 1000.0, HOST, 50.0)
    assert now.as_dict() == {"since_last_run_wall_seconds": None,
                             "since_last_run_counted_seconds": None, "clocks_disagree": False}


def test_on_one_boot_the_smaller_witness_counts():
    last = GraceMark(1000.0, 1000.0, HOST, 50.0)
    jumped = tick(last, 1000.0 + 3 * 3600, BootTime(HOST, 50.0 + 600))  # wall jumped ahead
    assert jumped.mark.reading == 1600.0 and jumped.disagrees
    agreed = tick(last, 1000.0 + 3600, BootTime(HOST, 50.0 + 3600.5))
    assert agreed.mark.reading == 4600.0 and not agreed.disagrees


def test_a_clock_set_back_never_moves_grace_back():
    last = GraceMark(5000.0, 9000.0, HOST, 50.0)
    back = tick(last, 8000.0, BootTime(HOST, 650.0))
    # The boot clock saw 600 s pass; the wall clock's mark moves on by that, never back.
    assert back.mark.reading == 5600.0 and back.counted == 600.0 and back.wall_elapsed == -1000.0
    assert back.mark.wall == 9600.0
    other_boot = tick(last, 8000.0, BootTime("boot-b", 10.0))
    assert other_boot.mark.reading == 5000.0 and other_boot.mark.wall == 9000.0


def test_a_replica_with_a_slow_clock_does_not_ratchet_grace_forward():
    """Found in round 4: host A (right clock) at 9000, replica B (5 h slow) a minute later,
    A again a minute after that. B set the mark's wall 5 h back, so A's second run counted
    5 h: three runs in two minutes served a 1 h grace_period."""
    a1 = tick(None, 9000.0, BootTime("boot-a", 100.0))
    b = tick(a1.mark, 9060.0 - 5 * 3600, BootTime("boot-b", 100.0))
    a2 = tick(b.mark, 9120.0, BootTime("boot-a", 220.0))
    assert a2.mark.reading - a1.mark.reading <= 120.0
    assert a2.mark.reading == 9120.0


def test_across_a_reboot_or_host_only_the_wall_clock_witnesses():
    last = GraceMark(5000.0, 9000.0, HOST, 99999.0)
    assert tick(last, 12600.0, BootTime("boot-b", 10.0)).mark.reading == 8600.0
    assert tick(last, 12600.0, BootTime("", 0.0)).mark.reading == 8600.0
    unknown = GraceMark(5000.0, 9000.0, "", 0.0)
    assert tick(unknown, 12600.0, BootTime("", 0.0)).mark.reading == 8600.0
