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
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from reconciler import __version__, preflight
from reconciler.config import Config, load_config, resolve_config_path
from reconciler.errors import (
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

CHECK_TIMEOUT_SECONDS = 5.0  # `check` makes one attempt per API, this long at most
_SEVERITY = (EXIT_UNEXPECTED, EXIT_CONFIG, EXIT_REFUSED, EXIT_ITEMS_FAILED, EXIT_OK)


def worst_exit_code(codes: Sequence[int]) -> int:
    """The most serious exit code of several jobs' (see the module docstring)."""
    return min(codes, key=_SEVERITY.index, default=EXIT_OK)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """Bad usage is exit 2 with one line, as for config errors."""
        self.exit(EXIT_CONFIG, f"reconciler: error: {message} (see 'reconciler --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reconciler", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    parser.add_argument(
        "--config", help="config file (default: $RECONCILER_CONFIG, then ./reconciler.toml)"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plan = commands.add_parser("plan", help="dry run: diff and report, delete nothing")
    plan.add_argument("jobs", nargs="*", metavar="JOB")
    plan.add_argument("--report-dir", type=Path, help="write reports to DIR/<job>/")
    plan.add_argument("--out", type=Path, metavar="PLAN.json",
                      help="save the plan for 'apply' (one job)")

    apply = commands.add_parser("apply", help="delete exactly the ids of a saved plan")
    apply.add_argument("plan_file", type=Path, metavar="PLAN.json")
    apply.add_argument("--approve", action="store_true", help="go past a delete cap")
    apply.add_argument("--reason", default="", help="why (required with --approve; logged)")
    apply.add_argument("--report-dir", type=Path, help="write the report to DIR/<job>/")

    restore = commands.add_parser("restore", help="recreate the items a run deleted")
    restore.add_argument("run_id", metavar="RUN_ID")
    restore.add_argument("--ids", type=Path, metavar="FILE", help="only these ids (CSV/Parquet)")

    purge = commands.add_parser("purge", help="delete EVERY item of a job's catalog")
    purge.add_argument("job", metavar="JOB")
    purge.add_argument("--confirm", required=True, metavar="CATALOG_ID",
                       help="the job's catalog id, typed again")

    run = commands.add_parser("run", help="reconcile once, now")
    run.add_argument("jobs", nargs="*", metavar="JOB")
    run.add_argument("--dry-run", action="store_true", help="plan and report only")
    run.add_argument("--verify", action="store_true",
                     help="only read back earlier deletes (verified_gone / still_present)")
    run.add_argument("--report-dir", type=Path, help="write reports to DIR/<job>/")

    history = commands.add_parser("history", help="list runs from the journal")
    history.add_argument("job", nargs="?", metavar="JOB")
    history.add_argument("--limit", type=int, default=20)

    outcomes = commands.add_parser("outcomes", help="export one run's per-item outcomes")
    outcomes.add_argument("run_id", metavar="RUN_ID")
    outcomes.add_argument("--outcome", help="only items in this state (e.g. failed)")
    outcomes.add_argument("--format", choices=("csv", "json"), default="csv")

    daemon = commands.add_parser("daemon", help="every job on its schedule until stopped")
    daemon.add_argument("--once", action="store_true",
                        help="run every job once now, then exit (for cron/CI)")

    check = commands.add_parser("check", help="validate config; reach each API read-only")
    check.add_argument("jobs", nargs="*", metavar="JOB")
    check.add_argument("--probe", action="store_true",
                       help="probe the API's unconfirmed assumptions read-only "
                            "(exit 1 when any is contradicted)")
    check.add_argument("--format", choices=("text", "json"), default="text",
                       help="with --probe: a table, or JSON")

    emulator = commands.add_parser("emulator", help="serve the local catalog API emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8765)
    emulator.add_argument("--items", type=Path, help="ids (.csv/.parquet) or records (.jsonl)")
    emulator.add_argument("--generate", type=int, default=0, metavar="N",
                          help="generate N items (when no --items)")
    emulator.add_argument("--rate", default="5/10", metavar="N/SECONDS",
                          help="bulk requests admitted per window (default 5/10)")
    emulator.add_argument("--no-retry-after", action="store_true",
                          help="answer 429 without a Retry-After header")
    emulator.add_argument("--query-semantics", choices=("prefix", "prefix-ci", "substring"),
                          default="prefix", help="bloomreach: what query+field=item_id "
                          "matches (default: case-sensitive prefix)")
    emulator.add_argument("--api", choices=("bloomreach", "adobe-target", "adobe-classic"),
                          default="bloomreach", help="which API to emulate")

    demo = commands.add_parser("demo", help="emulator + sample export + one real reconcile")
    demo.add_argument("--dir", type=Path, default=Path("reconciler-demo"))
    demo.add_argument("--items", type=int, default=20_000)
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
        from reconciler.demo import run_demo

        return run_demo(args.dir, args.items)
    config_path = resolve_config_path(args.config)
    # history and outcomes read only the journal: they need no API credentials.
    config = load_config(config_path, secrets=args.command not in ("history", "outcomes"))
    from reconciler.redact import config_forms

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
        from reconciler import history

        if args.command == "history":
            return history.print_history(config, args.job, args.limit, sys.stdout)
        return history.print_outcomes(config, args.run_id, args.outcome, args.format, sys.stdout)
    if args.command in ("restore", "purge", "apply"):
        return _single(config, args)
    dry_run = args.command == "plan" or bool(getattr(args, "dry_run", False))
    plan_out = getattr(args, "out", None)
    if plan_out is not None and len(config.select(args.jobs)) != 1:
        raise ConfigError("plan --out saves one job's plan: name exactly one JOB")
    return run_jobs(config, args.jobs, dry_run=dry_run, report_root=args.report_dir,
                    verify_only=bool(getattr(args, "verify", False)), plan_out=plan_out)


def _daemon(config_path: Path, once: bool) -> int:
    from reconciler.daemon import Daemon
    from reconciler.signals import graceful_stop

    daemon = Daemon(config_path)
    if not once:
        return daemon.serve()

    def report(name: str, code: int, message: str) -> None:
        print(f"{name}: {message}", file=sys.stderr if code not in (0, 4) else sys.stdout)

    with graceful_stop(daemon.stop):
        return worst_exit_code(daemon.once(report))


def _single(config: Config, args: argparse.Namespace) -> int:
    """restore, purge and apply: one job, one report."""
    from reconciler import operations, saved_plan
    from reconciler.runner import RunRequest, run_job

    if args.command == "restore":
        result = operations.restore(config, args.run_id, args.ids)
    elif args.command == "purge":
        result = operations.purge(config, args.job, args.confirm)
    else:
        if args.approve and not args.reason.strip():
            raise ConfigError("apply --approve needs --reason TEXT (it is logged)")
        saved = saved_plan.load(args.plan_file, saved_plan.signing_key(config.state_dir))
        job = config.select([saved.job])[0]
        request = RunRequest(dry_run=False, report_root=args.report_dir, apply=saved,
                             approve=args.approve, reason=args.reason,
                             item_events=config.logging.item_events)
        result = run_job(config, job, request)
    ok = result.exit_code in (EXIT_OK, EXIT_ITEMS_FAILED)
    print(f"{result.job}: {result.message}", file=sys.stdout if ok else sys.stderr)
    print(f"{result.job}: report {result.report_dir}")
    return result.exit_code


def run_jobs(config: Config, names: Sequence[str], *, dry_run: bool,
             report_root: Path | None, verify_only: bool = False,
             plan_out: Path | None = None) -> int:
    from reconciler.logging import get_logger
    from reconciler.runner import RunRequest, run_job
    from reconciler.signals import StopFlag, graceful_stop

    request = RunRequest(dry_run=dry_run, report_root=report_root,
                         item_events=config.logging.item_events, verify_only=verify_only,
                         plan_out=plan_out)
    jobs = config.select(list(names))
    codes = []
    log = get_logger()
    stop = StopFlag()
    with graceful_stop(stop, lambda name: log.warning("signal.stop_requested", signal=name)):
        for job in jobs:
            if stop():
                break
            result = run_job(config, job, request, stop=stop)
            codes.append(result.exit_code)
            ok = result.exit_code in (EXIT_OK, EXIT_ITEMS_FAILED)
            print(f"{job.name}: {result.message}", file=sys.stdout if ok else sys.stderr)
            print(f"{job.name}: report {result.report_dir}")
    if stop() and len(codes) < len(jobs):
        codes.append(EXIT_ITEMS_FAILED)  # jobs left unrun because of the stop
    return worst_exit_code(codes)


def _probe(config: Config, names: Sequence[str], fmt: str) -> int:
    from reconciler.clock import SystemClock
    from reconciler.logging import get_logger
    from reconciler.probe import probe_jobs
    from reconciler.runner import default_backend

    codes = probe_jobs(
        config, names, lambda job: default_backend(job, SystemClock(), get_logger(job=job.name)),
        fmt, sys.stdout, sys.stderr)
    return worst_exit_code(codes)


def _check(config: Config, names: Sequence[str]) -> int:
    from reconciler.clock import SystemClock
    from reconciler.fingerprint import target_fingerprint
    from reconciler.logging import get_logger
    from reconciler.runner import default_backend
    from reconciler.scope import conflict_line, ownership_conflicts

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
