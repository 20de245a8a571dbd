"""Wire one run of one job: lock, journal, source, inventory, read-back, plan, deletes, report.

``plan``, ``run`` and (later) the daemon all call ``run_job``. Whatever happens, the run
ends with a report folder, a journal row and one exit code from the contract; errors of
the user's (config, source, credentials) become one line, not a traceback.

A real run first looks in the journal for an interrupted run of the same job. If there is
one, this run finishes that stored plan instead of making a new one: ids already queued
are not sent again, ids left ``sent``/``unknown``/``planned`` are (re)sent, and ids that
are back in the current source are skipped. The next run makes a fresh plan.

All of that state is bound to the target's fingerprint (fingerprint.py): a job pointed at
another catalog resumes nothing, starts grace from zero and has no shrink baseline, and
its summary says ``target_changed``. Jobs that share a catalog must own disjoint scopes
(scope.py); an id outside the job's scope is never its to delete.
"""

from __future__ import annotations

import getpass
import secrets as token_source
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.backends.base import Backend, ReadBudgeted
from reconciler.backends.registry import spec_for
from reconciler.core.clock import Clock, SystemClock
from reconciler.core.errors import (
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    ApiError,
    ConfigError,
    EnvironmentProblem,
    ReconcilerError,
    SafetyRefusal,
    SourceError,
    describe_os_error,
)
from reconciler.core.fingerprint import short, target_fingerprint
from reconciler.core.plan import IdStats, Plan, defer, make_plan
from reconciler.core.redact import RedactingBackend, target_forms
from reconciler.core.safety import (
    SKIP_NEAR_MATCH,
    SKIP_PENDING_GRACE,
    SKIP_PROTECTED,
    Gate,
    SourceFacts,
    grace_split,
    judge_caps,
    judge_source,
    missing_from,
    near_matches,
    protected_mask,
    refusal,
)
from reconciler.core.scope import (
    SKIP_OUT_OF_SCOPE,
    conflict_line,
    in_scope_mask,
    ownership_conflicts,
)
from reconciler.core.settings import Config, IdFile, Job
from reconciler.core.states import JOURNAL_STATE, Action, SkipReason
from reconciler.logging import get_logger
from reconciler.report.files import prune_reports, write_report
from reconciler.report.html import MAX_HISTORY, HtmlExtras, key_properties
from reconciler.runs.executor import FAILED, NOT_SENT, QUEUED, SKIPPED, UNKNOWN, Executor, Outcome
from reconciler.runs.progress import Progress
from reconciler.runs.signals import StopFlag
from reconciler.sources.reader import SourceRead, read_ids, read_source
from reconciler.store import (
    RunRow,
    Store,
    backup_store,
    backups,
    catalog_budget,
    environment_errors,
    job_lease,
    open_store,
    plan_key,
    preflight,
    saved_plan,
)
from reconciler.store.journal import (
    DRY,
    FAILED_RUN,
    FINISHED,
    REFUSED,
    RESUMED,
    STILL_PRESENT,
    STOPPED,
    VERIFIED_GONE,
)
from reconciler.store.saved_plan import SavedPlan

BackendFactory = Callable[[Job, Clock, Any], Backend]
SKIP_BACK_IN_SOURCE = SkipReason.BACK_IN_SOURCE
SKIP_NO_BACKUP = SkipReason.NO_BACKUP
SKIP_DRIFTED = SkipReason.DRIFTED
SKIP_ALREADY_GONE = SkipReason.ALREADY_GONE
FUTURE_PLAN_SKEW = 300.0  # seconds a saved plan may seem to come from the future (skew)
_MAX_PROPERTIES = 1_000_000  # listed items whose key properties are kept for the report


def default_backend(job: Job, clock: Clock, log: Any) -> Backend:
    def on_retry(error: ApiError, attempt: int, delay: float) -> None:
        log.warning("api.retry", error=str(error), attempt=attempt, wait_seconds=round(delay, 3))

    backend = spec_for(job.target.backend).factory(job.target, job.limits, clock,
                                                    on_retry=on_retry)
    # Servers may echo credentials in errors: none may reach a log, the journal or a report.
    return cast(Backend, RedactingBackend(backend, target_forms(job.target)))


@dataclass(frozen=True)
class RunRequest:
    dry_run: bool
    report_root: Path | None = None  # --report-dir: reports go to DIR/<job>/
    item_events: bool = True
    verify_only: bool = False  # run --verify: read back earlier deletes, delete nothing
    plan_out: Path | None = None  # plan --out: save the plan (even past a cap) for apply
    apply: SavedPlan | None = None  # apply: delete exactly this saved plan's ids
    approve: bool = False
    reason: str = ""
    # Asked with the plan before anything is deleted (run on a terminal); False cancels.
    confirm: Callable[[RunResult], bool] | None = None


@dataclass
class RunResult:
    job: str
    run_id: str
    exit_code: int
    report_dir: Path
    summary: dict[str, Any]
    message: str
    outcomes: list[Outcome] = field(default_factory=list)
    traceback: str = ""  # rendered, when the run ended in an unexpected error (a bug)
    plan: Plan | None = None
    properties: dict[str, str] = field(default_factory=dict)  # key properties, by id


