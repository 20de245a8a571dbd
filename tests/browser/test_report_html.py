"""report.html in a real headless browser (Debian's chromium): it renders its charts,
logs nothing to the console (a blocked network load would be a CSP error there), and a
screenshot is not blank. Run by ``make test-browser``, not by ``make test``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.report.html import HtmlExtras, write_html
from tests.browser.png import colours

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--window-size=1200,1700")
HOSTILE = ('<script>alert("x")</script>', "quote\"'id", "ünïcødé-☃", "a&amp;b", "</table>",
           "SKU-000001")


def browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert Path(CHROMIUM).exists(), "chromium missing: run 'make test-browser'"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def check_page(page: Path, tmp_path: Path, screenshot: Path) -> str:
    dom = browse(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_lines(dom.stderr) == []
    assert 'data-charts="3"' in dom.stdout  # the script ran to its end: three charts
    shot = browse(page, tmp_path / "profile-shot", f"--screenshot={screenshot}")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_lines(shot.stderr) == []
    assert colours(screenshot) > 12, "the screenshot looks blank"
    return dom.stdout


def test_the_demo_report_renders(tmp_path):
    demo = subprocess.run([sys.executable, "-m", "reconciler", "demo", "--dir",
                           str(tmp_path / "demo"), "--items", "3000"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    pages = sorted((tmp_path / "demo" / "state" / "reports").glob("*/*/report.html"))
    assert len(pages) == 4
    deleting = [p for p in pages
                if json.loads((p.parent / "summary.json").read_text())["deleted"]]
    assert len(deleting) == 1
    screenshot = tmp_path / "report.png"
    dom = check_page(deleting[0], tmp_path, screenshot)
    assert "Product 20" in dom  # key properties from the listing
    out = os.environ.get("REPORT_SCREENSHOT")
    if out:  # make docs-screenshot: the README's picture
        shutil.copyfile(screenshot, out)


def test_hostile_ids_stay_text(tmp_path):
    summary = {"job": "<b>job</b>", "run_id": "r1", "dry_run": True, "to_delete": len(HOSTILE),
               "skipped": {"protected": 2}, "refused": 'max_shrink: "<img src=x>"',
               "gates": [{"gate": "max_shrink", "passed": False, "detail": "<i>x</i>",
                          "shrink": 0.5}]}
    extras = HtmlExtras(properties={i: f"title: {i}" for i in HOSTILE},
                        batches=[(0.5, 100), (1.0, 100)])
    page = write_html(tmp_path, summary, list(HOSTILE), extras)
    text = page.read_text(encoding="utf-8")
    assert "<script>alert" not in text and "<img src=x>" not in text
    assert not re.search(r"https?://(?!www\.chartjs\.org)", text.split("<script>")[0])
    dom = check_page(page, tmp_path, tmp_path / "hostile.png")
    assert "&lt;script&gt;alert" in dom and "ünïcødé-☃" in dom
