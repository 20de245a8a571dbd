"""The target fingerprint: the same catalog, however spelled; another catalog, another one."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from reconciler.backends.adobe_classic import AdobeClassicSettings
from reconciler.backends.adobe_target import AdobeTargetSettings
from reconciler.backends.bloomreach import BloomreachSettings
from reconciler.core.fingerprint import normalise_base_url, short, target_fingerprint
from reconciler.core.settings import Secret, Target

BASE = Target(backend="bloomreach", base_url="https://api.exponea.com",
              settings=BloomreachSettings(project_token="p1", catalog_id="c1",
                                          api_key_id=Secret("k"), api_secret=Secret("s")))


ADOBE = Target(backend="adobe-target", base_url="https://mc.adobe.io",
               settings=AdobeTargetSettings(tenant="t1", environment=3, api_key=Secret("k"),
                                            token=Secret("t")))


def changed(target: Target, **change: object) -> Target:
    """``target`` with common fields or fields of its backend's settings changed."""
    own = {k: v for k, v in change.items() if hasattr(target.settings, k)}
    common = {k: v for k, v in change.items() if k not in own}
    return replace(target, settings=replace(target.settings, **own), **common)  # type: ignore[type-var]


@pytest.mark.parametrize("change", [
    {"catalog_id": "c2"},
    {"base_url": "https://api.eu.exponea.com"},
    {"base_url": "https://api.exponea.com:8443"},
    {"base_url": "http://api.exponea.com"},
    {"base_url": "https://api.exponea.com/other"},
    {"project_token": "p2"},
    {"backend": "adobe-classic"},
])
def test_another_catalog_has_another_fingerprint(change):
    assert target_fingerprint(changed(BASE, **change)) != target_fingerprint(BASE)


@pytest.mark.parametrize("change", [{"tenant": "t2"}, {"environment": 7}])
def test_another_adobe_tenant_or_environment_has_another_fingerprint(change):
    assert target_fingerprint(changed(ADOBE, **change)) != target_fingerprint(ADOBE)


@pytest.mark.parametrize("spelling", [
    "https://API.Exponea.com", "https://api.exponea.com/", "HTTPS://api.exponea.com:443//",
    " https://api.exponea.com ", "https://api.exponea.com?x=1#frag",
])
def test_the_same_catalog_however_spelled_has_one_fingerprint(spelling):
    assert target_fingerprint(replace(BASE, base_url=spelling)) == target_fingerprint(BASE)


def test_credentials_are_not_part_of_the_fingerprint():
    rotated = changed(BASE, api_key_id=Secret("k2"), api_secret=Secret("s2"))
    assert target_fingerprint(rotated) == target_fingerprint(BASE)
    assert target_fingerprint(changed(ADOBE, api_key=Secret("k2"), token=Secret("t2"))) == \
        target_fingerprint(ADOBE)


def test_environment_zero_is_not_another_tenant_spelling():
    assert target_fingerprint(changed(ADOBE, environment=0)) != target_fingerprint(ADOBE)


def old_fingerprint(identity: dict[str, object]) -> str:
    """The digest of the flat-target days: state recorded then must still match."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_fingerprints_are_unchanged_by_settings_moving_into_each_backend():
    common = {"base_url": "https://api.exponea.com", "project": "", "tenant": "",
              "environment": None}
    assert target_fingerprint(BASE) == old_fingerprint(
        {**common, "backend": "bloomreach", "project": "p1", "catalog": "c1"})
    assert target_fingerprint(ADOBE) == old_fingerprint(
        {**common, "backend": "adobe-target", "base_url": "https://mc.adobe.io",
         "tenant": "t1", "catalog": "t1/environment-3", "environment": 3})
    classic = Target(backend="adobe-classic", base_url="https://recommendations.omniture.com",
                     settings=AdobeClassicSettings(client="c9", client_token=Secret("x")),
                     ledger=True)
    assert target_fingerprint(classic) == old_fingerprint(
        {**common, "backend": "adobe-classic", "base_url": "https://recommendations.omniture.com",
         "tenant": "c9", "catalog": "c9"})


def test_normalised_url_and_short_form():
    assert normalise_base_url("HTTP://Host:80/api/") == "http://host/api"
    assert normalise_base_url("https://host:8443") == "https://host:8443"
    fingerprint = target_fingerprint(BASE)
    assert len(fingerprint) == 64 and short(fingerprint) == fingerprint[:12]
    assert short(None) is None
