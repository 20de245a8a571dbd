"""The systemd unit, checked by ``systemd-analyze`` (``make test-browser`` installs systemd
when it is missing, so ``make test`` needs nothing but Python)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

UNIT = Path(__file__).parents[2] / "systemd" / "reconciler.service"


def local_unit(tmp_path: Path) -> Path:
    local = tmp_path / "reconciler.service"
    installed = str(Path(sys.executable).parent / "reconciler")
    local.write_text(UNIT.read_text().replace("/opt/catalog-reconciler/.venv/bin/reconciler",
                                              installed))
    return local


def test_the_systemd_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: run 'make test-browser' (it installs systemd)"
    done = subprocess.run([analyze, "verify", str(local_unit(tmp_path))],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_unit_scores_at_most_2_on_systemd_analyze_security(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: run 'make test-browser' (it installs systemd)"
    done = subprocess.run([analyze, "security", "--offline=true", str(local_unit(tmp_path))],
                          capture_output=True, text=True, check=False)
    score = re.search(r"Overall exposure level for reconciler.service: ([0-9.]+)",
                      done.stdout)
    assert score, done.stdout + done.stderr
    assert float(score.group(1)) <= 2.0, done.stdout