def new_run_id(clock: Clock) -> str:
    return f"{clock.utcnow():%Y%m%dT%H%M%SZ}-{token_source.token_hex(3)}"


def report_dir_for(config: Config, job: Job, run_id: str, report_root: Path | None) -> Path:
    if report_root is not None:
        return report_root / job.name
    return config.state_dir / "reports" / job.name / run_id


class JournalLedger:
    """The executor's ledger, written to the journal; times itself for the summary."""

    def __init__(self, journal: Store, run_id: str, plan_run: str, clock: Clock) -> None:
        self.journal, self.run_id, self.plan_run, self.clock = journal, run_id, plan_run, clock
        self.seconds = 0.0

    def sending(self, seq: int, ids: Sequence[str]) -> None:
        started = time.perf_counter()
        now = self.clock.utcnow().timestamp()
        self.journal.mark_sent(self.run_id, self.plan_run, seq, ids, now)
        self.seconds += time.perf_counter() - started

    def answered(self, seq: int | None, outcomes: Sequence[Outcome]) -> None:
        started = time.perf_counter()
        self.journal.record_outcomes(
            self.run_id, self.plan_run, seq,
            [(o.item_id, JOURNAL_STATE[o.outcome], o.detail) for o in outcomes],
            self.clock.utcnow().timestamp(),
        )
        self.seconds += time.perf_counter() - started


