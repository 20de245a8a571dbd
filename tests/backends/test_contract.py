"""One contract suite, run against every backend: the in-memory reference and each real
adapter through its emulator on 127.0.0.1. A backend that passes behaves the same to the
executor and the runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from reconciler.backends.base import Backend, Record
from reconciler.backends.bloomreach import BloomreachBackend
from reconciler.backends.memory import MemoryBackend
from reconciler.clock import FakeClock
from reconciler.config import Limits, Secret, Target
from reconciler.emulator import Emulator, EmulatorSettings
from reconciler.errors import SkippableItem

ITEMS = {f"item-{n:05d}": {"title": f"Item {n}"} for n in range(2500)}
ITEMS.update({"00123": {"title": "zeros"}, "NA": {}, "ünïcødé": {}, "with space": {},
              "comma,id": {}, "a/b": {}})


@dataclass
class Harness:
    backend: Backend
    remote_ids: Callable[[], set[str]]


def memory_harness() -> Iterator[Harness]:
    backend = MemoryBackend(ITEMS)
    yield Harness(backend, lambda: set(backend.items))


def bloomreach_harness() -> Iterator[Harness]:
    emulator = Emulator(ITEMS, EmulatorSettings(bulk_requests_per_window=100,
                                                bulk_window_seconds=1))
    base_url = emulator.start()
    target = Target(
        backend="bloomreach", base_url=base_url, project_token="demo-project",
        catalog_id="demo-catalog", api_key_id=Secret("demo-key"),
        api_secret=Secret("demo-secret"),
    )
    backend = BloomreachBackend(target, Limits(max_attempts=2, backoff_initial_seconds=0.01),
                                FakeClock())
    yield Harness(backend, emulator.ids)
    backend.close()
    emulator.stop()


@pytest.fixture(params=[memory_harness, bloomreach_harness], ids=["memory", "bloomreach"])
def harness(request) -> Iterator[Harness]:
    yield from request.param()


def test_inventory_is_complete_and_exact(harness):
    inventory = harness.backend.inventory()
    assert sorted(inventory.ids) == sorted(ITEMS)
    assert inventory.complete and inventory.expected == len(ITEMS)


def test_delete_batch_answers_per_item_in_order(harness):
    results = harness.backend.delete_batch(["item-00001", "never-existed", "", "item-00002"])
    assert [r.ok for r in results] == [True, True, False, True]
    assert "empty" in results[2].error
    remaining = harness.remote_ids()
    assert "item-00001" not in remaining and "item-00002" not in remaining
    assert len(remaining) == len(ITEMS) - 2


def test_awkward_ids_are_deleted_exactly(harness):
    awkward = ["00123", "NA", "ünïcødé", "with space", "comma,id"]
    assert all(r.ok for r in harness.backend.delete_batch(awkward))
    assert harness.remote_ids() == set(ITEMS) - set(awkward)


def test_unaddressable_ids_are_refused_before_sending(harness):
    with pytest.raises(SkippableItem):
        harness.backend.delete_batch(["item-00003", "a/b"])
    assert harness.remote_ids() == set(ITEMS)
    assert harness.backend.address_rules.forbidden_substrings == ("/",)


def test_read_back_and_restore(harness):
    harness.backend.delete_batch(["item-00004"])
    present = harness.backend.read_back(["item-00004", "item-00005"])
    assert [r.item_id for r in present] == ["item-00005"]
    assert present[0].properties == {"title": "Item 5"}
    results = harness.backend.restore([Record("item-00004", {"title": "Item 4"})])
    assert [r.ok for r in results] == [True]
    assert harness.backend.read_back(["item-00004"]) == [Record("item-00004", {"title": "Item 4"})]


def test_check_is_read_only(harness):
    assert harness.backend.check()
    assert harness.remote_ids() == set(ITEMS)


def test_batch_shape_is_the_documented_limit(harness):
    shape = harness.backend.batch_shape
    assert (shape.max_ids, shape.max_bytes) == (10_000, 10_000_000)
