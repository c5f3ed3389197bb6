"""A real HTTP server on 127.0.0.1 standing in for Alertmanager, scripted per request."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeAlertmanager:
    """Answers POSTs from a script of (status, body, delay) steps; the last step repeats.

    Every request's path and JSON body are recorded, including ones the client gave up on.
    """

    def __init__(self, script: list[tuple[int, str, float]]) -> None:
        self._script = deque(script)
        self._last = script[-1]
        self.received: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                with fake._lock:
                    fake.received.append((self.path, body))
                    step = fake._script.popleft() if fake._script else fake._last
                status, text, delay = step
                if delay:
                    time.sleep(delay)
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "text/plain")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client timed out and went away

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False  # do not wait for a handler still sleeping out a timeout
            request_queue_size = 64  # concurrent batches open many connections at once

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeAlertmanager:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
