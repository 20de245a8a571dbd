from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.settings import Config


@pytest.fixture(params=["sqlite", "postgres"])
def store_config(request, tmp_path) -> Config:
    """A config whose state is the embedded SQLite journal or a fresh PostgreSQL database."""
    state = request.getfixturevalue("postgres_dsn") if request.param == "postgres" else None
    return Config(path=Path(tmp_path / "c.toml"), state_dir=tmp_path / "state", jobs={},
                  state=state)


@pytest.fixture
def store(store_config):
    from reconciler.store import open_store

    opened = open_store(store_config)
    yield opened
    opened.close()
