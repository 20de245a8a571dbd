"""The console plan, colour rules, confirmations and refusal lines."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa

from reconciler.cli import console
from reconciler.core.plan import IdStats, Plan


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def plan(to_delete, skipped):
    stats = IdStats(rows=0, empty=0, duplicates=0)
    return Plan(to_delete=pa.array(to_delete, pa.string()),
                skipped_ids=pa.array([i for i, _ in skipped], pa.string()),
                skipped_reasons=pa.array([r for _, r in skipped], pa.string()),
                source=stats, remote=stats)


SUMMARY = {"to_delete": 12, "skipped": {"protected": 1, "pending_grace": 2}}


def test_plan_shows_up_to_n_ids_per_reason_with_properties():
    p = plan([f"SKU-{n}" for n in range(12)],
             [("SKU-P", "protected"), ("G1", "pending_grace"), ("G2", "pending_grace")])
    lines = console.plan_lines(SUMMARY, p, {"SKU-0": "title: Red shoe"},
                               console.Style(io.StringIO()), limit=3)
    text = "\n".join(lines)
    assert "  to delete (12; the first 3):" in text
    assert "    - SKU-0  title: Red shoe" in text and "SKU-3" not in text
    assert "  pending_grace (2):" in text and "    ~ SKU-P" in text
    assert lines[-1] == "Plan: 12 to delete, skipped 1 protected, 2 pending grace."


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert console.Style(Tty()).red("x") == "\033[31mx\033[0m"
    assert console.Style(io.StringIO()).red("x") == "x"
    monkeypatch.setenv("NO_COLOR", "1")
    assert console.Style(Tty()).red("x") == "x"


def test_confirmation_takes_only_the_typed_answer():
    out = io.StringIO()
    assert console.confirm("delete?", "yes", ask=lambda _: "yes\n", out=out)
    assert not console.confirm("delete?", "yes", ask=lambda _: "y", out=out)

    def eof(_: str) -> str:
        raise EOFError

    assert not console.confirm("delete?", "yes", ask=eof, out=out)
    assert "Only 'yes' will be accepted." in out.getvalue()


def test_refusal_lists_every_gate_and_the_way_past():
    summary = {"gates": [
        {"gate": "max_shrink", "passed": False, "detail": "shrank 50%", "shrink": 0.5},
        {"gate": "min_ids", "passed": True, "detail": "ok"},
        {"gate": "max_delete_fraction", "passed": False, "detail": "too many",
         "fraction": 0.4},
    ]}
    lines = console.refusal_lines(summary, "products", Path("c.toml"))
    assert lines[0] == "products: refused by 2 gate(s); nothing was deleted."
    assert lines[1] == "  - max_shrink: shrank 50% (shrink=0.5)"
    assert lines[2] == "  - max_delete_fraction: too many (fraction=0.4)"
    assert "change max_shrink, max_delete_fraction in [jobs.products.safety]" in lines[3]
    caps = {"gates": [summary["gates"][2]]}
    way = console.refusal_lines(caps, "products", Path("c.toml"))[-1]
    assert "reconciler --config c.toml plan products --out plan.json" in way
    assert "apply plan.json --approve --reason TEXT" in way
