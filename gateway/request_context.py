"""First in the pipeline: a request id (X-Request-ID in and out), status and latency metrics."""

from __future__ import annotations

import random
import re
import time
from functools import cache

from prometheus_client.metrics import Counter as CounterChild
from prometheus_client.metrics import Histogram as HistogramChild
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.groups import ASGI_SEND
from gateway.metrics import HTTP_REQUESTS, HTTP_SECONDS
from gateway.pipeline import header, state
from gateway.sse import EVENT_STREAM_PATH, wants_event_stream

__all__ = ["RequestContextMiddleware", "request_id_for", "requests_series", "seconds_series"]

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PATHS = {"/graphql", "/healthz", "/readyz", "/metrics"}
_random_bits = random.getrandbits


def request_id_for(incoming: str | None) -> str:
    """The client's X-Request-ID when it is safe to echo and log, else a new one.

    A new id is 128 random bits as 32 hex digits, like uuid4().hex, from the `random` module: an
    id names a request in logs and is no secret, and uuid4's os.urandom system call was ~2 % of
    a small compiled read's CPU. `random` reseeds in a forked child, so workers do not repeat.
    """
    if incoming is not None and _SAFE_ID.match(incoming):
        return incoming
    return f"{_random_bits(128):032x}"


@cache
def requests_series(path: str, status: int) -> CounterChild:
    """The (path, status) series; `labels` costs a lock and a tuple per call, this a lookup."""
    return HTTP_REQUESTS.labels(path, str(status))


@cache
def seconds_series(path: str) -> HistogramChild:
    """The latency series of `path` (one lookup, as requests_series)."""
    return HTTP_SECONDS.labels(path)


class RequestContextMiddleware:
    """Gives each request an id (X-Request-ID in and out) and records its status and latency."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(header(scope, b"x-request-id"))
        state(scope)["request_id"] = request_id
        if scope["type"] == "websocket":
            # the server's own send: fan-out groups write to its transport (gateway/groups.py)
            state(scope)[ASGI_SEND] = send
        path = scope["path"] if scope["path"] in _PATHS else "other"
        if wants_event_stream(scope):  # a stream's duration is not a request's latency
            path = EVENT_STREAM_PATH
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                requests_series(path, status).inc()
                seconds_series(path).observe(time.perf_counter() - started)
