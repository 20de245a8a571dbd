"""Checks of the environment made before the first delete, at daemon start and by ``check``.

A run that would only find out after its deletes that it cannot write its journal, its
backups or its report would have deleted without a record. So ``state_dir`` and the report
folder are created (``0700``) and proven writable, and the source proven readable, first.
Each problem is one line naming the path (``EnvironmentProblem``, exit 3: nothing deleted).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from reconciler.core.errors import EnvironmentProblem, describe_os_error

PRIVATE_DIR = 0o700


def writable_dir(path: Path, what: str) -> None:
    """Create ``path`` (private) if needed and prove a file can be written and removed."""
    if path.exists() and not path.is_dir():
        raise EnvironmentProblem(f"{what} {path} is not a folder")
    try:
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(
            f"{what} {path} cannot be created: {describe_os_error(exc)}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-") as probe:
            probe.write(b"x")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise EnvironmentProblem(
            f"{what} {path} is not writable: {describe_os_error(exc)}") from None


def readable_file(path: Path, what: str) -> None:
    try:
        with path.open("rb") as stream:
            stream.read(1)
    except OSError as exc:
        raise EnvironmentProblem(f"{what} {path} cannot be read: {describe_os_error(exc)}") \
            from None
