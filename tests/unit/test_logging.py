from __future__ import annotations

import io
import json

from reconciler.logging import configure, get_logger


def test_secrets_are_redacted_everywhere():
    stream = io.StringIO()
    configure("info", "json", secrets=["s3cr3t-value", "key-id-1"], stream=stream)
    log = get_logger(job="j", run_id="r")
    log.info("x", api_secret="s3cr3t-value", detail="auth failed for key-id-1 with s3cr3t-value")
    log.debug("hidden")
    event = json.loads(stream.getvalue())
    assert event["api_secret"] == "***"
    assert event["detail"] == "auth failed for *** with ***"
    assert (event["job"], event["run_id"], event["event"]) == ("j", "r", "x")
    assert "s3cr3t" not in stream.getvalue() and "hidden" not in stream.getvalue()


def test_lines_carry_a_journald_priority_only_under_journald(tmp_path, monkeypatch):
    import os

    from reconciler import logging as rlog

    path = tmp_path / "journal-stream.log"
    with path.open("w", encoding="utf-8") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        rlog.configure("info", "json", stream=stream)
        rlog.get_logger().info("hello")
        rlog.get_logger().error("bad")
        monkeypatch.setenv("JOURNAL_STREAM", "1:2")  # some other stream: no prefix
        rlog.configure("info", "json", stream=stream)
        rlog.get_logger().warning("plain")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith('<6>{"event": "hello"') or lines[0].startswith("<6>{")
    assert lines[1].startswith("<3>{")
    assert lines[2].startswith("{")
