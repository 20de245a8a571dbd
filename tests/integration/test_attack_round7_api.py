"""Hostile round 7: APIs that answer strangely, under the default safety settings' spirit.

Each case runs a real ``reconciler`` process against an emulator on 127.0.0.1 with a
queued fault and asserts what the user sees: the first line, the contract's exit code, no
traceback, every planned id in exactly one final state, and nothing deleted that should
not be.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from reconciler.emulator.adobe_classic import AdobeClassicEmulator
from reconciler.emulator.adobe_target import AdobeTargetEmulator, AdobeTargetSettings
from tests.helpers import (
    FAST_LIMITS,
    PERMISSIVE_SAFETY,
    job_toml,
    run_reconciler,
    toml_value,
    write_config,
    write_csv,
)

pytestmark = pytest.mark.integration

ENTITIES = [f"ent-{n:03d}" for n in range(30)]
KEEP = ENTITIES[:20]  # the source; ent-020 .. ent-029 are to be deleted


@pytest.fixture
def adobe(serve):
    """An Adobe Target emulator (30 entities in environment 1) and a CLI config for it."""

    def start(tmp_path: Path, **settings) -> tuple[AdobeTargetEmulator, Path]:
        emulator = serve(AdobeTargetEmulator({1: ENTITIES}, AdobeTargetSettings(
            requests_per_window=1000, window_seconds=1.0, **settings)))
        source = write_csv(tmp_path / "exports" / "recs.csv", KEEP)
        s = emulator.settings
        target = {"backend": "adobe-target", "base_url": emulator.base_url,
                  "tenant": s.tenant, "environment": 1, "api_key": s.api_key,
                  "token": s.token}
        limits = {**FAST_LIMITS, "requests_per_window": 1000, "window_seconds": 1.0,
                  "max_attempts": 2, "max_batch_ids": 5, "list_page_size": 10}
        text = (f"[jobs.recs.source]\npath = {toml_value(source)}\n[jobs.recs.target]\n"
                + "".join(f"{k} = {toml_value(v)}\n" for k, v in target.items())
                + "[jobs.recs.limits]\n"
                + "".join(f"{k} = {toml_value(v)}\n" for k, v in limits.items())
                + "[jobs.recs.safety]\n"
                + "".join(f"{k} = {toml_value(v)}\n" for k, v in PERMISSIVE_SAFETY.items()))
        return emulator, write_config(tmp_path, text)

    return start


def report_of(result, tmp_path: Path, job: str) -> Path:
    line = next(x for x in result.stdout.splitlines() if x.startswith(f"{job}: report "))
    return tmp_path / line.removeprefix(f"{job}: report ")


def outcomes_of(folder: Path) -> dict[str, tuple[str, str]]:
    """Every item's (outcome, detail); each item exactly once."""
    with (folder / "outcomes.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    states = {r["item_id"]: (r["outcome"], r["detail"]) for r in rows}
    assert len(states) == len(rows), "an item has two final states"
    return states


def one_line(result) -> str:
    """The one line a user sees on stderr (the JSON log lines aside), no traceback."""
    assert "Traceback" not in result.stderr + result.stdout
    lines = [x for x in result.stderr.splitlines() if x and not x.startswith("{")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


# -- Adobe Target: deletes ---------------------------------------------------------------

@pytest.mark.parametrize("answer", [{"raw": ""}, {"body": {}}, {"body": {"id": "ent-020"}}],
                         ids=["empty-body", "empty-object", "an-entity"])
def test_an_adobe_delete_answered_without_its_operation_is_unknown_not_deleted(
        tmp_path, adobe, answer):
    """A 200 that is empty or not the delete's answer (a proxy or cache in front of the
    API swallowed the request) was recorded as deleted: the ids were still there."""
    emulator, config = adobe(tmp_path)
    emulator.queue_faults("delete", [answer])  # the first batch; not retried (unattributable)
    ran = run_reconciler("--config", config, "run", timeout=90)
    assert ran.returncode == 4, ran.stderr[-2000:]
    assert ran.stdout.splitlines()[0] == "recs: 5 deleted, 5 not deleted"
    assert "Traceback" not in ran.stderr + ran.stdout
    states = outcomes_of(report_of(ran, tmp_path, "recs"))
    first = ENTITIES[20:25]
    assert {i: states[i][0] for i in first} == dict.fromkeys(first, "unknown")
    assert states["ent-020"][1].startswith("delete entities: answer has no 'operation'")
    assert {states[i][0] for i in ENTITIES[25:]} == {"queued"}
    assert set(emulator.stats.deleted) == set(ENTITIES[25:])  # the swallowed five remain
    assert emulator.ids(1) == set(KEEP) | set(first)
    # The next run resumes the unknown ids against a fresh listing and deletes them.
    again = run_reconciler("--config", config, "run", timeout=90)
    assert again.returncode == 0, again.stderr[-2000:]
    assert emulator.ids(1) == set(KEEP)


def test_an_adobe_delete_applied_then_answered_502_is_unknown_then_resumed(tmp_path, adobe):
    """A 5xx page from a proxy after the delete was done: the batch is ``unknown`` (never
    claimed deleted), the run stops (exit 4) with the rest ``not_sent``; the next run
    resumes both (a resend of a gone id is answered as a delete, harmlessly) and nothing
    of the source is touched."""
    emulator, config = adobe(tmp_path)
    bad_gateway = {"status": 502, "raw": "<html><body>502 Bad Gateway</body></html>",
                   "apply": True}
    emulator.queue_faults("delete", [bad_gateway] * 2)
    ran = run_reconciler("--config", config, "run", timeout=90)
    assert ran.returncode == 4, ran.stderr[-2000:]
    assert ran.stdout.splitlines()[0] == "recs: 0 deleted, 10 not deleted"
    assert "Traceback" not in ran.stderr + ran.stdout
    states = outcomes_of(report_of(ran, tmp_path, "recs"))
    first = ENTITIES[20:25]
    assert {states[i][0] for i in first} == {"unknown"}
    assert states["ent-020"][1] == ("delete entities: HTTP 502: <html><body>502 Bad "
                                    "Gateway</body></html>")
    assert {states[i][0] for i in ENTITIES[25:]} == {"not_sent"}  # the run stopped
    assert emulator.ids(1) == set(KEEP) | set(ENTITIES[25:])  # the first five were applied
    again = run_reconciler("--config", config, "run", timeout=90)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.splitlines()[0].endswith(": 10 deleted, 0 not deleted")
    assert set(outcomes_of(report_of(again, tmp_path, "recs"))) == set(ENTITIES[20:])
    assert emulator.ids(1) == set(KEEP)


def test_an_adobe_delete_answered_404_fails_the_batch_and_the_next_listing_settles_it(
        tmp_path, adobe):
    """A 404 for a delete (an id already gone, say) after the rest was applied: the batch
    is ``failed`` with the server's words (not ``queued``: nothing says which ids went),
    and failed ids are not resumed blindly: the next run lists the catalog again, finds
    them gone and has nothing left to send for them."""
    emulator, config = adobe(tmp_path)
    emulator.queue_faults("delete", [{"status": 404, "body": {"error": "entity not found"},
                                      "apply": True}])
    ran = run_reconciler("--config", config, "run", timeout=90)
    assert ran.returncode == 4, ran.stderr[-2000:]
    assert ran.stdout.splitlines()[0] == "recs: 5 deleted, 5 not deleted"
    states = outcomes_of(report_of(ran, tmp_path, "recs"))
    first = ENTITIES[20:25]
    assert {i: states[i] for i in first} == dict.fromkeys(
        first, ("failed", "delete entities: HTTP 404: entity not found"))
    assert emulator.ids(1) == set(KEEP)
    requests = emulator.stats.delete_requests
    again = run_reconciler("--config", config, "run", timeout=90)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.splitlines()[0] == "recs: 0 deleted, 0 not deleted"
    assert emulator.stats.delete_requests == requests


# -- Adobe Target: listing ---------------------------------------------------------------

def test_an_adobe_search_that_ignores_start_ends_in_one_line_not_a_loop(tmp_path, adobe):
    """A server answering every ``start`` with the first (full) page: the listing paged
    forever (no total to stop at). Now a page of nothing new ends it: exit 1, one line,
    nothing deleted."""
    emulator, config = adobe(tmp_path, ignore_start=True)
    ran = run_reconciler("--config", config, "run", timeout=60)
    assert ran.returncode == 1, ran.stderr[-2000:]
    assert one_line(ran) == ("recs: catalogsearch: the page at start=11 repeats earlier pages "
                             "entirely (the server ignores 'start', or its pages loop): the "
                             "listing cannot be finished")
    assert emulator.stats.delete_requests == 0 and emulator.ids(1) == set(ENTITIES)
    assert emulator.stats.requests == 2


# -- Adobe Target: the backup's read-back ------------------------------------------------

@pytest.mark.parametrize(("answer", "why"), [
    ({"raw": ""}, "an empty item"),
    ({"body": {}}, "an empty item"),
    ({"body": {"id": "ent-007", "name": "Entity ent-007"}}, 'it is the item "ent-007"'),
    ({"body": ["ent-020"]}, 'not an object (["ent-020"])'),
], ids=["empty-body", "empty-object", "another-entity", "a-list"])
def test_an_adobe_read_back_that_is_not_the_entity_deletes_nothing(tmp_path, adobe, answer,
                                                                      why):
    """The backup reads each entity back before its delete: a 200 that is empty or another
    entity was backed up as the deleted entity's (empty, or someone else's properties)
    and the entity deleted; a re-import from that backup would restore the wrong thing."""
    emulator, config = adobe(tmp_path)
    emulator.queue_faults("get", [answer])
    ran = run_reconciler("--config", config, "run", timeout=90)
    assert ran.returncode == 1, ran.stderr[-2000:]
    assert one_line(ran) == (f"recs: get entity: the answer for 'ent-020' is unusable: {why}")
    assert emulator.stats.delete_requests == 0 and emulator.ids(1) == set(ENTITIES)


# -- Adobe Recommendations classic ---------------------------------------------------------

@pytest.mark.parametrize(("answer", "detail"), [
    ({"raw": "<!DOCTYPE html><html><body>Sign in to continue</body></html>"},
     "entity.delete: answered with an HTML page, not the API: '<!DOCTYPE html><html><body>"
     "Sign in to continue</body></html>'"),
    ({"body": {"error": "invalid clientToken"}},
     "entity.delete: answered with an error: invalid clientToken"),
    ({"raw": "<response><error>Entity service unavailable</error></response>"},
     "entity.delete: answered with an error: '<response><error>Entity service unavailable"
     "</error></response>'"),
], ids=["html-sign-in-page", "json-error", "xml-error"])
def test_a_classic_200_that_names_an_error_is_unknown_not_deleted(tmp_path, serve, answer,
                                                                   detail):
    """Classic documents no answer, so any 200 was taken as every id deleted, even a
    sign-in page from a proxy or a body that names an error: those ids were reported
    deleted and stayed."""
    emulator = serve(AdobeClassicEmulator(ENTITIES))
    source = write_csv(tmp_path / "exports" / "recs.csv", KEEP)
    export = write_csv(tmp_path / "exports" / "catalog.csv", ENTITIES)
    s = emulator.settings
    target = {"backend": "adobe-classic", "base_url": emulator.base_url, "client": s.client,
              "client_token": s.client_token}
    limits = {**FAST_LIMITS, "requests_per_window": 1000, "window_seconds": 1.0,
              "max_attempts": 2, "max_batch_ids": 5}
    config = write_config(tmp_path, (
        f"[jobs.recs.source]\npath = {toml_value(source)}\n[jobs.recs.target]\n"
        + "".join(f"{k} = {toml_value(v)}\n" for k, v in target.items())
        + f"[jobs.recs.target.inventory]\npath = {toml_value(export)}\n[jobs.recs.limits]\n"
        + "".join(f"{k} = {toml_value(v)}\n" for k, v in limits.items())
        + "[jobs.recs.safety]\n"
        + "".join(f"{k} = {toml_value(v)}\n" for k, v in PERMISSIVE_SAFETY.items())))
    emulator.queue_faults([answer])
    ran = run_reconciler("--config", config, "run", timeout=90)
    assert ran.returncode == 4, ran.stderr[-2000:]
    assert ran.stdout.splitlines()[0] == "recs: 5 deleted, 5 not deleted"
    assert "Traceback" not in ran.stderr + ran.stdout
    states = outcomes_of(report_of(ran, tmp_path, "recs"))
    first = ENTITIES[20:25]
    assert {i: states[i] for i in first} == dict.fromkeys(first, ("unknown", detail))
    assert emulator.ids() == set(KEEP) | set(first)  # the answered-for five are still there
    assert emulator.stats.delete_all == 0


# -- Bloomreach ----------------------------------------------------------------------------

@pytest.fixture
def bloomreach(tmp_path, start_emulator):
    """60 items, the source holds the first 40; 5 ids a batch, 2 attempts a request."""

    def start(inventory: bool = False, **settings) -> tuple[object, Path, dict]:
        items = {f"sku-{n:03d}": {"title": f"Item {n}"} for n in range(60)}
        emulator = start_emulator(items, **settings)
        source = write_csv(tmp_path / "exports" / "products.csv", list(items)[:40])
        remote = write_csv(tmp_path / "exports" / "remote.csv", list(items)) if inventory \
            else None
        config = write_config(tmp_path, job_toml(
            "products", emulator.base_url, source, emulator=emulator, inventory=remote,
            limits={"max_attempts": 2, "max_batch_ids": 5}))
        return emulator, config, items

    return start


@pytest.mark.parametrize(("answer", "why"), [
    ({"body": {"success": True, "data": None}}, "not an object (null)"),
    ({"body": {"success": True, "data": {"item_id": "sku-040", "properties": "Item 40"}}},
     'properties are not an object ("Item 40")'),
    ({"body": {"success": False, "error": "Item not found"}},
     "it says success false (Item not found)"),
    ({"body": {"success": True}}, "an empty item"),
    ({"body": {"success": True, "data": {"item_id": "SKU-040", "properties": {"t": 1}}}},
     'it is the item "SKU-040"'),
], ids=["data-null", "properties-a-string", "success-false", "no-data", "another-item"])
def test_a_bloomreach_read_back_that_is_not_the_item_deletes_nothing(bloomreach, answer, why):
    """With an inventory export the backup reads each item back: a 200 whose item is null
    or malformed was a traceback; one that says success false, holds nothing or another
    item was backed up as an empty (or someone else's) item and the item deleted."""
    emulator, config, items = bloomreach(inventory=True)
    emulator.queue_faults("list", [answer])  # get-item answers share the list route's faults
    ran = run_reconciler("--config", config, "run", timeout=90)
    assert ran.returncode == 1, ran.stderr[-2000:]
    assert one_line(ran) == f"products: get item: the answer for 'sku-040' is unusable: {why}"
    assert emulator.stats.bulk_delete_requests == 0 and emulator.ids() == set(items)


def test_listed_entries_of_another_catalog_are_never_deleted(tmp_path, bloomreach):
    """A listing (a proxy's or cache's mix-up) that holds another catalog's entries: they
    were planned and reported deleted from this catalog, where they never were."""
    emulator, config, items = bloomreach()
    ours = [{"catalog_id": emulator.settings.catalog_id, "item_id": i, "properties": p}
            for i, p in items.items()]
    foreign = [{"catalog_id": "other-catalog", "item_id": f"theirs-{n}", "properties": {}}
               for n in range(3)]
    page = {"success": True, "data": ours + foreign, "matched": 63, "total": 63,
            "limit": 1001, "skip": 0, "matched_limited": False}
    emulator.queue_faults("list", [{"body": page}] * 3)
    ran = run_reconciler("--config", config, "run", timeout=90)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.splitlines()[0] == "products: 20 deleted, 0 not deleted"
    folder = report_of(ran, tmp_path, "products")
    states = outcomes_of(folder)
    assert not [i for i in states if i.startswith("theirs-")]
    assert set(emulator.stats.deleted) == set(list(items)[40:])
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["inventory_complete"] is False
    assert summary["inventory"]["detail"] == ("prefix '': 60 of 63; 3 listed entries skipped: "
                                              'entry of another catalog ("other-catalog")')


def test_a_trickled_delete_answer_is_abandoned_at_timeout_seconds(tmp_path, start_emulator):
    """A proxy trickling the answer a byte every 0.2 s never trips httpx's read timeout
    (1 s), which bounds each read, not the answer: the run waited ~30 s an attempt. Now the
    whole answer must arrive within ``timeout_seconds``; the batch (applied, its answer
    never in) is ``unknown`` and the run stops with exit 4."""
    items = {f"sku-{n:03d}": {"title": f"Item {n}"} for n in range(60)}
    emulator = start_emulator(items, trickle_seconds=0.2)
    source = write_csv(tmp_path / "exports" / "products.csv", list(items)[:40])
    config = write_config(tmp_path, job_toml(
        "products", emulator.base_url, source, emulator=emulator,
        limits={"max_attempts": 2, "max_batch_ids": 5, "timeout_seconds": 1}))
    emulator.queue_faults("bulk", ["trickle", "trickle"])
    ran = run_reconciler("--config", config, "run", timeout=60)  # ~70 s without the limit
    assert ran.returncode == 4, ran.stderr[-2000:]
    assert ran.stdout.splitlines()[0] == "products: 0 deleted, 20 not deleted"
    assert "Traceback" not in ran.stderr + ran.stdout
    states = outcomes_of(report_of(ran, tmp_path, "products"))
    first = list(items)[40:45]
    assert {i: states[i] for i in first} == dict.fromkeys(first, (
        "unknown", "bulk delete: the answer took longer than 1 s to arrive in full "
                   "(timeout_seconds)"))
    assert {states[i][0] for i in list(items)[45:]} == {"not_sent"}
    assert set(emulator.stats.deleted) == set(first)  # applied; nothing else touched


GONE = [f"sku-{n:03d}" for n in range(40, 60)]  # the ids the source no longer holds
FIRST = GONE[:5]  # the first batch
LOCKED = {"success": False, "queued": False, "errors": {"_global": ["Validation error: locked"]}}
PAST = "Sun, 01 Nov 2026 12:00:00 GMT"
ANSWERS = [
    # (name, bulk faults, exit code, first line, the first batch's outcomes, its detail)
    ("207-multi-status", [{"status": 207, "body": [{"success": True, "queued": True}] * 4
                           + [LOCKED]}],
     4, "products: 19 deleted, 1 not deleted", ["queued"] * 4 + ["failed"],
     "_global: Validation error: locked"),
    ("echoes-the-request", [{"body": FIRST}], 4, "products: 15 deleted, 5 not deleted",
     ["unknown"] * 5, 'bulk delete: unexpected entry "sku-040"'),
    ("success-for-an-id-not-sent", [{"body": [{"success": True, "queued": True}] * 6}], 4,
     "products: 15 deleted, 5 not deleted", ["unknown"] * 5,
     "bulk delete: sent 5 ids, answer has 6 entries"),
    ("empty-200", [{"raw": ""}] * 2, 4, "products: 0 deleted, 20 not deleted",
     ["unknown"] * 5, "malformed JSON in the answer: ''"),
    ("proxy-html-once", [{"raw": "<html><body>Service temporarily unavailable</body></html>"}],
     0, "products: 20 deleted, 0 not deleted", ["queued"] * 5, ""),
    ("404-whole-batch", [{"status": 404, "body": {"success": False, "error": "Not found"}}],
     4, "products: 15 deleted, 5 not deleted", ["failed"] * 5,
     "bulk delete: HTTP 404: Not found"),
    ("429-retry-after-negative", [{"status": 429, "headers": {"Retry-After": "-5"}}], 0,
     "products: 20 deleted, 0 not deleted", ["queued"] * 5, ""),
    ("429-retry-after-past-date", [{"status": 429, "headers": {"Retry-After": PAST}}], 0,
     "products: 20 deleted, 0 not deleted", ["queued"] * 5, ""),
    ("429-retry-after-infinite", [{"status": 429, "headers": {"Retry-After": "1e400"}}], 0,
     "products: 20 deleted, 0 not deleted", ["queued"] * 5, ""),
    ("429-without-retry-after", [{"status": 429, "body": {"error": "Rate limit"}}] * 1, 0,
     "products: 20 deleted, 0 not deleted", ["queued"] * 5, ""),
]


@pytest.mark.parametrize(("faults", "code", "first_line", "outcomes", "detail"),
                         [case[1:] for case in ANSWERS], ids=[case[0] for case in ANSWERS])
def test_strange_bulk_delete_answers_give_each_id_its_true_outcome(
        tmp_path, bloomreach, faults, code, first_line, outcomes, detail):
    """Answers a bulk delete may get from the API or what stands in front of it: each id
    ends in the outcome the answer supports (``queued`` only on its own success entry),
    the run says so in its first line and exit code, and the source is never touched."""
    emulator, config, items = bloomreach()
    emulator.queue_faults("bulk", faults)
    ran = run_reconciler("--config", config, "run", timeout=90)
    assert ran.returncode == code, ran.stderr[-2000:]
    assert ran.stdout.splitlines()[0] == first_line
    assert "Traceback" not in ran.stderr + ran.stdout
    folder = report_of(ran, tmp_path, "products")
    states = outcomes_of(folder)
    assert set(states) == set(GONE)
    assert [states[i][0] for i in FIRST] == outcomes
    assert states[FIRST[-1]][1] == detail
    assert set(emulator.stats.deleted) <= set(GONE)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["deleted"] == sum(1 for s, _ in states.values() if s == "queued")
    if code == 0 and "429" in str(faults):
        assert summary["throttled"] == 1 and emulator.ids() == set(items) - set(GONE)


def test_ids_the_api_lists_escaped_are_near_matches_of_their_plain_source_ids(
        tmp_path, start_emulator):
    """The API (or a proxy) lists ids URL- or HTML-escaped: ``gift%20card`` for the source's
    ``gift card``. They were planned as deletes (a server that decodes them deletes the live
    item; one that does not reports a delete that never happened, every run). Now they are
    ``near_match`` skips, as the other direction (an escaped source id) already was."""
    plain = {"gift card": "gift%20card", "bread+butter": "bread%2Bbutter",
             "at&t-sim": "at&amp;t-sim", "café-1": "caf%C3%A9-1", "kit pro": "kit+pro"}
    items = {f"sku-{n:03d}": {"title": f"Item {n}"} for n in range(60)}
    items.update({listed: {"title": f"Listed {listed}"} for listed in plain.values()})
    emulator = start_emulator(items)
    source = write_csv(tmp_path / "exports" / "products.csv",
                       [f"sku-{n:03d}" for n in range(40)] + list(plain))
    config = write_config(tmp_path, job_toml("products", emulator.base_url, source,
                                             emulator=emulator))
    refused = run_reconciler("--config", config, "run", timeout=90)
    assert refused.returncode == 3, refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr + refused.stdout
    assert next(x for x in refused.stderr.splitlines() if not x.startswith("{")) == (
        "products: near_match: 5 ids to delete equal a source id but for their spelling "
        "(encoding 5); they are skipped as near_match; max_near_match_share is 0.10% of 45 "
        "source ids (was the export re-encoded or read as numbers?)")
    assert emulator.stats.bulk_delete_requests == 0
    # Told to expect them, the run skips the five and deletes the twenty that are gone.
    config = write_config(tmp_path, job_toml(
        "products", emulator.base_url, source, emulator=emulator,
        safety={**PERMISSIVE_SAFETY, "max_near_match_share": 0.5}))
    ran = run_reconciler("--config", config, "run", timeout=90)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.splitlines()[0] == "products: 20 deleted, 0 not deleted"
    folder = report_of(ran, tmp_path, "products")
    states = outcomes_of(folder)
    assert {states[i][0] for i in plain.values()} == {"skipped"}
    with (folder / "skipped.csv").open(encoding="utf-8") as f:
        skipped = {r["item_id"]: r["reason"] for r in csv.DictReader(f)}
    assert skipped == dict.fromkeys(plain.values(), "near_match")
    assert set(emulator.stats.deleted) == {f"sku-{n:03d}" for n in range(40, 60)}


def test_a_cache_answering_the_descending_page_with_the_ascending_one_deletes_only_listed(
        tmp_path, start_emulator):
    """A cache in front of the API that ignores ``order`` repeats the first page for the
    descending one: the walk sees the order contradicted, deletes only ids it really
    listed and absent from the source, and says the inventory is incomplete."""
    items = {f"sku-{n:05d}": {"title": f"Item {n}"} for n in range(1500)}
    emulator = start_emulator(items)
    ids = sorted(items)
    keep = [i for n, i in enumerate(ids) if n % 15]
    source = write_csv(tmp_path / "exports" / "products.csv", keep)
    config = write_config(tmp_path, job_toml("products", emulator.base_url, source,
                                             emulator=emulator))
    first = {"success": True, "matched": 1500, "total": 1500, "limit": 1001, "skip": 0,
             "matched_limited": False,
             "data": [{"catalog_id": emulator.settings.catalog_id, "item_id": i,
                       "properties": items[i]} for i in ids[:1001]]}
    emulator.queue_faults("list", [{"body": first}, {"body": first}])
    ran = run_reconciler("--config", config, "run", timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.splitlines()[0] == "products: 67 deleted, 0 not deleted"
    assert set(emulator.stats.deleted) == set(ids[:1001]) - set(keep)
    summary = json.loads((report_of(ran, tmp_path, "products") / "summary.json").read_text())
    assert summary["inventory_complete"] is False
    assert summary["inventory"]["detail"] == "prefix '': 1001 of 1500"
    verdicts = {a["name"]: a["status"] for a in summary["assumptions"]}
    assert verdicts["item_id_order_is_codepoint"] == "contradicted"
