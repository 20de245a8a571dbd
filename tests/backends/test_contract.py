"""One contract suite, run against every backend: the in-memory reference and each real
adapter through its emulator on 127.0.0.1. A backend that passes behaves the same to the
executor and the runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from reconciler.backends import adobe_classic, adobe_target, bloomreach, memory
from reconciler.backends.base import Backend, Record
from reconciler.backends.bloomreach import BloomreachSettings
from reconciler.backends.memory import MemoryBackend
from reconciler.backends.spec import BackendSpec
from reconciler.core.clock import FakeClock
from reconciler.core.errors import FatalApiError, SkippableItem
from reconciler.core.settings import Secret, Target
from reconciler.emulator import Emulator, EmulatorSettings

ITEMS = {f"item-{n:05d}": {"title": f"Item {n}"} for n in range(2500)}
ITEMS.update({"00123": {"title": "zeros"}, "NA": {}, "ünïcødé": {}, "with space": {},
              "comma,id": {}, "a/b": {}})


@dataclass
class Harness:
    backend: Backend
    remote_ids: Callable[[], set[str]]
    spec: BackendSpec
    unaddressable: str = "a/b"

    # What the suite expects is what the backend declares (``backends/spec.py``).
    @property
    def per_item_answers(self) -> bool:
        return self.spec.capabilities.per_item_answers

    @property
    def can_restore(self) -> bool:
        return self.spec.capabilities.restores

    @property
    def lists(self) -> bool:
        return self.spec.capabilities.lists

    @property
    def reads_back(self) -> bool:
        return self.spec.capabilities.reads_back


def build(spec: BackendSpec, base_url: str, settings: object, **target: object) -> Backend:
    """The backend as ``runs`` builds it: through its spec's factory, with its limits."""
    limits = spec.limits(max_attempts=2, backoff_initial_seconds=0.01)
    return spec.factory(Target(backend=spec.name, base_url=base_url,
                               settings=settings, **target),  # type: ignore[arg-type]
                        limits, FakeClock())


def memory_harness() -> Iterator[Harness]:
    backend = MemoryBackend(ITEMS)
    yield Harness(backend, lambda: set(backend.items), memory.SPEC)


def bloomreach_harness() -> Iterator[Harness]:
    emulator = Emulator(ITEMS, EmulatorSettings(bulk_requests_per_window=100,
                                                bulk_window_seconds=1))
    base_url = emulator.start()
    settings = BloomreachSettings(project_token="demo-project", catalog_id="demo-catalog",
                                  api_key_id=Secret("demo-key"), api_secret=Secret("demo-secret"))
    backend = build(bloomreach.SPEC, base_url, settings)
    yield Harness(backend, emulator.ids, bloomreach.SPEC)
    backend.close()
    emulator.stop()


def adobe_target_harness() -> Iterator[Harness]:
    from reconciler.emulator.adobe_target import AdobeTargetEmulator
    from reconciler.emulator.adobe_target import AdobeTargetSettings as EmulatorTarget

    ids = [i for i in ITEMS if i != "comma,id"] + ["a,b"]
    emulator = AdobeTargetEmulator({1: ids}, EmulatorTarget(requests_per_window=1000,
                                                            window_seconds=1))
    base_url = emulator.start()
    s = emulator.settings
    settings = adobe_target.AdobeTargetSettings(tenant=s.tenant, environment=1,
                                                api_key=Secret(s.api_key), token=Secret(s.token))
    backend = build(adobe_target.SPEC, base_url, settings)
    yield Harness(backend, lambda: emulator.ids(1), adobe_target.SPEC, unaddressable="a,b")
    backend.close()
    emulator.stop()


def adobe_classic_harness() -> Iterator[Harness]:
    from reconciler.emulator.adobe_classic import AdobeClassicEmulator

    ids = [i for i in ITEMS if i != "comma,id"] + ["a,b"]
    emulator = AdobeClassicEmulator(ids)
    base_url = emulator.start()
    s = emulator.settings
    settings = adobe_classic.AdobeClassicSettings(client=s.client,
                                                  client_token=Secret(s.client_token))
    backend = build(adobe_classic.SPEC, base_url, settings, ledger=True)
    yield Harness(backend, emulator.ids, adobe_classic.SPEC, unaddressable="a,b")
    backend.close()
    emulator.stop()


# One harness per backend: the registry test (tests/backends/test_registry.py) checks that
# every registered backend has one here.
HARNESSES: dict[str, Callable[[], Iterator[Harness]]] = {
    "memory": memory_harness,
    "bloomreach": bloomreach_harness,
    "adobe-target": adobe_target_harness,
    "adobe-classic": adobe_classic_harness,
}


@pytest.fixture(params=list(HARNESSES.values()), ids=list(HARNESSES))
def harness(request) -> Iterator[Harness]:
    yield from request.param()