class _Run:
    """The state of one run while it is wired together; ``execute`` returns its result."""

    def __init__(
        self, config: Config, job: Job, request: RunRequest, clock: Clock,
        factory: BackendFactory, stop: StopFlag,
    ) -> None:
        self.config, self.job, self.request = config, job, request
        self.clock, self.factory, self.stop = clock, factory, stop
        self.run_id = new_run_id(clock)
        self.dry_run = request.dry_run or job.dry_run or request.verify_only
        self.folder = report_dir_for(config, job, self.run_id, request.report_root)
        self.log = get_logger(job=job.name, run_id=self.run_id)
        self.plan: Plan | None = None
        self.source_read: SourceRead | None = None
        self.caps_refusal: str | None = None
        self.outcomes: list[Outcome] | None = None
        self.status = FINISHED
        self.target = target_fingerprint(job.target)
        self.traceback = ""
        self.html = HtmlExtras()  # what report.html needs beyond the summary
        self.summary = base_summary(job, self.run_id, clock, dry_run=self.dry_run,
                                    action=str(_action(request, self.dry_run)))

    def execute(self) -> RunResult:
        self.log.info("run.started", dry_run=self.dry_run, report_dir=str(self.folder))
        started = self.clock.monotonic()
        journal: Store | None = None
        try:
            check_ownership(self.config, self.job)
            # Before anything is deleted: the state and the report folder must take writes.
            preflight.writable_dir(self.config.state_dir, "state_dir")
            with job_lease(self.config, self.job.name) as lease:
                journal = open_store(self.config, lease)
                journal.mark_crashed(self.job.name, holding_lock=True)
                self._note_target_change(journal)
                exit_code, message = self._journaled(journal)
        except (SourceError, SafetyRefusal, EnvironmentProblem) as exc:
            exit_code, message = exc.exit_code, str(exc)
            self.status = REFUSED
            self.summary["refused"] = message
            self.log.error("run.refused", reason=message)
        except ReconcilerError as exc:
            exit_code, message = exc.exit_code, str(exc)
            self.status = FAILED_RUN
            self.summary["error"] = message
            self.log.error("run.failed", error=message, exit_code=exit_code)
        except environment_errors() as exc:
            # The environment failed under a run (disk full, state_dir removed): one line,
            # exit 1; what was journaled stays resumable.
            exit_code, message = EXIT_UNEXPECTED, f"stopped: {describe_os_error(exc)}"
            self.status = FAILED_RUN
            self.summary["error"] = message
            self.log.error("run.failed", error=message, exit_code=exit_code)
        except Exception as exc:  # a bug: one line, the run closed, the traceback in the log
            exit_code = EXIT_UNEXPECTED
            message = f"unexpected error: {type(exc).__name__}: {exc}"
            self.status = FAILED_RUN
            self.summary["error"] = message
            self.traceback = traceback.format_exc()
            self.log.error("run.crashed", error=message, exit_code=exit_code,
                           traceback=self.traceback)
        self.summary["finished_at"] = iso_now(self.clock)
        self.summary["run_seconds"] = round(self.clock.monotonic() - started, 3)
        self.summary["exit_code"] = exit_code
        if journal is not None:
            try:
                journal.finish_run(self.run_id, DRY if self.dry_run and self.status == FINISHED
                                   else self.status, exit_code, self.summary["finished_at"],
                                   self.summary)
                self.html.history = [r.summary for r in
                                     reversed(journal.runs(self.job.name, MAX_HISTORY))
                                     if r.summary]
            except environment_errors() as exc:  # the next start marks the row crashed
                problem = describe_os_error(exc)
                self.log.error("journal.finish_failed", error=problem)
                if exit_code in (EXIT_OK, EXIT_ITEMS_FAILED):
                    # What was sent is journaled item by item, but the run's own record is
                    # not: that is not a clean finish, whatever the items did.
                    exit_code = self.summary["exit_code"] = EXIT_UNEXPECTED
                    message = f"stopped: the journal could not record the run's end: {problem}"
                    self.summary["error"] = message
            finally:
                journal.close()
        message += self._write_report()
        self.log.info("run.finished", **_loggable(self.summary))
        return RunResult(
            self.job.name, self.run_id, exit_code, self.folder, self.summary, message,
            self.outcomes or [], traceback=self.traceback, plan=self.plan,
            properties=self.html.properties,
        )

    def _note_target_change(self, journal: Store) -> None:
        """Say so when this job's last run was against another catalog; its state (an
        interrupted plan included) stays with that catalog and is not used here."""
        ran, last = journal.last_target(self.job.name, self.run_id)
        if not ran or last == self.target:
            return
        change = {"from": short(last), "to": short(self.target)}
        self.summary["target_changed"] = change
        left = journal.interrupted_run(self.job.name, last) if last else None
        self.log.warning("run.target_changed", **change,
                         detail="the job points at another catalog than its last run: "
                                "no plan, grace, baseline or daily total carries over",
                         left_alone=left.run_id if left else None)

    def _write_report(self) -> str:
        """Write the report; when its folder fails, into state_dir instead; else say so."""
        folders = [self.folder]
        fallback = self.config.state_dir / "reports" / self.job.name / self.run_id
        if fallback != self.folder:
            folders.append(fallback)
        problems = []
        for folder in folders:
            try:
                write_report(folder, self.summary, self.plan, self.outcomes, extras=self.html)
            except OSError as exc:
                problems.append(f"{folder}: {describe_os_error(exc)}")
                self.log.error("report.failed", folder=str(folder), error=problems[-1])
                continue
            self.folder = folder
            return f" (report folder unusable, written to {folder})" if problems else ""
        return f"; no report written: {'; '.join(problems)}"

    def _journaled(self, journal: Store) -> tuple[int, str]:
        if self.request.apply is not None:
            return self._apply(journal, self.request.apply)
        interrupted = None if self.dry_run else journal.interrupted_run(self.job.name,
                                                                        self.target)
        journal.start_run(self.run_id, self.job.name, self.dry_run, self.summary["started_at"],
                          resumed_from=interrupted.run_id if interrupted else None,
                          target=self.target)
        preflight.writable_dir(self.folder, "report folder")  # before anything is deleted
        backend = self.factory(self.job, self.clock, self.log)
        try:
            if interrupted is not None:
                return self._resume(journal, backend, interrupted)
            return self._reconcile(journal, backend)
        finally:
            backend.close()

    # -- a fresh plan --------------------------------------------------------------------

    def _reconcile(self, journal: Store, backend: Backend) -> tuple[int, str]:
        now = self.clock.utcnow().timestamp()
        backup_store(self.config).prune(self.job.name, self.job.safety.backup_retention, now)
        if self.request.report_root is None:
            pruned = prune_reports(self.folder.parent, self.job.safety.report_retention, now,
                                   keep=self.folder)
            if pruned:
                self.log.info("reports.pruned", folders=len(pruned))
        self.source_read = read_source(self.job.source)
        source = self.source_read.ids
        self.log.info("source.read", path=str(self.job.source.path), rows=len(source))
        snapshot = self._snapshot_writer()
        try:
            remote = self._ledger(journal) if self.job.target.ledger else \
                self._inventory(backend, snapshot)
        finally:
            if snapshot is not None:
                snapshot.close()
        if self.request.verify_only or not self.dry_run:
            self._verify(journal, remote)
        plan = make_plan(source, remote, backend.address_rules)
        self._summarize_plan(plan)
        if self.request.verify_only:
            return EXIT_OK, verified_line(self.summary.get("verified", {}))
        plan = self._judge(journal, plan, source, remote, now)
        self.plan = plan
        self.log.info(
            "plan.made", to_delete=len(plan.to_delete), skipped=plan.skipped_counts(),
            source_ids=plan.source.unique, remote_ids=plan.remote.unique,
        )
        if self.request.plan_out is not None:
            self._save_plan(plan, source, remote, now)
        if self.dry_run:
            return EXIT_OK, (f"dry run: {len(plan.to_delete)} ids would be deleted"
                             + self._pending_note())
        self._confirm(plan, snapshot)
        self.plan = plan = self._backup(backend, plan, snapshot)
        self.summary.update(to_delete=len(plan.to_delete), skipped=plan.skipped_counts())
        journal.store_plan(
            self.run_id, plan.to_delete.to_pylist(),
            zip(plan.skipped_ids.to_pylist(), plan.skipped_reasons.to_pylist(), strict=True),
        )
        self._log_skipped(plan.skipped_ids.to_pylist(), plan.skipped_reasons.to_pylist())
        code, message = self._execute(journal, backend, self.run_id, plan.to_delete.to_pylist())
        if self.job.target.ledger:
            queued = [o.item_id for o in self.outcomes or [] if o.outcome == QUEUED]
            journal.update_ledger(self.job.name, self.target, source.to_pylist(), queued)
        return code, message + self._pending_note()

    def _ledger(self, journal: Store) -> pa.Array:
        """Ids seen in earlier source exports and not deleted since: the remote catalog as
        far as this tool knows it. It proves nothing, so it is never called complete."""
        ids = journal.ledger(self.job.name, self.target)
        self.summary["inventory"] = {"source": "ledger", "found": len(ids),
                                     "detail": "ids seen in earlier source exports"}
        self.summary["inventory_complete"] = False
        return pa.array(ids, pa.string())

    def _save_plan(self, plan: Plan, source: pa.Array, remote: pa.Array, now: float) -> None:
        path = self.request.plan_out
        assert path is not None
        key = plan_key(self.config)
        try:
            self._write_saved_plan(path, plan, remote, now, key)
        except OSError as exc:
            raise ConfigError(f"plan --out {path}: cannot write the plan "
                              f"({exc.strerror or type(exc).__name__}); nothing was saved"
                              ) from None
        self.summary["saved_plan"] = str(path)
        self.log.info("plan.saved", path=str(path), to_delete=len(plan.to_delete))
        if self.caps_refusal is not None:
            raise SafetyRefusal(f"{self.caps_refusal}; the plan is saved in {path}: "
                                "'reconciler apply PLAN --approve --reason TEXT' goes past the cap")

    def _write_saved_plan(self, path: Path, plan: Plan, remote: pa.Array, now: float,
                          key: bytes) -> None:
        saved_plan.write(path, SavedPlan(
            job=self.job.name, run_id=self.run_id, created_at=now,
            source_path=str(self.job.source.path),
            source_sha256=saved_plan.file_sha256(self.job.source.path),
            inventory_sha256=saved_plan.ids_sha256(remote), remote_ids=plan.remote.unique,
            to_delete=tuple(plan.to_delete.to_pylist()), skipped=plan.skipped_counts(),
            caps_refusal=self.caps_refusal, target=self.target,
        ), key)

    def _confirm(self, plan: Plan, snapshot: backups.RecordWriter | None) -> None:
        ask = self.request.confirm
        if ask is None or not len(plan.to_delete):
            return
        preview = RunResult(self.job.name, self.run_id, EXIT_OK, self.folder, self.summary,
                            "", [], plan=plan, properties=self.html.properties)
        if not ask(preview):
            if snapshot is not None:
                snapshot.path.unlink(missing_ok=True)
            self.summary["cancelled"] = True
            raise SafetyRefusal("not confirmed at the prompt; nothing was deleted")

    def _pending_note(self) -> str:
        pending = self.summary.get("pending_grace", 0)
        return f" ({pending} more pending grace)" if pending else ""

    # -- safety ---------------------------------------------------------------------------

    def _judge(self, journal: Store, plan: Plan, source: pa.Array, remote: pa.Array,
               now: float) -> Plan:
        """Skip what is not ours to delete, gate the source, defer what is within grace,
        then cap what is due now (the order is explained in safety.py)."""
        rules = self.job.safety
        plan = defer(plan, pc.invert(in_scope_mask(plan.to_delete, self.job.scope)),
                     SKIP_OUT_OF_SCOPE)
        plan = defer(plan, self._protected(plan.to_delete), SKIP_PROTECTED)
        near = near_matches(plan.to_delete, source)
        plan = defer(plan, pc.is_in(plan.to_delete, value_set=near.ids), SKIP_NEAR_MATCH)
        read = self.source_read
        facts = SourceFacts(
            path=str(self.job.source.path),
            age_seconds=now - (read.identity.mtime if read else
                               self.job.source.path.stat().st_mtime),
            rows=plan.source.rows, unique=plan.source.unique, empty=plan.source.empty,
            last_unique=journal.last_source_ids(self.job.name, self.target),
            missing_canaries=missing_from(source, rules.canary_ids),
            near_matches=len(near.ids), near_match_kinds=near.kinds,
            final_newline=read.final_newline if read else None,
        )
        source_gates = judge_source(rules, facts)
        self._record_gates(source_gates)
        source_reason = refusal(source_gates)
        if source_reason is not None:
            raise SafetyRefusal(source_reason)  # a refused source records no absence
        grace = grace_split(plan.to_delete, journal.absences(self.job.name, self.target), rules,
                            now)
        due, pending = int(grace.due.sum()), int((~grace.due).sum())
        plan = defer(plan, pa.array(~grace.due), SKIP_PENDING_GRACE)
        self.summary["pending_grace"] = pending
        self.summary["grace"] = {"runs": rules.grace_runs, "period_seconds": rules.grace_period,
                                 "due": due, "pending": pending}
        period = "off" if rules.grace_period is None else _hours(rules.grace_period)
        self._record_gates([Gate(
            "grace", True, f"{due} ids due, {pending} pending grace "
            f"(grace_runs {rules.grace_runs} and grace_period {period})",
            {"due": due, "pending": pending, "grace_runs": rules.grace_runs,
             "grace_period_seconds": rules.grace_period},
        )])
        if not self.dry_run:
            # Recorded before the caps judge: a healthy source's absences count even on a
            # run a cap refuses, so grace moves on and a saved plan can hold the due ids.
            journal.replace_absences(self.job.name, self.target, grace.absences())
        cap_gates = judge_caps(rules, len(plan.to_delete), self._remote_size(plan, remote),
                               journal.queued_since(self.job.name, now - 86400, self.target))
        self._record_gates(cap_gates)
        self.caps_refusal = refusal(cap_gates)
        if self.caps_refusal is not None and self.request.plan_out is None:
            raise SafetyRefusal(self.caps_refusal)
        self.summary.update(to_delete=len(plan.to_delete), skipped=plan.skipped_counts())
        return plan

    def _remote_size(self, plan: Plan, remote: pa.Array) -> int:
        """The catalog the caps are a share of: the job's own scope of it, when it has one."""
        if not self.job.scope:
            return plan.remote.unique
        owned = remote.filter(in_scope_mask(remote, self.job.scope))
        return int(pc.count_distinct(owned).as_py() or 0)

    def _record_gates(self, gates: list[Gate]) -> None:
        self.summary.setdefault("gates", []).extend(g.as_dict() for g in gates)
        for gate in gates:
            (self.log.info if gate.passed else self.log.error)(
                "gate", name=gate.name, passed=gate.passed, detail=gate.detail, **gate.numbers)

    def _protected(self, ids: pa.Array) -> pa.Array:
        rules = self.job.safety
        listed = [self._protect_list(path) for path in rules.protect_files]
        values = pa.concat_arrays([a.cast(pa.string()) for a in listed]) if listed else \
            pa.array([], pa.string())
        return protected_mask(ids, rules.protect, values)

    def _protect_list(self, path: Path) -> pa.Array:
        """A ``protect = ["file:..."]`` list, read as strictly as the source: one cut
        short (no line break after its last row) would protect fewer ids."""
        read = read_source(IdFile(path))
        if read.final_newline is False and self.job.safety.require_final_newline:
            raise SourceError(
                f"{path}: the last row of this protect list has no line break: it may be "
                "cut short (still being written?); nothing was deleted "
                "(require_final_newline = false accepts it)")
        return read.ids

    def _snapshot_writer(self) -> backups.RecordWriter | None:
        """Listed records stream here on real runs, for the backup (see backups.py)."""
        if self.dry_run or self.job.target.inventory is not None or self.job.target.ledger:
            return None
        path = backups.backup_dir(self.config.state_dir, self.job.name) / \
            f"{self.run_id}.inventory{backups.SUFFIX}"
        return backups.RecordWriter(path)

    def _backup(self, backend: Backend, plan: Plan,
                snapshot: backups.RecordWriter | None, missing_reason: str = "") -> Plan:
        """Back up every id about to be deleted; ids with no record to back up are skipped."""
        wanted = set(plan.to_delete.to_pylist())
        if not wanted:  # nothing to delete: no (empty) backup file
            if snapshot is not None:
                snapshot.path.unlink(missing_ok=True)
            return plan
        if snapshot is not None:
            records = list(backups.records_for(snapshot.path, wanted))
            snapshot.path.unlink()
        elif not backend.reads_back:
            # The API cannot read an item back: the backup keeps the ids, which is what a
            # re-upload needs to know; there are no properties to keep.
            records = [{"item_id": i, "properties": None} for i in sorted(wanted)]
        else:
            records = [{"item_id": r.item_id, "properties": dict(r.properties)}
                       for r in backend.read_back(sorted(wanted))]
        written, path = backup_store(self.config).write(self.job.name, self.run_id, records)
        self.summary["backup"] = {"path": path, "records": written}
        self.log.info("backup.written", path=path, records=written)
        missing = wanted - {r["item_id"] for r in records}
        return defer(plan, pc.is_in(plan.to_delete, value_set=pa.array(sorted(missing),
                                                                     pa.string())),
                     missing_reason or SKIP_NO_BACKUP)

    def _inventory(self, backend: Backend,
                   snapshot: backups.RecordWriter | None = None) -> pa.Array:
        spec = self.job.target.inventory
        if spec is not None:
            try:
                remote = read_ids(spec)
            except SourceError as exc:
                raise SourceError(f"inventory export: {exc}") from None
            self.summary["inventory"] = {"source": "export", "path": str(spec.path)}
            self.summary["inventory_complete"] = True
            return remote
        started = self.clock.monotonic()
        self._share_read_budget(backend)
        listing = Progress("listing", self.log)

        def sink(records: Sequence[dict[str, Any]], total: int | None) -> None:
            listing.update(len(records), total)
            self._keep_properties(records)
            if snapshot is not None:
                snapshot.write(records)

        try:
            inventory = backend.inventory(sink)
        finally:
            listing.close()
        self.summary["inventory_complete"] = inventory.complete
        self.summary["inventory"] = {
            "source": "api", "expected": inventory.expected, "found": len(inventory.ids),
            "requests": inventory.requests, "detail": inventory.detail,
        }
        self.summary["assumptions"] = [a.as_dict() for a in inventory.assumptions]
        self.log.info(
            "inventory.listed", found=len(inventory.ids), expected=inventory.expected,
            complete=inventory.complete, requests=inventory.requests,
            seconds=round(self.clock.monotonic() - started, 3),
        )
        return pa.array(inventory.ids, type=pa.string())

    def _share_read_budget(self, backend: Backend) -> None:
        """List and read calls count against a budget shared by every process, per catalog."""
        # ``backend`` is wrapped (RedactingBackend): ask what it can do, not what class it is.
        if isinstance(backend, ReadBudgeted):
            backend.share_read_budget(catalog_budget(
                self.config, backend.read_budget_key, *backend.read_rate))

    def _keep_properties(self, records: Sequence[dict[str, Any]]) -> None:
        """A short line of each listed item's properties, for the plan and report.html."""
        kept = self.html.properties
        if len(kept) >= _MAX_PROPERTIES:
            return
        for record in records:
            text = key_properties(record.get("properties"))
            if text:
                kept[str(record["item_id"])] = text

    def _verify(self, journal: Store, remote: pa.Array) -> None:
        """Read back ids queued by earlier runs: gone, still present (too long), or pending."""
        queued = journal.queued_before(self.job.name, self.run_id, self.target)
        if not queued:
            self.summary["verified"] = {VERIFIED_GONE: 0, STILL_PRESENT: 0, "pending": 0}
            return
        if not self.summary["inventory_complete"]:
            self.summary["verified"] = {"skipped": "inventory incomplete", "pending": len(queued)}
            return
        ids = pa.array([q[1] for q in queued], type=remote.type)
        present = pc.is_in(ids, value_set=remote).to_pylist()
        now = self.clock.utcnow().timestamp()
        after = self.job.limits.verify_after_seconds
        updates = []
        for (plan_run, item_id, queued_at, _sends), listed in zip(queued, present, strict=True):
            if not listed:
                updates.append((plan_run, item_id, VERIFIED_GONE, ""))
            elif now - queued_at >= after:
                detail = f"still listed {int(now - queued_at)} s after it was queued; resent"
                updates.append((plan_run, item_id, STILL_PRESENT, detail))
        journal.mark_verified(updates)
        gone = sum(1 for u in updates if u[2] == VERIFIED_GONE)
        still = len(updates) - gone
        self.summary["verified"] = {VERIFIED_GONE: gone, STILL_PRESENT: still,
                                    "pending": len(queued) - len(updates)}
        self.log.info("verify.done", **self.summary["verified"])

    # -- applying a saved plan -----------------------------------------------------------

    def _apply(self, journal: Store, saved: SavedPlan) -> tuple[int, str]:
        """Delete exactly the saved plan's ids, minus those that drifted since it was made.

        Every cap is judged again here, on the plan's ids and the catalog as it is now
        (listed again, or the export or ledger that stands for it), never on numbers in
        the file: a plan over a cap needs ``--approve`` whatever the file says.
        """
        rules, now = self.job.safety, self.clock.utcnow().timestamp()
        self.summary.update(applied_plan=saved.run_id, plan_created_at=saved.created_at)
        journal.start_run(self.run_id, self.job.name, False, self.summary["started_at"],
                          target=self.target)
        preflight.writable_dir(self.folder, "report folder")  # before anything is deleted
        if saved.target != self.target:
            raise SafetyRefusal(
                f"the plan was made for target {short(saved.target)}, but job "
                f"{self.job.name!r} now targets {short(self.target)}: nothing was deleted; "
                "make a new plan")
        if saved.created_at - now > FUTURE_PLAN_SKEW:
            raise SafetyRefusal(
                f"the plan was made {(saved.created_at - now) / 3600:.1f} h in the future "
                "(a clock was wrong): nothing was deleted; make a new one")
        if now - saved.created_at > rules.max_plan_age:
            raise SafetyRefusal(
                f"the plan is {(now - saved.created_at) / 3600:.1f} h old; max_plan_age is "
                f"{rules.max_plan_age / 3600:.1f} h: make a new one")
        source = read_ids(self.job.source)
        self.summary["source_changed"] = (
            saved_plan.file_sha256(self.job.source.path) != saved.source_sha256)
        ids = pa.array(list(saved.to_delete), pa.string())
        stats = distinct_stats(source)
        backend = self.factory(self.job, self.clock, self.log)
        try:
            remote = self._ledger(journal) if self.job.target.ledger else \
                self._inventory(backend)
            plan = Plan(to_delete=ids, skipped_ids=pa.array([], pa.string()),
                        skipped_reasons=pa.array([], pa.string()), source=stats,
                        remote=IdStats(rows=int(pc.count_distinct(remote).as_py() or 0),
                                       empty=0, duplicates=0))
            plan = defer(plan, pc.invert(in_scope_mask(ids, self.job.scope)), SKIP_OUT_OF_SCOPE)
            drifted = pc.or_(pc.is_in(plan.to_delete, value_set=source.cast(pa.string())),
                             self._protected(plan.to_delete))
            plan = defer(plan, drifted, SKIP_DRIFTED)
            remote_size = self._remote_size(plan, remote)
            gates = judge_caps(rules, len(plan.to_delete), remote_size,
                               journal.queued_since(self.job.name, now - 86400, self.target))
            self._record_gates(gates)
            reason = refusal(gates)
            if reason is not None:
                if not self.request.approve:
                    raise SafetyRefusal(f"{reason}; 'apply --approve --reason TEXT' goes past it")
                approval = {"user": getpass.getuser(), "reason": self.request.reason,
                            "past": reason}
                self.summary["approved"] = approval
                self.log.warning("apply.approved", **approval)
            self.plan = plan = self._backup(backend, plan, None, SKIP_ALREADY_GONE)
            self.summary.update(to_delete=len(plan.to_delete), skipped=plan.skipped_counts(),
                                source_ids=plan.source.unique, remote_ids=remote_size)
            journal.store_plan(
                self.run_id, plan.to_delete.to_pylist(),
                zip(plan.skipped_ids.to_pylist(), plan.skipped_reasons.to_pylist(), strict=True))
            self._log_skipped(plan.skipped_ids.to_pylist(), plan.skipped_reasons.to_pylist())
            code, message = self._execute(journal, backend, self.run_id,
                                          plan.to_delete.to_pylist())
        finally:
            backend.close()
        return code, f"applied {saved.run_id}: {message}"

    # -- finishing an interrupted plan ---------------------------------------------------

    def _resume(self, journal: Store, backend: Backend, old: RunRow) -> tuple[int, str]:
        at = journal.state_counts(old.run_id)
        self.summary["resumed_from"] = old.run_id
        self.summary["resumed_at"] = at
        self.log.warning("run.resuming", resumed_from=old.run_id, states=at)
        source = read_ids(self.job.source)  # the plan is re-checked against today's source
        pending = journal.resendable(old.run_id)
        pending_ids = pa.array([p.item_id for p in pending], type=source.type)
        back = pc.is_in(pending_ids, value_set=source)
        outside = pc.and_(pc.invert(in_scope_mask(pending_ids, self.job.scope)),
                          pc.invert(back))
        protected = pc.and_(self._protected(pending_ids), pc.invert(pc.or_(back, outside)))
        back_ids = pending_ids.filter(back).to_pylist()
        outside_ids = pending_ids.filter(outside).to_pylist()
        protected_ids = pending_ids.filter(protected).to_pylist()
        kept = pc.or_(pc.or_(back, outside), protected)
        to_send = pending_ids.filter(pc.invert(kept)).to_pylist()
        journal.record_outcomes(
            self.run_id, old.run_id, None,
            [(i, SKIPPED, SKIP_BACK_IN_SOURCE) for i in back_ids]
            + [(i, SKIPPED, SKIP_OUT_OF_SCOPE) for i in outside_ids]
            + [(i, SKIPPED, SKIP_PROTECTED) for i in protected_ids],
            self.clock.utcnow().timestamp(),
        )
        self.plan = Plan(
            to_delete=pa.array(to_send, pa.string()),
            skipped_ids=pa.array(back_ids + outside_ids + protected_ids, pa.string()),
            skipped_reasons=pa.array([SKIP_BACK_IN_SOURCE] * len(back_ids)
                                     + [SKIP_OUT_OF_SCOPE] * len(outside_ids)
                                     + [SKIP_PROTECTED] * len(protected_ids), pa.string()),
            source=IdStats(rows=len(source), empty=0, duplicates=0),
            remote=IdStats(rows=0, empty=0, duplicates=0),
        )
        self.summary.update(to_delete=len(to_send), skipped=self.plan.skipped_counts(),
                            inventory={"source": "journal", "plan_run": old.run_id})
        self._log_skipped(self.plan.skipped_ids.to_pylist(),
                          self.plan.skipped_reasons.to_pylist())
        code, message = self._execute(journal, backend, old.run_id, to_send)
        if not journal.resendable(old.run_id):
            journal.set_status(old.run_id, RESUMED)
        return code, f"resumed {old.run_id}: {message}"

    # -- sending -------------------------------------------------------------------------

    def _execute(self, journal: Store, backend: Backend, plan_run: str,
                 ids: list[str]) -> tuple[int, str]:
        ledger = JournalLedger(journal, self.run_id, plan_run, self.clock)
        started = self.clock.monotonic()
        deleting = Progress("deleting", self.log)

        def on_batch(seq: int, outcomes: Sequence[Outcome], seconds: float) -> None:
            deleting.update(len(outcomes), len(ids))
            self.html.batches.append((self.clock.monotonic() - started, len(outcomes)))
            self._log_batch(seq, outcomes, seconds)

        limits = self.job.limits
        budget = catalog_budget(self.config, backend.budget_key, limits.requests_per_window,
                                limits.window_seconds)
        result = Executor(
            backend, limits, self.clock, budget,
            ledger=ledger, should_stop=self.stop, first_seq=journal.next_batch_seq(plan_run),
            on_outcome=self._log_outcome, on_batch=on_batch,
        ).run(ids)
        deleting.close()
        self.outcomes = result.outcomes
        counts = result.counts()
        self.summary.update(
            deleted=counts[QUEUED], failed=counts[FAILED], unknown=counts[UNKNOWN],
            not_sent=counts[NOT_SENT], batches=result.batches, requests=result.requests,
            throttled=result.throttled, retries=result.retries, splits=result.splits,
            budget_wait_seconds=round(result.budget_wait_seconds, 3),
            delete_seconds=round(self.clock.monotonic() - started, 3),
            journal_seconds=round(ledger.seconds, 3),
        )
        if result.stopped:
            self.status = STOPPED
            self.summary["error"] = result.stopped
            self.log.warning("run.stopped", reason=result.stopped)
        bad = counts[FAILED] + counts[UNKNOWN] + counts[NOT_SENT]
        message = f"{counts[QUEUED]} deleted, {bad} not deleted"
        return (EXIT_ITEMS_FAILED if bad else EXIT_OK), message

    # -- reporting -----------------------------------------------------------------------

    def _summarize_plan(self, plan: Plan) -> None:
        self.summary.update(
            source_ids=plan.source.unique,
            remote_ids=plan.remote.unique,
            to_delete=len(plan.to_delete),
            skipped=plan.skipped_counts(),
            source={
                "path": str(self.job.source.path), "rows": plan.source.rows,
                "empty_ids": plan.source.empty, "duplicate_ids": plan.source.duplicates,
                "whitespace_ids": plan.source.whitespace,
            },
        )
        self.summary["inventory"].update(
            rows=plan.remote.rows, empty_ids=plan.remote.empty,
            duplicate_ids=plan.remote.duplicates,
        )

    def _log_skipped(self, ids: list[str], reasons: list[str]) -> None:
        if not self.request.item_events:
            return
        for item_id, reason in zip(ids, reasons, strict=True):
            self.log.info("item", item_id=item_id, outcome=SKIPPED, detail=reason)

    def _log_outcome(self, outcome: Outcome) -> None:
        if not self.request.item_events:
            return
        level = self.log.info if outcome.outcome == QUEUED else self.log.warning
        level("item", item_id=outcome.item_id, outcome=outcome.outcome, detail=outcome.detail)

    def _log_batch(self, number: int, outcomes: Sequence[Outcome], seconds: float) -> None:
        queued = sum(1 for o in outcomes if o.outcome == QUEUED)
        self.log.info(
            "batch", batch=number, size=len(outcomes), queued=queued,
            not_queued=len(outcomes) - queued, seconds=round(seconds, 3),
        )


