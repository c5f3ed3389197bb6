"""Prometheus metrics of the gateway and the /metrics endpoint."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "GRAPHQL_OPERATIONS",
    "HTTP_REQUESTS",
    "HTTP_SECONDS",
    "PREPARED_READS",
    "metrics",
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


async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