def test_inventory_is_complete_and_exact(harness):
    if not harness.lists:
        with pytest.raises(FatalApiError, match="ledger"):
            harness.backend.inventory()
        return
    inventory = harness.backend.inventory()
    assert sorted(inventory.ids) == sorted(harness.remote_ids())
    assert inventory.complete and inventory.expected == len(harness.remote_ids())


def test_delete_batch_answers_per_item_in_order(harness):
    before = len(harness.remote_ids())
    ids = ["item-00001", "never-existed", "", "item-00002"]
    if not harness.per_item_answers:
        ids.remove("")  # a per-batch API cannot fail one id; empty ids never reach it
    results = harness.backend.delete_batch(ids)
    assert len(results) == len(ids)
    if harness.per_item_answers:
        assert [r.ok for r in results] == [True, True, False, True]
        assert "empty" in results[2].error
    else:
        assert all(r.ok for r in results)
    remaining = harness.remote_ids()
    assert "item-00001" not in remaining and "item-00002" not in remaining
    assert len(remaining) == before - 2


def test_awkward_ids_are_deleted_exactly(harness):
    before = harness.remote_ids()
    awkward = [i for i in ["00123", "NA", "ünïcødé", "with space", "comma,id", "a/b"]
               if i in before and i != harness.unaddressable
               and not any(s in i for s in harness.backend.address_rules.forbidden_substrings)]
    assert all(r.ok for r in harness.backend.delete_batch(awkward))
    assert harness.remote_ids() == before - set(awkward)


def test_unaddressable_ids_are_refused_before_sending(harness):
    before = harness.remote_ids()
    with pytest.raises(SkippableItem):
        harness.backend.delete_batch(["item-00003", harness.unaddressable])
    assert harness.remote_ids() == before


def test_read_back_and_restore(harness):
    harness.backend.delete_batch(["item-00004"])
    assert "item-00004" not in harness.remote_ids()
    if not harness.reads_back:
        with pytest.raises(FatalApiError, match="cannot read entities back"):
            harness.backend.read_back(["item-00005"])
        return
    present = harness.backend.read_back(["item-00004", "item-00005"])
    assert [r.item_id for r in present] == ["item-00005"]
    if not harness.can_restore:
        with pytest.raises(FatalApiError, match="restore is not supported"):
            harness.backend.restore([Record("item-00004", {"title": "Item 4"})])
        return
    assert present[0].properties == {"title": "Item 5"}
    results = harness.backend.restore([Record("item-00004", {"title": "Item 4"})])
    assert [r.ok for r in results] == [True]
    assert harness.backend.read_back(["item-00004"]) == [Record("item-00004", {"title": "Item 4"})]


def test_check_is_read_only(harness):
    before = harness.remote_ids()
    assert harness.backend.check()
    assert harness.remote_ids() == before


def test_batches_fit_the_documented_limits(harness):
    shape = harness.backend.batch_shape
    # URL-carried batches: the whole request line within 8,190 bytes less a margin.
    expected = (10_000, 10_000_000) if harness.per_item_answers else (1000, 8000)
    assert (shape.max_ids, shape.max_bytes) == expected


def test_purge_capability_matches_delete_all(harness):
    """A backend that declares ``purges`` empties the catalog; one that does not refuses
    the call itself too (the refusal before a run is ``registry.refuse_unsupported``)."""
    if not harness.spec.capabilities.purges:
        before = harness.remote_ids()
        with pytest.raises(FatalApiError):
            harness.backend.delete_all()
        assert harness.remote_ids() == before
        return
    harness.backend.delete_all()
    assert harness.remote_ids() == set()


def test_restore_capability_matches_restore(harness):
    """A backend that declares no ``restores`` refuses the call itself (and ``restore`` is
    refused before a run starts: ``registry.refuse_unsupported``)."""
    if harness.can_restore:
        return  # restoring is exercised by test_read_back_and_restore
    before = harness.remote_ids()
    with pytest.raises(FatalApiError):
        harness.backend.restore([Record("item-00004", {"title": "Item 4"})])
    assert harness.remote_ids() == before


def test_the_adapter_agrees_with_its_declaration(harness):
    """The flows read ``reads_back`` off the adapter; it must say what the spec declares."""
    assert harness.backend.reads_back == harness.spec.capabilities.reads_back
    assert harness.backend.lists_properties == harness.spec.capabilities.lists_properties


def test_a_listing_that_declares_properties_holds_what_read_back_gives(harness):
    """apply backs up from its listing instead of one GET per id when the backend declares
    ``lists_properties``: the listed records must then be the items as read back."""
    if not harness.spec.capabilities.lists_properties:
        return
    listed: dict[str, object] = {}
    harness.backend.inventory(lambda page, _total: listed.update(
        (r["item_id"], r["properties"]) for r in page))
    wanted = ["item-00005", "item-01999", "00123", "NA"]
    assert {r.item_id: dict(r.properties) for r in harness.backend.read_back(wanted)} == {
        i: listed[i] for i in wanted}
    assert listed["item-00005"] == {"title": "Item 5"}
    assert harness.backend.name == harness.spec.name