def run_job(
    config: Config,
    job: Job,
    request: RunRequest,
    *,
    clock: Clock | None = None,
    backend_factory: BackendFactory = default_backend,
    stop: StopFlag | None = None,
) -> RunResult:
    """Reconcile one job once (or plan it, when ``dry_run``); always writes a report."""
    stop = stop or StopFlag()
    clock = clock or SystemClock(wake=stop.event)
    return _Run(config, job, request, clock, backend_factory, stop).execute()


def iso_now(clock: Clock) -> str:
    return clock.utcnow().isoformat(timespec="seconds").replace("+00:00", "Z")


def base_summary(job: Job, run_id: str, clock: Clock, **extra: Any) -> dict[str, Any]:
    """The keys every summary.json has (the contract's), before a run fills them in."""
    return {
        "job": job.name, "run_id": run_id, "dry_run": False, "backend": job.target.backend,
        "catalog_id": job.target.catalog_id, "target": short(target_fingerprint(job.target)),
        "source_ids": 0, "remote_ids": 0,
        "inventory_complete": False, "to_delete": 0, "skipped": {}, "deleted": 0, "failed": 0,
        "unknown": 0, "not_sent": 0, "started_at": iso_now(clock), "finished_at": None,
        "exit_code": None, **extra,
    }


