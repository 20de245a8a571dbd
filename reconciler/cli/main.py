"""Command line: argument parsing, exit codes, and one-line errors (never a traceback for ours).

Exit codes (the contract): 0 ok or dry run; 1 unexpected failure; 2 bad usage, config or
credentials; 3 refused by a safety gate (nothing deleted); 4 finished with failed items.
With several jobs, the exit code is the most serious of theirs, in the order 1, 2, 3, 4.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.backends import registry
from reconciler.backends.registry import refuse_unsupported
from reconciler.cli import console
from reconciler.config import Config, load_config, resolve_config_path
from reconciler.core.errors import (
    EXIT_CONFIG,
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNEXPECTED,
    ConfigError,
    EnvironmentProblem,
    ReconcilerError,
    describe_os_error,
)
from reconciler.logging import configure
from reconciler.runs.jobs import worst_exit_code
from reconciler.store import plan_key, preflight

CHECK_TIMEOUT_SECONDS = 5.0  # `check` makes one attempt per API, this long at most
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """Bad usage is exit 2 with one line, as for config errors."""
        self.exit(EXIT_CONFIG, f"reconciler: error: {message} (see 'reconciler --help')\n")


DESCRIPTION = """\
Keep a recommendations catalog (Bloomreach Discovery, Adobe Target Recommendations) free
of items that are gone from your source of truth: read the export, list the catalog, plan
the deletes, check them against safety gates, then delete in rate-limited batches, with a
journal, backups and a report folder (summary.json, CSVs, report.md, report.html) per run.
"""

EPILOG = """\
examples:
  reconciler plan                          what would go, for every job (deletes nothing)
  reconciler plan products --out plan.json --detailed-exitcode
  reconciler run products                  plan, ask on a terminal, then delete
  reconciler apply plan.json --approve --reason "spring clean-up"
  reconciler daemon                        every job on its schedule (systemd)
  reconciler <command> --help              each command's options and examples

exit codes:
  0  ok (or a dry run)             3  refused by a safety gate, or not confirmed:
  1  unexpected failure               nothing was deleted
  2  bad usage, config or          4  finished, but some items failed
     credentials                   5  plan --detailed-exitcode: something would be deleted
  With several jobs the most serious code wins (1, 2, 3, 4).

