"""What a person reads on the console: the plan (like ``terraform plan``) and confirmations.

The plan is a summary line (to delete, skipped by reason, pending grace), then up to
``limit`` ids per reason with their key properties (from the listing), then the exact next
command. Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org).
Confirmations are asked only on a terminal; non-terminals and the daemon never ask.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import pyarrow.compute as pc

from reconciler.core.errors import EXIT_ITEMS_FAILED, EXIT_OK
from reconciler.core.plan import Plan
from reconciler.core.settings import Config, Job

PLAN_LIMIT = 10  # ids shown per reason
EXIT_CHANGES = 5  # plan --detailed-exitcode: something would be deleted


class Style:
    """ANSI colour when the stream is a terminal and NO_COLOR is unset."""

    def __init__(self, stream: TextIO) -> None:
        self.on = (_isatty(stream) and not os.environ.get("NO_COLOR")
                   and os.environ.get("TERM") != "dumb")

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.on else text

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def interactive() -> bool:
    """Both ends are a terminal: only then is a question asked."""
    return _isatty(sys.stdin) and _isatty(sys.stdout)


def summary_line(summary: Mapping[str, Any], style: Style) -> str:
    skipped = dict(summary.get("skipped", {}) or {})
    pending = skipped.pop("pending_grace", summary.get("pending_grace", 0)) or 0
    parts = [style.bold(style.red(f"{summary.get('to_delete', 0)} to delete"))]
    if skipped:
        parts.append("skipped " + ", ".join(f"{v} {k}" for k, v in sorted(skipped.items())))
    else:
        parts.append("0 skipped")
    parts.append(style.yellow(f"{pending} pending grace"))
    return "Plan: " + ", ".join(parts) + "."


def plan_lines(summary: Mapping[str, Any], plan: Plan | None,
               properties: Mapping[str, str], style: Style,
               limit: int = PLAN_LIMIT) -> list[str]:
    """The plan body: up to ``limit`` ids per reason, then the summary line."""
    lines: list[str] = []
    if plan is not None and limit > 0:
        groups: list[tuple[str, str, Sequence[str], int]] = []
        total = len(plan.to_delete)
        groups.append(("to delete", "-", plan.to_delete.slice(0, limit).to_pylist(), total))
        # Arrow-side: a first plan can skip millions of ids (pending grace), only a few shown.
        counts = plan.skipped_counts()
        for reason in sorted(counts):
            first = plan.skipped_ids.filter(pc.equal(plan.skipped_reasons, reason))
            groups.append((reason, "~", first.slice(0, limit).to_pylist(), counts[reason]))
        for title, mark, shown, count in groups:
            if not count:
                continue
            more = f"; the first {len(shown)}" if count > len(shown) else ""
            lines.append(style.bold(f"  {title} ({count}{more}):"))
            width = min(max((len(i) for i in shown), default=0), 40)
            for item_id in shown:
                paint = style.red if mark == "-" else style.yellow
                props = properties.get(item_id, "")
                lines.append(f"    {paint(mark)} {item_id:<{width}}  {style.dim(props)}".rstrip())
        if lines:
            lines.append("")
    lines.append(summary_line(summary, style))
    return lines


def command(config_path: Path | None, *args: str) -> str:
    """The exact command line to type next."""
    words = ["reconciler"]
    if config_path is not None:
        words += ["--config", str(config_path)]
    return shlex.join([*words, *args])


def print_plan(result: Any, config_path: Path | None, out: TextIO, *,
               next_args: Sequence[str] = (), limit: int = PLAN_LIMIT) -> None:
    """A dry run's plan, its report and the command that would carry it out."""
    style = Style(out)
    for line in plan_lines(result.summary, result.plan, result.properties, style, limit):
        print(line, file=out)
    html = Path(result.report_dir) / "report.html"
    print(f"Report: {html}", file=out)
    if next_args and result.summary.get("to_delete"):
        print(f"Next: {style.bold(command(config_path, *next_args))}", file=out)


def _read_line(_: str) -> str:
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def confirm(question: str, answer: str, *, ask: Callable[[str], str] = _read_line,
            out: TextIO | None = None) -> bool:
    """A typed confirmation: only ``answer``, typed exactly, says yes."""
    out = out or sys.stdout
    print(question, file=out)
    print(f"  Only '{answer}' will be accepted.", file=out)
    out.write("  Enter a value: ")
    out.flush()
    try:
        typed = ask("")
    except (EOFError, KeyboardInterrupt):
        print("", file=out)
        return False
    return typed.strip() == answer


