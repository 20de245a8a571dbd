"""The registry: every backend a config may name declares everything the rest of the
program needs (settings, limits, capabilities, factory, emulator, contract harness), and
what it declares it cannot do is refused before a run leaves any trace."""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import pytest

from reconciler.backends import adobe_classic, adobe_target, bloomreach, memory, registry
from reconciler.backends.spec import BackendSpec
from reconciler.config import load_config
from reconciler.core.errors import EXIT_CONFIG, ConfigError
from reconciler.core.settings import Secret
from reconciler.store.journal import Journal
from tests.backends.test_contract import HARNESSES
from tests.helpers import run_reconciler, toml_value, write_config, write_csv

# One [jobs.x.target] per registered backend, and the settings it must parse into.
SAMPLES: dict[str, tuple[dict[str, object], object]] = {
    "bloomreach": (
        {"project_token": "p", "catalog_id": "c", "api_key_id": "key-1x", "api_secret": "secret-2y",
         "prefix_alphabet": "abc"},
        bloomreach.BloomreachSettings(project_token="p", catalog_id="c",
                                      api_key_id=Secret("key-1x"), api_secret=Secret("secret-2y"),
                                      prefix_alphabet="abc")),
    "adobe-target": (
        {"tenant": "t", "environment": 4, "api_key": "key-3z", "token": "token-4w"},
        adobe_target.AdobeTargetSettings(tenant="t", environment=4, api_key=Secret("key-3z"),
                                         token=Secret("token-4w"))),
    "adobe-classic": (
        {"client": "cl", "client_token": "token-5v", "inventory": "ledger"},
        adobe_classic.AdobeClassicSettings(client="cl", client_token=Secret("token-5v"))),
}
SPECS = list(registry.BACKENDS.values())


def config_for(tmp_path: Path, backend: str, keys: dict[str, object]) -> Path:
    source = write_csv(tmp_path / "source.csv", ["a", "b"])
    text = (f"[jobs.x.source]\npath = {toml_value(source)}\n[jobs.x.target]\n"
            f"backend = {toml_value(backend)}\n"
            + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items()))
    return write_config(tmp_path, text)


def test_the_registry_lists_the_three_apis_in_a_stable_order():
    assert registry.names() == ("bloomreach", "adobe-target", "adobe-classic")
    assert registry.DEFAULT_BACKEND == "bloomreach"
    assert "memory" not in registry.BACKENDS  # tests only: a config cannot name it


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_backend_has_an_emulator_and_a_contract_harness(spec: BackendSpec):
    module = importlib.import_module(f"reconciler.emulator.{spec.emulator}")
    assert callable(module.from_cli)
    assert spec.name in HARNESSES


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_settings_round_trip_from_toml(tmp_path, spec: BackendSpec):
    keys, expected = SAMPLES[spec.name]
    job = load_config(config_for(tmp_path, spec.name, keys)).jobs["x"]
    assert job.target.backend == spec.name
    assert job.target.base_url == spec.default_base_url
    assert isinstance(job.target.settings, spec.settings_type)
    assert job.target.settings == expected
    assert dataclasses.is_dataclass(expected)
    with pytest.raises(dataclasses.FrozenInstanceError):
        expected.catalog_id = "other"  # type: ignore[misc,union-attr]
    # The secrets are the settings' own, and never in a repr.
    secrets = {s.value for s in job.target.settings.secrets()}
    assert secrets and set(job.target.secrets) == secrets
    assert not any(value in repr(job.target) for value in secrets)
    json.dumps(job.target.settings.fingerprint_fields())  # part of the fingerprint: plain
    assert job.limits == spec.limits()


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_an_unknown_key_of_a_backend_is_named(tmp_path, spec: BackendSpec):
    keys, _ = SAMPLES[spec.name]
    path = config_for(tmp_path, spec.name, {**keys, "no_such_key": 1})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: jobs.x.target.no_such_key: unknown key"


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_limits_defaults_lie_within_the_apis_maxima(spec: BackendSpec):
    limits = spec.limits()
    for key, top in spec.maxima.items():
        assert getattr(limits, key) <= top, key


