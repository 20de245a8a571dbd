"""``reconciler check --probe``: each job's API assumptions, probed read-only.

Exit 0 when none is contradicted, 1 when any is (``EXIT_CONTRADICTED``); an API or
config error keeps its own code. Text is a table per job; ``--format json`` prints
``{"jobs": {"<job>": {"assumptions": [{"name", "status", "evidence"}]}}}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from reconciler.backends.base import Backend
from reconciler.core.assumptions import Assumption, any_contradicted
from reconciler.core.errors import EXIT_OK, ReconcilerError
from reconciler.core.settings import Config, Job

EXIT_CONTRADICTED = 1


def probe_jobs(config: Config, names: Sequence[str], make_backend: Callable[[Job], Backend],
               fmt: str, out: TextIO, err: TextIO) -> list[int]:
    """Probe each job; print the table or the JSON; return each job's exit code."""
    codes: list[int] = []
    report: dict[str, Any] = {"jobs": {}}
    for job in config.select(list(names)):
        backend = make_backend(job)
        try:
            found = backend.probe()
        except ReconcilerError as exc:
            print(f"{job.name}: probe failed: {exc}", file=err)
            codes.append(exc.exit_code)
            continue
        finally:
            backend.close()
        codes.append(EXIT_CONTRADICTED if any_contradicted(found) else EXIT_OK)
        report["jobs"][job.name] = {"assumptions": [a.as_dict() for a in found]}
        if fmt == "text":
            print(table(job.name, found), file=out)
    if fmt == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False), file=out)
    return codes


def table(job: str, assumptions: Sequence[Assumption]) -> str:
    rows = [(a.name, a.status, a.evidence) for a in assumptions]
    if not rows:
        return f"{job}: no assumptions to probe"
    width = [max(len(r[i]) for r in [("assumption", "status", "evidence"), *rows])
             for i in range(2)]
    lines = [f"{job}:"]
    for name, status, evidence in [("assumption", "status", "evidence"), *rows]:
        lines.append(f"  {name:<{width[0]}}  {status:<{width[1]}}  {evidence}")
    return "\n".join(lines)
