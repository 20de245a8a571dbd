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
