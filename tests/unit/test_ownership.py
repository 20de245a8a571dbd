"""Which claims on a catalog stand against a run's config (core/ownership.py)."""

from __future__ import annotations

from reconciler.core.ownership import CLAIM_LAPSE_SECONDS, Claim, ConfigView, foreign_conflicts

NOW = 1_000_000.0
MINE = Claim("products", "/x/p.csv", "/etc/r.toml", (), NOW)
CONFIG = ConfigView("/etc/r.toml", frozenset({"products", "other"}), edited_at=NOW - 3600)


def conflicts(*claims: Claim, config: ConfigView = CONFIG) -> list[str]:
    return [c.job for c in foreign_conflicts(MINE, claims, NOW, config)]


def test_another_configs_job_stands_until_it_lapses():
    team = Claim("team-b", "/y/b.csv", "/srv/b.toml", (), NOW - 60)
    assert conflicts(team) == ["team-b"]
    lapsed = Claim("team-b", "/y/b.csv", "/srv/b.toml", (), NOW - CLAIM_LAPSE_SECONDS - 1)
    assert conflicts(lapsed) == []


def test_disjoint_scopes_and_the_same_owner_never_conflict():
    scoped_mine = Claim("products", "/x/p.csv", "/etc/r.toml", ("sku-",), NOW)
    theirs = Claim("team-b", "/y/b.csv", "/srv/b.toml", ("ab-",), NOW - 60)
    assert foreign_conflicts(scoped_mine, [theirs], NOW, CONFIG) == []
    moved = Claim("products", "/x/p.csv", "/old/r.toml", (), NOW - 60)  # a moved config
    assert conflicts(moved) == []


def test_this_paths_jobs_are_judged_by_the_config_itself():
    assert conflicts(Claim("other", "/z/o.csv", "/etc/r.toml", (), NOW - 60)) == []


def test_a_job_this_path_dropped_is_stale_only_if_it_last_ran_before_the_edit():
    renamed = Claim("products-old", "/x/p.csv", "/etc/r.toml", (), NOW - 7200)
    assert conflicts(renamed) == []  # ran before the edit that renamed it
    same_path_other_host = Claim("team-b", "/y/b.csv", "/etc/r.toml", (), NOW - 60)
    assert conflicts(same_path_other_host) == ["team-b"]  # ran after this file's edit
    unedited = ConfigView("/etc/r.toml", frozenset({"products"}), edited_at=float("inf"))
    assert conflicts(same_path_other_host, config=unedited) == []