def _action(request: RunRequest, dry_run: bool) -> Action:
    """What this run is, for summary.json's ``action``."""
    if request.verify_only:
        return Action.VERIFY
    if request.apply is not None:
        return Action.APPLY
    return Action.PLAN if dry_run else Action.RUN


def verified_line(verified: dict[str, Any]) -> str:
    """``run --verify``'s one line, from the summary's ``verified`` counts."""
    if "skipped" in verified:
        return (f"verified nothing: {verified['skipped']} "
                f"({verified.get('pending', 0)} deletes still to verify)")
    gone, still = verified.get(VERIFIED_GONE, 0), verified.get(STILL_PRESENT, 0)
    pending = verified.get("pending", 0)
    if not gone + still + pending:
        return "verified: no earlier deletes waiting to be verified"
    return (f"verified: {gone} gone, {still} still listed (resent by the next run), "
            f"{pending} too recent to judge")


def check_ownership(config: Config, job: Job) -> None:
    """Refuse (exit 2) a job that shares its catalog with another job of the config, unless
    both declare scopes that are provably disjoint."""
    owners = {j.name: (target_fingerprint(j.target), j.scope) for j in config.jobs.values()}
    for a, b, why in ownership_conflicts(owners):
        if job.name in (a, b):
            raise ConfigError(f"{config.path}: {conflict_line(a, b, why)}")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h"


def _loggable(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("dry_run", "source_ids", "remote_ids", "inventory_complete", "to_delete",
            "skipped", "deleted", "failed", "unknown", "not_sent", "exit_code", "resumed_from")
    return {k: summary.get(k) for k in keys if k in summary}


def distinct_stats(ids: pa.Array) -> IdStats:
    """Rows, empty and repeated ids of a column: the shrink baseline counts distinct ids."""
    empty = int(pc.sum(pc.equal(pc.binary_length(ids), 0)).as_py() or 0)
    distinct = int(pc.count_distinct(ids.filter(pc.greater(pc.binary_length(ids), 0))).as_py()
                   or 0)
    return IdStats(rows=len(ids), empty=empty, duplicates=len(ids) - empty - distinct)
