"""Saved plans: signed with the state's key, refused when edited or from another state."""

from __future__ import annotations

import json

import pytest

from reconciler.core.errors import EXIT_CONFIG, EXIT_REFUSED, ConfigError, SafetyRefusal
from reconciler.store import saved_plan
from reconciler.store.saved_plan import SavedPlan

PLAN = SavedPlan(job="j", run_id="r", created_at=1.5, source_path="s.csv", source_sha256="a",
                 inventory_sha256="b", remote_ids=10, to_delete=("x", "y"), skipped={},
                 target="f" * 64)


def test_the_key_is_made_once_private_and_kept(tmp_path):
    key = saved_plan.signing_key(tmp_path / "state")
    path = tmp_path / "state" / saved_plan.KEY_NAME
    assert path.stat().st_mode & 0o777 == 0o600 and len(key) == 64
    assert saved_plan.signing_key(tmp_path / "state") == key
    assert [p.name for p in (tmp_path / "state").iterdir()] == [saved_plan.KEY_NAME]


def test_a_damaged_key_is_a_config_error(tmp_path):
    (tmp_path / saved_plan.KEY_NAME).write_text("short\n")
    with pytest.raises(ConfigError) as caught:
        saved_plan.signing_key(tmp_path)
    assert caught.value.exit_code == EXIT_CONFIG
    assert str(caught.value).endswith("the plan-signing key is damaged; delete it (saved "
                                      "plans made with it will then be refused)")


def test_round_trip_and_any_edit_is_refused(tmp_path):
    key = saved_plan.signing_key(tmp_path)
    path = tmp_path / "plan.json"
    saved_plan.write(path, PLAN, key)
    assert saved_plan.load(path, key) == PLAN
    data = json.loads(path.read_text())
    data["to_delete"].append("z")
    path.write_text(json.dumps(data))
    with pytest.raises(SafetyRefusal) as caught:
        saved_plan.load(path, key)
    assert caught.value.exit_code == EXIT_REFUSED
    assert str(caught.value).startswith(f"{path}: refused: the plan's signature does not match")
    saved_plan.write(path, PLAN, key)
    with pytest.raises(SafetyRefusal):
        saved_plan.load(path, b"another state's key" * 4)


def test_a_state_dir_that_cannot_hold_the_key_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError) as caught:
        saved_plan.signing_key(blocker / "state")
    assert str(caught.value) == (f"{blocker / 'state' / saved_plan.KEY_NAME}: cannot create "
                                 "the plan-signing key: Not a directory")
