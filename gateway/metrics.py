"""Prometheus metrics of the gateway and the /metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from drivers.alerts import outbox_totals
from drivers.breakers import open_breakers_by_name

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "ALERT_OUTBOX_FAILED",
    "ALERT_OUTBOX_OLDEST_PENDING",
    "ALERT_OUTBOX_PENDING",
    "BREAKERS_OPEN",
    "ERROR_CODE_ATTRIBUTE",
    "GRAPHQL_ERRORS",
    "GRAPHQL_OPERATIONS",
    "GRAPHQL_ROOT_FIELDS",
    "HTTP_REQUESTS",
    "HTTP_SECONDS",
    "PREPARED_READS",
    "PREPARED_WRITES",
    "READ_FAST_LANE",
    "WRITE_FAST_LANE",
    "count_errors",
    "count_operation",
    "metrics",
]

log = logging.getLogger("gateway.metrics")

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
GRAPHQL_ROOT_FIELDS = Counter(
    "gateway_graphql_root_fields_total",
    "Root fields of executed GraphQL operations by the read path that answered each",
    ["path"],
)
PREPARED_READS = Counter(
    "gateway_prepared_reads_total",
    "Compiled operations answered from a remembered bound plan, without GraphQL execution",
)
READ_FAST_LANE = Counter(
    "gateway_read_fast_lane_total",
    "Of those, answered from the exact body's remembered key, before the pipeline's steps",
)
WRITE_FAST_LANE = Counter(
    "gateway_write_fast_lane_total",
    "Mutations run from their plan by the fast lane, before the pipeline's steps",
)
PREPARED_WRITES = Counter(
    "gateway_prepared_writes_total",
    "Mutations run from their per-document plan, without Strawberry's view (MUTATION_FAST_PATH)",
)
GRAPHQL_ERRORS = Counter(
    "gateway_graphql_errors_total", "Errors in /graphql responses by extensions.code", ["code"]
)
# Read from the database at scrape time: every process shows the same numbers (take max()).
ALERT_OUTBOX_PENDING = Gauge(
    "gateway_alert_outbox_pending", "Alert outbox rows waiting for delivery (all tenants)"
)
ALERT_OUTBOX_FAILED = Gauge(
    "gateway_alert_outbox_failed", "Alert outbox dead letters: delivery given up (all tenants)"
)
ALERT_OUTBOX_OLDEST_PENDING = Gauge(
    "gateway_alert_outbox_oldest_pending_seconds",
    "Age of the oldest alert waiting for delivery; 0 when none waits",
)
BREAKERS_OPEN = Gauge(
    "gateway_breakers_open", "Tenants whose circuit breaker of this name is open", ["name"]
)

# The request span's attribute for the error code (gateway/tracing.py names the others).
ERROR_CODE_ATTRIBUTE = "gateway.error_code"
# Codes that mean the gateway or its database failed, not the caller.
SERVER_FAULTS = frozenset({"INTERNAL", "SERVICE_UNAVAILABLE"})
# A scrape never waits longer than this for the database gauges; it then serves the last values.
DATABASE_GAUGES_TIMEOUT = 2.0


def count_operation(data: object) -> str:
    """Count an executed operation and its root fields by read path; return the operation's.

    A compiled root's value is PostgreSQL's JSON text, handed on as an orjson.Fragment: an
    operation is `compiled` when every root is, `mixed` when some are, else `resolver`. Roots
    are counted as far as `data` shows them (none when it is null).
    """
    values = data.values() if isinstance(data, dict) else ()
    compiled = sum(1 for v in values if isinstance(v, orjson.Fragment))
    resolved = len(values) - compiled
    path = "resolver" if not compiled else "mixed" if resolved else "compiled"
    GRAPHQL_OPERATIONS.labels(path).inc()
    if compiled:
        GRAPHQL_ROOT_FIELDS.labels("compiled").inc(compiled)
    if resolved:
        GRAPHQL_ROOT_FIELDS.labels("resolver").inc(resolved)
    return path


def count_errors(codes: Iterable[str]) -> None:
    """Count a response's errors by code; the first code also goes on the request's span.

    The span's status is ERROR when any error is the server's fault (SERVER_FAULTS).

    Called where /graphql answers pass with errors: the view's process_result and the pipeline's
    error_response. Without tracing the current span is the no-op one and records nothing.
    """
    seen: list[str] = []
    for code in codes:
        GRAPHQL_ERRORS.labels(code).inc()
        seen.append(code)
    if seen:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(ERROR_CODE_ATTRIBUTE, seen[0])
            if not SERVER_FAULTS.isdisjoint(seen):  # a fault of ours even when HTTP says 200
                span.set_status(Status(StatusCode.ERROR))


async def _refresh_database_gauges(engine: AsyncEngine) -> None:
    """Outbox depth, dead letters and open breakers, as the database has them now.

    A database that does not answer leaves the last values (and a warning in the log): the
    scrape itself still answers, and /readyz reports the database.
    """
    try:
        async with asyncio.timeout(DATABASE_GAUGES_TIMEOUT), engine.connect() as conn:
            outbox = await outbox_totals(conn)
            breakers = await open_breakers_by_name(conn)
    except Exception as exc:
        log.warning("metrics: database gauges not refreshed: %s", exc)
        return
    ALERT_OUTBOX_PENDING.set(outbox.pending)
    ALERT_OUTBOX_FAILED.set(outbox.failed)
    oldest = outbox.oldest_pending_at
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
    ALERT_OUTBOX_OLDEST_PENDING.set(max(age, 0.0))
    for name, count in breakers.items():
        BREAKERS_OPEN.labels(name).set(count)


async def metrics(request: Request) -> Response:
    """Prometheus text format, with the database gauges refreshed first."""
    await _refresh_database_gauges(request.state.runtime.db.primary)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
