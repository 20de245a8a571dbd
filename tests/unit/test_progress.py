from __future__ import annotations

import io
import json

from reconciler.logging import get_logger
from reconciler.runs.progress import Progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_total_and_rate():
    screen = FakeTerminal()
    progress = Progress("deleting", get_logger(), stream=screen)
    progress.update(2500, 10_000)
    progress.update(2500, 10_000)
    progress.close()
    text = screen.getvalue()
    assert "deleting" in text and "5000/10000" in text and "ids/s" in text


def test_elsewhere_progress_is_logged_as_events(log_stream):
    pipe = io.StringIO()
    progress = Progress("listing", get_logger(job="j"), stream=pipe, every_seconds=0)
    progress.update(1000, 3000)
    progress.update(1000, 3000)
    progress.close()
    assert pipe.getvalue() == ""  # no bar drawn on a pipe
    events = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    progress_events = [e for e in events if e["event"] == "progress"]
    assert [e["done"] for e in progress_events] == [1000, 2000, 2000]
    assert progress_events[-1]["total"] == 3000 and progress_events[-1]["job"] == "j"
    assert progress_events[-1]["eta_seconds"] is not None


def test_events_are_throttled(log_stream):
    progress = Progress("listing", get_logger(), stream=io.StringIO(), every_seconds=3600)
    for _ in range(50):
        progress.update(10, 500)
    progress.close()
    events = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    assert [e["done"] for e in events if e["event"] == "progress"] == [500]  # the final one


def test_log_lines_clear_the_bar_and_it_is_drawn_again():
    from reconciler.logging import configure

    screen = FakeTerminal()
    configure("info", "console", stream=screen)
    progress = Progress("deleting", get_logger(), stream=screen)
    progress.update(10, 100)
    before = len(screen.getvalue())
    get_logger(job="j").info("batch", size=10)
    progress.update(10, 100)
    progress.close()
    after = screen.getvalue()[before:]
    line_start = after.index("batch")
    assert "\r" in after[:line_start]  # the bar was wiped before the log line was written
    assert after.rindex("deleting") > line_start  # and drawn again after it
