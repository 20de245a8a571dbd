"""Backends: one interface (base.py), one implementation per remote API."""
