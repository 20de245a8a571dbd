"""The HTTP plumbing every emulator shares: a threaded stdlib server speaking HTTP/1.1.

An emulator subclasses ``ServedEmulator`` and implements ``handle(method, path, query,
headers, body) -> (status, payload, headers)``; the payload is sent as JSON, or as is
when it is ``Raw`` bytes (to emulate a truncated answer). Raising ``ConnectionResetError``
drops the connection without an answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, Any, dict[str, str]]

# How often a background server looks for stop(): shutdown() waits up to this long (the
# standard library's 0.5 s made every test that stops an emulator half a second longer).
SHUTDOWN_POLL_SECONDS = 0.05


class ServedEmulator:
    """Start, stop and address an emulator on a socket (127.0.0.1 and a free port by default)."""

    _server: _Server | None = None

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               headers: Mapping[str, str], body: bytes) -> Answer:
        raise NotImplementedError

    def bind(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen without serving yet (a banner printed after this is a readiness signal)."""
        self._server = _Server((host, port), _Handler, self)
        return self.base_url

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread; returns the base URL."""
        self.bind(host, port)
        assert self._server is not None
        threading.Thread(target=self._server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,),
                         daemon=True).start()
        return self.base_url

    def serve_forever(self) -> None:
        assert self._server is not None, "bind() first"
        self._server.serve_forever()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Raw(bytes):
    """A body sent as is (for emulating truncated JSON)."""


class Trickle(Raw):
    """A body sent one byte every ``interval`` seconds (a proxy trickling an answer, each
    byte inside the client's read timeout); stops when the client hangs up."""

    interval: float = 0.1


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type,
                 emulator: ServedEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes: with Nagle's algorithm the body waits
    # for the client's delayed ACK of the headers (40 ms a small answer on Linux).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests and the demo read stats, not access logs

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, payload, headers = self.server.emulator.handle(
                self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                {k.lower(): v for k, v in self.headers.items()}, body,
            )
        except ConnectionResetError:
            self.close_connection = True
            self.connection.close()
            return
        data = bytes(payload) if isinstance(payload, Raw) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if isinstance(payload, Trickle):
                for offset in range(len(data)):
                    self.wfile.write(data[offset:offset + 1])
                    self.wfile.flush()
                    time.sleep(payload.interval)
            else:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client is gone (killed, or timed out)

    do_GET = do_DELETE = do_PUT = do_POST = _dispatch