def refusal_lines(summary: Mapping[str, Any], job: str, config_path: Path | None) -> list[str]:
    """Every failing gate with its numbers, that nothing was deleted, and the way past."""
    failed = [g for g in summary.get("gates", []) or [] if not g.get("passed")]
    lines = [f"{job}: refused by {len(failed)} gate(s); nothing was deleted."]
    for gate in failed:
        numbers = ", ".join(f"{k}={v}" for k, v in gate.items()
                            if k not in ("gate", "passed", "detail"))
        lines.append(f"  - {gate['gate']}: {gate['detail']}" + (f" ({numbers})" if numbers
                                                                 else ""))
    caps = {"max_delete_fraction", "max_deletes_per_day", "max_deletes"}
    if failed and all(g["gate"] in caps for g in failed):
        lines.append("  Way past: review the plan, then apply it past the cap: "
                     + command(config_path, "plan", job, "--out", "plan.json") + " && "
                     + command(config_path, "apply", "plan.json", "--approve", "--reason",
                               "TEXT"))
    elif failed:
        # The safety key behind each gate (a gate named after its key, or near_match's share).
        renamed = {"near_match": "max_near_match_share"}
        keys = ", ".join(renamed.get(g["gate"], g["gate"]) for g in failed
                         if g["gate"] != "leading_zeros")
        change = f" or change {keys} in [jobs.{job}.safety] if the change is expected" \
            if keys else ""
        lines.append(f"  Way past: fix the source export{change}; then run again.")
    return lines


def run_and_print(config: Config, names: Sequence[str], *, dry_run: bool,
                  report_root: Path | None, verify_only: bool = False,
                  plan_out: Path | None = None, config_path: Path | None = None,
                  ask: bool = False, log_items: bool = False, limit: int = PLAN_LIMIT,
                  detailed: bool = False) -> int:
    """Run (or plan) the jobs; a dry run prints its plan and the next command.

    ``ask``: show each job's plan and ask for a typed 'yes' before deleting (a terminal).
    ``detailed``: exit 5 instead of 0 when some job would delete something.
    """
    from reconciler.runs.jobs import run_jobs, worst_exit_code
    from reconciler.runs.runner import RunRequest, RunResult

    def ask_first(preview: RunResult) -> bool:
        print_plan(preview, config_path, sys.stdout, limit=limit)
        return confirm(
            f"{preview.job}: delete these {preview.summary['to_delete']} items from catalog "
            f"{preview.summary.get('catalog_id')}?", "yes")

    # Per-item lines flood a terminal: there they stay in outcomes.csv unless asked for.
    item_events = config.logging.item_events and (log_items or not sys.stderr.isatty())
    request = RunRequest(dry_run=dry_run, report_root=report_root,
                         item_events=item_events, verify_only=verify_only,
                         plan_out=plan_out, confirm=ask_first if ask else None)
    jobs = config.select(list(names))
    changes = False

    def show(job: Job, result: RunResult) -> None:
        nonlocal changes
        ok = result.exit_code in (EXIT_OK, EXIT_ITEMS_FAILED)
        print(f"{job.name}: {result.message}", file=sys.stdout if ok else sys.stderr)
        print(f"{job.name}: report {result.report_dir}")
        if result.summary.get("refused") and any(
                not g.get("passed") for g in result.summary.get("gates", [])):
            for line in refusal_lines(result.summary, job.name, config_path):
                print(line, file=sys.stderr)
        if dry_run and not verify_only and result.plan is not None:
            changes = changes or bool(result.summary.get("to_delete"))
            _print_plan(result, config_path, plan_out, limit)
        elif plan_out is not None and result.summary.get("saved_plan"):
            _print_saved(result, config_path, plan_out)

    codes = run_jobs(config, jobs, request, on_result=show)
    code = worst_exit_code(codes)
    if detailed and code == EXIT_OK and changes:
        return EXIT_CHANGES
    return code


def _print_plan(result: Any, config_path: Path | None, plan_out: Path | None,
                limit: int) -> None:
    next_args = ("apply", str(plan_out)) if plan_out is not None else ("run", result.job)
    print("", file=sys.stdout)
    print_plan(result, config_path, sys.stdout, next_args=next_args, limit=limit)
    if plan_out is not None and result.summary.get("saved_plan"):  # only once it is written
        _print_saved(result, config_path, plan_out)


def _print_saved(result: Any, config_path: Path | None, plan_out: Path) -> None:
    print(f"Saved plan: {plan_out} ({result.summary.get('to_delete', 0)} ids to delete); "
          f"apply it with: {command(config_path, 'apply', str(plan_out))}")