@pytest.mark.parametrize("spec", [*SPECS, memory.SPEC], ids=[*registry.names(), "memory"])
def test_every_missing_capability_an_action_needs_says_why(spec: BackendSpec):
    needed = {c for needs in registry.ACTION_NEEDS.values() for c in needs}
    for capability in spec.capabilities.missing():
        if capability in needed:
            assert spec.why_not.get(capability), (spec.name, capability)


def test_refusals_come_from_the_capabilities(tmp_path):
    jobs = {name: load_config(config_for(tmp_path / name, name, SAMPLES[name][0])).jobs["x"]
            for name in registry.names()}
    assert registry.unsupported(jobs["bloomreach"], "restore") is None
    assert registry.unsupported(jobs["bloomreach"], "purge") is None
    assert registry.unsupported(jobs["adobe-target"], "restore") == (
        "job 'x': adobe-target cannot restore (its API has no upsert; re-import the "
        "entities from the backup with your catalog feed); nothing was changed")
    assert registry.unsupported(jobs["adobe-target"], "purge") == (
        "job 'x': adobe-target cannot purge (this tool never sends its delete-everything "
        "call); nothing was changed")
    assert registry.unsupported(jobs["adobe-classic"], "purge") == (
        "job 'x': adobe-classic cannot purge (its API cannot list entities); nothing was "
        "changed")
    for action in ("plan", "run", "verify", "apply"):  # the ledger stands in for a listing
        for job in jobs.values():
            assert registry.unsupported(job, action) is None
    no_inventory = dataclasses.replace(jobs["adobe-classic"], target=dataclasses.replace(
        jobs["adobe-classic"].target, ledger=False))
    assert registry.unsupported(no_inventory, "run") == (
        "job 'x': adobe-classic cannot run (its API cannot list entities); nothing was changed")
    with pytest.raises(ConfigError) as caught:
        registry.refuse_unsupported(jobs["adobe-target"], "restore")
    assert caught.value.exit_code == EXIT_CONFIG
    with pytest.raises(ValueError):
        registry.unsupported(jobs["bloomreach"], "teleport")


def test_a_memory_spec_that_cannot_restore_is_refused(tmp_path):
    """A backend's declaration alone decides: the same job, another spec."""
    job = load_config(config_for(tmp_path, "bloomreach", SAMPLES["bloomreach"][0])).jobs["x"]
    spec = dataclasses.replace(memory.SPEC, capabilities=dataclasses.replace(
        memory.SPEC.capabilities, restores=False), why_not={"restores": "it forgets"})
    assert registry.unsupported(job, "restore", spec) == (
        "job 'x': memory cannot restore (it forgets); nothing was changed")


def test_purge_refused_before_any_lock_or_journal_row(tmp_path):
    keys, _ = SAMPLES["adobe-target"]
    path = config_for(tmp_path, "adobe-target", {**keys, "base_url": "http://127.0.0.1:9"})
    result = run_reconciler("--config", path, "purge", "x", "--confirm", "t/environment-4",
                            "--yes")
    assert result.returncode == EXIT_CONFIG
    assert result.stderr == (
        "reconciler: job 'x': adobe-target cannot purge (this tool never sends its "
        "delete-everything call); nothing was changed\n")
    state_dir = tmp_path / "var"
    assert not state_dir.exists() or not any(state_dir.rglob("*"))  # no journal, no lock


def test_restore_refused_before_any_lock_or_journal_row(tmp_path):
    from reconciler.runs import operations

    keys, _ = SAMPLES["adobe-target"]
    config = load_config(config_for(tmp_path, "adobe-target", keys))
    journal = Journal.in_state_dir(config.state_dir)
    try:
        journal.start_run("20260101T000000Z-aaaaaa", "x", False, "2026-01-01T00:00:00Z",
                          target=None)
        journal.finish_run("20260101T000000Z-aaaaaa", "finished", 0, "2026-01-01T00:00:01Z", {})
    finally:
        journal.close()
    with pytest.raises(ConfigError, match="adobe-target cannot restore"):
        operations.restore(config, "20260101T000000Z-aaaaaa")
    journal = Journal.in_state_dir(config.state_dir)
    try:
        assert [r.run_id for r in journal.runs("x")] == ["20260101T000000Z-aaaaaa"]
    finally:
        journal.close()
    assert not (config.state_dir / "locks").exists()
