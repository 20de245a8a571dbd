"""catalog-reconciler: keep a recommendations catalog free of items gone from its source."""

__version__ = "0.1.0"
