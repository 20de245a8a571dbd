"""Backends: one interface (base.py), one file per remote API ending in its ``SPEC``
(spec.py: settings, limits, capabilities, factory, emulator), and the one list of them
(registry.py)."""
