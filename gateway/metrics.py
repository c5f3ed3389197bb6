"""Prometheus metrics and the ASGI middleware that stamps request ids and timings."""

from __future__ import annotations

import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "GRAPHQL_OPERATIONS",
    "HTTP_REQUESTS",
    "HTTP_SECONDS",
    "PREPARED_READS",
    "RequestContextMiddleware",
]

HTTP_REQUESTS = Counter(
    "gateway_http_requests_total", "HTTP requests by path and status", ["path", "status"]
)
HTTP_SECONDS = Histogram(
    "gateway_http_request_seconds",
    "HTTP request latency by path",
    ["path"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GRAPHQL_OPERATIONS = Counter(
    "gateway_graphql_operations_total", "GraphQL operations by read path", ["path"]
)
PREPARED_READS = Counter(
    "gateway_prepared_reads_total",
    "Compiled operations answered from a remembered bound plan, without GraphQL execution",
)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PATHS = {"/graphql", "/healthz", "/readyz", "/metrics"}


class RequestContextMiddleware:
    """Gives each request an id (X-Request-ID in and out) and records its status and latency."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode() for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        path = scope["path"] if scope["path"] in _PATHS else "other"
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
                HTTP_REQUESTS.labels(path, str(status)).inc()
                HTTP_SECONDS.labels(path).observe(time.perf_counter() - started)
