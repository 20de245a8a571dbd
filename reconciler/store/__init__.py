"""Durable state behind one ``Store`` interface (base.py); ``open_store`` picks the backing.

Every run opens its store here, so another implementation (PostgreSQL) plugs in at one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.store.base import ItemRow, RunRow, Store

if TYPE_CHECKING:
    from reconciler.core.settings import Config

__all__ = ["ItemRow", "RunRow", "Store", "open_store"]


def open_store(config: Config) -> Store:
    """The store of ``config``: for now the SQLite journal under its state_dir."""
    from reconciler.store.journal import Journal

    return Journal.in_state_dir(config.state_dir)
