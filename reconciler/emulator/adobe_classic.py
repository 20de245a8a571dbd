"""An emulator of Adobe Recommendations classic's ``/rest`` delete actions.

``GET /rest?action=entity.delete&client=&clientToken=&entityIds=a,b`` deletes those
entities; ``action=entity.deleteAll`` deletes every entity (counted, so a test can prove
it never happened). A wrong client or token answers 401. ``queue_faults(faults)``: the
next deletes get these whole answers instead (``{"status": 200, "body": ...}`` or
``"raw": "text"``), applied first when ``"apply": true``, as the other emulators' faults.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.emulator.server import Raw, ServedEmulator


@dataclass
class AdobeClassicSettings:
    client: str = "demo-client"
    client_token: str = "demo-client-token"


@dataclass
class AdobeClassicStats:
    delete_requests: int = 0
    delete_all: int = 0
    deleted: list[str] = field(default_factory=list)
    url_lengths: list[int] = field(default_factory=list)


class AdobeClassicEmulator(ServedEmulator):
    def __init__(self, entities: Iterable[str], settings: AdobeClassicSettings | None = None
                 ) -> None:
        self.settings = settings or AdobeClassicSettings()
        self.entities: set[str] = set(entities)
        self.stats = AdobeClassicStats()
        self.lock = threading.Lock()
        self.faults: deque[dict[str, Any]] = deque()

    def queue_faults(self, faults: Iterable[dict[str, Any]]) -> None:
        with self.lock:
            self.faults.extend(faults)

    def ids(self) -> set[str]:
        with self.lock:
            return set(self.entities)

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               headers: Mapping[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        if path != "/rest" or method != "GET":
            return 404, {"error": "not found"}, {}
        one = {k: v[0] for k, v in query.items()}
        if (one.get("client"), one.get("clientToken")) != (self.settings.client,
                                                           self.settings.client_token):
            return 401, {"error": "invalid client or clientToken"}, {}
        with self.lock:
            if one.get("action") == "entity.deleteAll":
                self.stats.delete_all += 1
                self.stats.deleted.extend(self.entities)
                self.entities.clear()
                return 200, {"message": "all entities deleted"}, {}
            if one.get("action") != "entity.delete":
                return 400, {"error": "unknown action"}, {}
            self.stats.delete_requests += 1
            self.stats.url_lengths.append(len(path) + 1 + sum(
                len(k) + len(v) + 2 for k, v in one.items()))
            ids = [i for i in one.get("entityIds", "").split(",") if i]
            if not ids:
                return 400, {"error": "entityIds is required"}, {}
            fault = self.faults.popleft() if self.faults else None
            if fault is not None and not fault.get("apply"):
                return self._faulty(fault)
            for item_id in ids:
                if item_id in self.entities:
                    self.entities.remove(item_id)
                    self.stats.deleted.append(item_id)
            if fault is not None:
                return self._faulty(fault)
            return 200, {"message": f"{len(ids)} entities deleted"}, {}

    @staticmethod
    def _faulty(fault: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        body = Raw(str(fault["raw"]).encode()) if "raw" in fault else fault.get("body")
        return int(fault.get("status", 200)), body, dict(fault.get("headers", {}))


def from_cli(items: Mapping[str, Any], args: Any) -> tuple[AdobeClassicEmulator, str]:
    """``reconciler emulator --api adobe-classic``: the emulator and its banner's facts."""
    emulator = AdobeClassicEmulator(list(items))
    s = emulator.settings
    return emulator, f"client={s.client} client_token={s.client_token} "