config: --config FILE, else $RECONCILER_CONFIG, else ./reconciler.toml (before or after the
command). Docs: docs/CONTRACT.md and README.md.
"""

# (name, one-line help, description with examples) for every command.
_COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("dry run: diff, judge the safety gates and report; delete nothing",
             "Read the source export and the catalog, and show what a run would delete, by\n"
             "reason, with the ids' key properties; writes the report folder.\n\n"
             "examples:\n  reconciler plan\n  reconciler plan products --limit 25\n"
             "  reconciler plan products --out plan.json   (then: reconciler apply plan.json)\n"
             "  reconciler plan --detailed-exitcode        (exit 5 when something would go)"),
    "apply": ("delete exactly the ids of a saved plan",
              "Delete the ids a 'plan --out' saved, minus those back in the source since;\n"
              "--approve (with --reason) goes past a delete cap.\n\n"
              "examples:\n  reconciler apply plan.json\n"
              "  reconciler apply plan.json --approve --reason \"catalog migration\""),
    "restore": ("recreate the items a run deleted, from its backup",
                "examples:\n  reconciler restore 20260101T020000Z-ab12cd\n"
                "  reconciler restore 20260101T020000Z-ab12cd --ids wrongly-deleted.csv"),
    "purge": ("delete EVERY item of a job's catalog (after a full backup)",
              "The catalog id must be typed again; on a terminal you are asked once more\n"
              "unless --yes.\n\nexamples:\n  reconciler purge staging --confirm staging-catalog"),
    "run": ("reconcile once, now (on a terminal: show the plan and ask first)",
            "Plan, judge the safety gates, then delete. On a terminal the plan is shown and\n"
            "a typed 'yes' is asked unless --yes; elsewhere (cron, CI, the daemon) nothing\n"
            "is asked. Per-item lines go to outcomes.csv (and a JSON log), not to a\n"
            "terminal, unless --log-items.\n\n"
            "examples:\n  reconciler run\n  reconciler run products --yes\n"
            "  reconciler run --dry-run\n  reconciler run products --verify"),
    "history": ("list runs from the journal",
                "examples:\n  reconciler history\n  reconciler history products --limit 5"),
    "outcomes": ("export one run's per-item outcomes (CSV or JSON lines)",
                 "examples:\n  reconciler outcomes 20260101T020000Z-ab12cd --outcome failed\n"
                 "  reconciler outcomes 20260101T020000Z-ab12cd --format json"),
    "daemon": ("every job on its schedule until stopped (systemd, containers)",
               "examples:\n  reconciler daemon\n  reconciler daemon --once   (cron, CI)"),
    "check": ("validate the config; reach each API read-only",
              "examples:\n  reconciler check\n  reconciler --config prod.toml check products"),
    "emulator": ("serve the local catalog API emulator (for trying things out)",
                 "examples:\n  reconciler emulator --generate 10000\n"
                 "  reconciler emulator --api adobe-target --port 8766"),
    "demo": ("emulator + sample export + plan + two real runs, in a fresh folder",
             "Every run starts from a fresh state under --dir, so it can be repeated.\n\n"
             "examples:\n  reconciler demo\n  reconciler demo --dir /tmp/demo --items 5000"),
}

ITEM_STATES = ("planned", "sent", "queued", "failed", "unknown", "skipped", "verified_gone",
               "still_present")


Arg = tuple[tuple[str, ...], dict[str, Any]]


def _arg(*names: str, **options: Any) -> Arg:
    return names, options


_REPORT_DIR = _arg("--report-dir", type=Path, help="write reports to DIR/<job>/")
_JOBS = _arg("jobs", nargs="*", metavar="JOB")

# Each command's arguments, in the order --help shows them (its texts are in _COMMANDS).
_ARGUMENTS: dict[str, list[Arg]] = {
    "plan": [
        _JOBS, _REPORT_DIR,
        _arg("--out", type=Path, metavar="PLAN.json", help="save the plan for 'apply' (one job)"),
        _arg("--detailed-exitcode", action="store_true",
             help="exit 5 when something would be deleted, 0 when nothing"),
        _arg("--limit", type=int, default=10, metavar="N",
             help="ids shown per reason (default 10; 0 for the summary only)"),
    ],
    "apply": [
        _arg("plan_file", type=Path, metavar="PLAN.json"),
        _arg("--approve", action="store_true", help="go past a delete cap"),
        _arg("--reason", default="", help="why (required with --approve; logged)"),
        _arg("--report-dir", type=Path, help="write the report to DIR/<job>/"),
    ],
    "restore": [
        _arg("run_id", metavar="RUN_ID"),
        _arg("--ids", type=Path, metavar="FILE", help="only these ids (CSV/Parquet)"),
    ],
    "purge": [
        _arg("job", metavar="JOB"),
        _arg("--confirm", required=True, metavar="CATALOG_ID",
             help="the job's catalog id, typed again"),
        _arg("--yes", action="store_true", help="do not ask on a terminal"),
    ],
    "run": [
        _JOBS,
        _arg("--dry-run", action="store_true", help="plan and report only"),
        _arg("--verify", action="store_true",
             help="only read back earlier deletes (verified_gone / still_present)"),
        _REPORT_DIR,
        _arg("--yes", action="store_true", help="do not show the plan and ask on a terminal"),
        _arg("--log-items", action="store_true", help="log a line per item on a terminal too"),
    ],
    "history": [
        _arg("job", nargs="?", metavar="JOB"),
        _arg("--limit", type=int, default=20),
    ],
    "outcomes": [
        _arg("run_id", metavar="RUN_ID"),
        _arg("--outcome", choices=ITEM_STATES, help="only items in this state (e.g. failed)"),
        _arg("--format", choices=("csv", "json"), default="csv"),
    ],
    "daemon": [
        _arg("--once", action="store_true",
             help="run every job once now, then exit (for cron/CI)"),
    ],
    "check": [
        _JOBS,
        _arg("--probe", action="store_true",
             help="probe the API's unconfirmed assumptions read-only "
                  "(exit 1 when any is contradicted)"),
        _arg("--format", choices=("text", "json"), default="text",
             help="with --probe: a table, or JSON"),
    ],
    "emulator": [
        _arg("--host", default="127.0.0.1"),
        _arg("--port", type=int, default=8765),
        _arg("--items", type=Path, help="ids (.csv/.parquet) or records (.jsonl)"),
        _arg("--generate", type=int, default=0, metavar="N",
             help="generate N items (when no --items)"),
        _arg("--rate", default="5/10", metavar="N/SECONDS",
             help="bulk requests admitted per window (default 5/10)"),
        _arg("--no-retry-after", action="store_true",
             help="answer 429 without a Retry-After header"),
        _arg("--query-semantics", choices=("prefix", "prefix-ci", "substring"),
             default="prefix",
             help="bloomreach: what query+field=item_id matches (default: case-sensitive "
                  "prefix)"),
        _arg("--api", choices=registry.names(), default=registry.DEFAULT_BACKEND,
             help="which API to emulate"),
    ],
    "demo": [
        _arg("--dir", type=Path, default=Path("reconciler-demo")),
        _arg("--items", type=int, default=20_000),
    ],
}


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="reconciler", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    config_help = "config file (default: $RECONCILER_CONFIG, then ./reconciler.toml)"
    parser.add_argument("--config", help=config_help)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                     title="commands")
    for name, arguments in _ARGUMENTS.items():
        short, long = _COMMANDS[name]
        sub = commands.add_parser(name, help=short, description=f"{short}.\n\n{long}",
                                  formatter_class=raw)
        # Accepted after the command too; SUPPRESS keeps a value given before it.
        sub.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
        for names, options in arguments:
            sub.add_argument(*names, **options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Journal, backups (full item records) and reports are for this user only.
    os.umask(0o077)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except ReconcilerError as exc:
        print(f"reconciler: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # `reconciler outcomes RUN | head -1`: the reader left; that is not an error.
        _silence_stdout()
        return EXIT_OK
    except (OSError, sqlite3.Error) as exc:
        print(f"reconciler: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_UNEXPECTED
    except KeyboardInterrupt:
        print("reconciler: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one place an unexpected error is caught
        print(f"reconciler: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return EXIT_UNEXPECTED


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "emulator":
        from reconciler.emulator.serve import serve_from_args

        return serve_from_args(args)
    if args.command == "demo":
        from reconciler.cli.demo import run_demo

        return run_demo(args.dir, args.items)
    config_path = resolve_config_path(args.config)
    # history and outcomes read only the journal: they need no API credentials.
    config = load_config(config_path, secrets=args.command not in ("history", "outcomes"))
    from reconciler.core.redact import config_forms

    secrets = config_forms(job.target for job in config.jobs.values())
    if args.command == "daemon":
        # journald keeps the daemon's stdout; --once (cron) keeps stdout for results, as run.
        configure(config.logging.level, config.logging.format, secrets,
                  stream=sys.stderr if args.once else sys.stdout)
        return _daemon(config_path, args.once)
    configure(config.logging.level, config.logging.format, secrets)
    if args.command == "check" and args.probe:
        return _probe(config, args.jobs, args.format)
    if args.command == "check":
        return _check(config, args.jobs)
    if args.command in ("history", "outcomes"):
        from reconciler.cli import history

        if args.command == "history":
            return history.print_history(config, args.job, args.limit, sys.stdout)
        return history.print_outcomes(config, args.run_id, args.outcome, args.format, sys.stdout)
    if args.command in ("restore", "purge", "apply"):
        return _single(config, args)
    dry_run = args.command == "plan" or bool(getattr(args, "dry_run", False))
    plan_out = getattr(args, "out", None)
    if plan_out is not None and len(config.select(args.jobs)) != 1:
        raise ConfigError("plan --out saves one job's plan: name exactly one JOB")
    verify = bool(getattr(args, "verify", False))
    action = "verify" if verify else "plan" if dry_run else "run"
    for job in config.select(args.jobs):  # what a backend cannot do, before any run starts
        refuse_unsupported(job, action)
    code = console.run_and_print(config, args.jobs, dry_run=dry_run, report_root=args.report_dir,
                    verify_only=verify, plan_out=plan_out, config_path=config_path,
                    ask=(args.command == "run" and not args.yes and not dry_run
                         and not verify and console.interactive()),
                    log_items=bool(getattr(args, "log_items", False)),
                    limit=getattr(args, "limit", console.PLAN_LIMIT),
                    detailed=bool(getattr(args, "detailed_exitcode", False)))
    return code


def _daemon(config_path: Path, once: bool) -> int:
    from reconciler.runs.signals import graceful_stop
    from reconciler.service.daemon import Daemon

    daemon = Daemon(config_path)
    if not once:
        return daemon.serve()

    def report(name: str, code: int, message: str) -> None:
        print(f"{name}: {message}", file=sys.stderr if code not in (0, 4) else sys.stdout)

    with graceful_stop(daemon.stop):
        return worst_exit_code(daemon.once(report))


def _single(config: Config, args: argparse.Namespace) -> int:
    """restore, purge and apply: one job, one report."""
    from reconciler.runs import operations
    from reconciler.runs.runner import RunRequest, run_job
    from reconciler.store import saved_plan

    if args.command == "restore":  # refused in operations.restore: the run names the job
        result = operations.restore(config, args.run_id, args.ids)
    elif args.command == "purge":
        refuse_unsupported(config.select([args.job])[0], "purge")
        def ask(count: int) -> bool:
            return console.confirm(
                f"purge: delete ALL {count} items of catalog {args.confirm!r} "
                f"(job {args.job})? A backup is written first.", "yes")

        interactive = not args.yes and console.interactive()
        result = operations.purge(config, args.job, args.confirm,
                                  ask=ask if interactive else None)
    else:
        if args.approve and not args.reason.strip():
            raise ConfigError("apply --approve needs --reason TEXT (it is logged)")
        saved = saved_plan.load(args.plan_file, plan_key(config))
        job = config.select([saved.job])[0]
        refuse_unsupported(job, "apply")
        request = RunRequest(dry_run=False, report_root=args.report_dir, apply=saved,
                             approve=args.approve, reason=args.reason,
                             item_events=config.logging.item_events)
        result = run_job(config, job, request)
    ok = result.exit_code in (EXIT_OK, EXIT_ITEMS_FAILED)
    print(f"{result.job}: {result.message}", file=sys.stdout if ok else sys.stderr)
    print(f"{result.job}: report {result.report_dir}")
    return result.exit_code


def _probe(config: Config, names: Sequence[str], fmt: str) -> int:
    from reconciler.core.clock import SystemClock
    from reconciler.logging import get_logger
    from reconciler.runs.probe import probe_jobs
    from reconciler.runs.runner import default_backend

    codes = probe_jobs(
        config, names, lambda job: default_backend(job, SystemClock(), get_logger(job=job.name)),
        fmt, sys.stdout, sys.stderr)
    return worst_exit_code(codes)


def _check(config: Config, names: Sequence[str]) -> int:
    from reconciler.core.clock import SystemClock
    from reconciler.core.fingerprint import target_fingerprint
    from reconciler.core.scope import conflict_line, ownership_conflicts
    from reconciler.logging import get_logger
    from reconciler.runs.claims import claim_problems
    from reconciler.runs.runner import default_backend

    selected = config.select(list(names))
    owners = {j.name: (target_fingerprint(j.target), j.scope) for j in config.jobs.values()}
    conflicts = ownership_conflicts(owners)
    codes = []
    environment = []
    try:
        preflight.writable_dir(config.state_dir, "state_dir")
    except EnvironmentProblem as exc:
        environment.append(str(exc))
    for job in selected:
        problems = [conflict_line(a, b, why) for a, b, why in conflicts if job.name in (a, b)]
        if not environment:
            problems += claim_problems(config, job, time.time())
        if problems:
            codes.append(EXIT_CONFIG)
        problems += environment
        if not job.source.path.is_file():
            problems.append(f"source {job.source.path} not found")
        else:
            try:
                preflight.readable_file(job.source.path, "source")
            except EnvironmentProblem as exc:
                problems.append(str(exc))
        inventory = job.target.inventory
        if inventory is not None and not inventory.path.is_file():
            problems.append(f"inventory export {inventory.path} not found")
        # One quick attempt, no retries: an operator waits for this answer.
        quick = replace(job, limits=replace(
            job.limits, max_attempts=1, retry_deadline_seconds=CHECK_TIMEOUT_SECONDS,
            timeout_seconds=min(job.limits.timeout_seconds, CHECK_TIMEOUT_SECONDS)))
        backend = default_backend(quick, SystemClock(), get_logger(job=job.name))
        try:
            reach = backend.check()
        except ReconcilerError as exc:
            problems.append(f"{job.target.base_url}: {exc}")
            codes.append(exc.exit_code)
            reach = ""
        finally:
            backend.close()
        if problems:
            codes.append(EXIT_REFUSED)
            print(f"{job.name}: FAILED: {'; '.join(problems)}", file=sys.stderr)
        else:
            codes.append(EXIT_OK)
            print(f"{job.name}: ok: {reach}")
    return worst_exit_code(codes)
