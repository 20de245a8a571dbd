"""Local emulators of the remote catalog APIs, for ``demo``, ``emulator`` and the tests."""

from typing import Any

from reconciler.emulator.bloomreach import Emulator, EmulatorSettings

__all__ = ["Emulator", "EmulatorSettings", "generate_items"]


def generate_items(
    count: int, *, prefix: str = "SKU-", awkward: bool = True
) -> dict[str, dict[str, Any]]:
    """``count`` items with zero-padded ids, plus (when ``awkward``) ids that break naive tools.

    The awkward ids are the ones a reconciler gets wrong first: a ``/`` (unaddressable),
    unicode, a comma, a space, leading zeros and ``NA``.
    """
    width = max(6, len(str(count)))
    items: dict[str, dict[str, Any]] = {
        f"{prefix}{n:0{width}d}": {"title": f"Product {n}", "price": n % 97}
        for n in range(count)
    }
    if awkward:
        for item_id in ("SKU/with-slash", "ünïcødé-☃", "comma,id", "with space", "00123", "NA"):
            items[item_id] = {"title": f"Awkward {item_id}"}
    return items
