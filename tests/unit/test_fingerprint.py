"""The target fingerprint: the same catalog, however spelled; another catalog, another one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.core.fingerprint import normalise_base_url, short, target_fingerprint
from reconciler.core.settings import Secret, Target

BASE = Target(backend="bloomreach", base_url="https://api.exponea.com", project_token="p1",
              catalog_id="c1", api_key_id=Secret("k"), api_secret=Secret("s"))


@pytest.mark.parametrize("change", [
    {"catalog_id": "c2"},
    {"base_url": "https://api.eu.exponea.com"},
    {"base_url": "https://api.exponea.com:8443"},
    {"base_url": "http://api.exponea.com"},
    {"base_url": "https://api.exponea.com/other"},
    {"project_token": "p2"},
    {"backend": "adobe-classic"},
    {"tenant": "t2"},
    {"environment": 7},
])
def test_another_catalog_has_another_fingerprint(change):
    assert target_fingerprint(replace(BASE, **change)) != target_fingerprint(BASE)


@pytest.mark.parametrize("spelling", [
    "https://API.Exponea.com", "https://api.exponea.com/", "HTTPS://api.exponea.com:443//",
    " https://api.exponea.com ", "https://api.exponea.com?x=1#frag",
])
def test_the_same_catalog_however_spelled_has_one_fingerprint(spelling):
    assert target_fingerprint(replace(BASE, base_url=spelling)) == target_fingerprint(BASE)


def test_credentials_are_not_part_of_the_fingerprint():
    rotated = replace(BASE, api_key_id=Secret("k2"), api_secret=Secret("s2"),
                      token=Secret("t"))
    assert target_fingerprint(rotated) == target_fingerprint(BASE)


def test_environment_zero_is_not_no_environment():
    assert target_fingerprint(replace(BASE, environment=0)) != target_fingerprint(BASE)


def test_normalised_url_and_short_form():
    assert normalise_base_url("HTTP://Host:80/api/") == "http://host/api"
    assert normalise_base_url("https://host:8443") == "https://host:8443"
    fingerprint = target_fingerprint(BASE)
    assert len(fingerprint) == 64 and short(fingerprint) == fingerprint[:12]
    assert short(None) is None
