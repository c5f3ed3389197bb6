"""OpenTelemetry traces: one server span per /graphql request, database spans below it.

The app runs with an in-memory exporter (create_app's `span_exporter`); the OTLP test sends to a
small OTLP/HTTP receiver on loopback.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from gateway.settings import Settings
from gateway.tracing import operation_of
from tests.helpers import JWT_SECRET, serve, token

LIST = "query OpenIncidents { incidents(first: 5) { totalCount nodes { id title } } }"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced(
    settings: Settings, exporter: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with compiled reads on and every span kept in memory."""
    on = settings.model_copy(update={"gateway_compiled_reads": True})
    async with serve(on, span_exporter=exporter) as http:
        exporter.clear()  # start-up's own statements (LISTEN, ...) are not a request's
        yield http


async def _post(
    client: httpx.AsyncClient, query: str, *, tenant: str = "t1", **headers: str
) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": query},
        headers={"authorization": f"Bearer {token(tenant, 'VIEWER')}", **headers},
    )


def _server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


def _children(exporter: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        s
        for s in exporter.get_finished_spans()
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


async def test_a_request_is_one_server_span_with_operation_tenant_and_read_path(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    # when tenant "acme" runs a named compiled read, then repeats it (the repeated-read shortcut)
    first = await _post(traced, LIST, tenant="acme")
    again = await _post(traced, LIST, tenant="acme")
    assert [first.status_code, again.status_code] == [200, 200]
    assert first.json() == again.json() == {"data": {"incidents": {"totalCount": 0, "nodes": []}}}
    # then each request is exactly one server span, described the same way on both paths
    spans = _server_spans(exporter)
    assert len(spans) == 2
    for span in spans:
        assert span.name == "query OpenIncidents"
        assert dict(span.attributes or {}) == {
            "http.request.method": "POST",
            "url.path": "/graphql",
            "http.response.status_code": 200,
            "graphql.operation.type": "query",
            "graphql.operation.name": "OpenIncidents",
            "gateway.tenant": "acme",
            "gateway.read_path": "compiled",
        }
        assert span.status.status_code is StatusCode.UNSET
        assert span.resource.attributes["service.name"] == "governance-gateway"
        # and the statement that answered it is a database span below it, in the same trace
        statements = [s for s in _children(exporter, span) if s.kind is SpanKind.CLIENT]
        assert statements, "no database span below the request span"
        for db in statements:
            assert db.context is not None and span.context is not None
            assert db.context.trace_id == span.context.trace_id
            assert (db.attributes or {})["db.system"] == "postgresql"
            assert "db.statement.parameters" not in (db.attributes or {})  # no values recorded
        assert any(
            "incidents" in str((db.attributes or {}).get("db.statement")) for db in statements
        )


async def test_the_resolver_path_and_its_engine_statements_are_traced(
    settings: Settings, exporter: InMemorySpanExporter
) -> None:
    # given the app with compiled reads off (every read runs the resolvers on SQLAlchemy)
    async with serve(settings, span_exporter=exporter) as http:
        exporter.clear()
        answer = await _post(http, "{ incidents(first: 1) { totalCount } }")
    assert answer.json() == {"data": {"incidents": {"totalCount": 0}}}
    [span] = _server_spans(exporter)
    # then the anonymous operation names only its type, and the read path is the resolvers'
    assert span.name == "POST /graphql"
    assert (span.attributes or {})["graphql.operation.type"] == "query"
    assert "graphql.operation.name" not in (span.attributes or {})
    assert (span.attributes or {})["gateway.read_path"] == "resolver"
    statements = [str((s.attributes or {}).get("db.statement")) for s in _children(exporter, span)]
    assert any("incidents" in sql for sql in statements), statements


async def test_an_incoming_traceparent_makes_the_request_part_of_the_callers_trace(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    # given a caller's trace and span id
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    # when it sends a W3C traceparent with its request
    answer = await _post(traced, LIST, traceparent=f"00-{trace_id}-{parent_id}-01")
    assert answer.status_code == 200
    # then the request's span continues that trace, as a child of the caller's span
    [span] = _server_spans(exporter)
    assert span.context is not None and span.parent is not None
    assert span.context.trace_id == int(trace_id, 16)
    assert span.parent.span_id == int(parent_id, 16)
    assert span.parent.is_remote
    # and so do its database spans
    assert {s.context.trace_id for s in _children(exporter, span) if s.context} == {
        int(trace_id, 16)
    }


async def test_a_malformed_traceparent_starts_a_new_trace(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    answer = await _post(traced, LIST, traceparent="00-not-a-trace-01")
    assert answer.status_code == 200
    [span] = _server_spans(exporter)
    assert span.parent is None


async def test_errors_put_their_code_on_the_span_and_in_the_error_counter(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    def errors(code: str) -> float:
        value = REGISTRY.get_sample_value("gateway_graphql_errors_total", {"code": code})
        return value or 0.0

    before = errors("UNAUTHENTICATED"), errors("BAD_USER_INPUT")
    # when a request is refused by the pipeline (no credentials), and one fails validation
    refused = await traced.post("/graphql", json={"query": LIST})
    invalid = await _post(traced, "query Broken { incidents(first: 1) { noSuchField } }")
    assert refused.status_code == 401
    assert [e["extensions"]["code"] for e in refused.json()["errors"]] == ["UNAUTHENTICATED"]
    assert [e["extensions"]["code"] for e in invalid.json()["errors"]] == ["BAD_USER_INPUT"]
    # then each span names its code; the refused one has no tenant and no read path
    by_name = {s.name: dict(s.attributes or {}) for s in _server_spans(exporter)}
    assert by_name["query OpenIncidents"]["gateway.error_code"] == "UNAUTHENTICATED"
    assert by_name["query OpenIncidents"]["http.response.status_code"] == 401
    assert "gateway.tenant" not in by_name["query OpenIncidents"]
    assert "gateway.read_path" not in by_name["query OpenIncidents"]
    assert by_name["query Broken"]["gateway.error_code"] == "BAD_USER_INPUT"
    assert by_name["query Broken"]["gateway.tenant"] == "t1"
    # a caller's mistake is not a failed request in the trace
    assert {s.status.status_code for s in _server_spans(exporter)} == {StatusCode.UNSET}
    # and the counter went up once per error, by code
    assert (errors("UNAUTHENTICATED"), errors("BAD_USER_INPUT")) == (before[0] + 1, before[1] + 1)


async def test_a_database_outage_marks_the_span_as_failed(exporter: InMemorySpanExporter) -> None:
    # given a traced gateway whose database refuses connections (JWTs need no database)
    down = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        migrate_on_start=False,
        jwt_secret=JWT_SECRET,
        gateway_background_jobs=False,
        gateway_compiled_reads=False,
    )
    async with serve(down, span_exporter=exporter) as http:
        answer = await _post(http, LIST)
    # then the answer is a 200 with SERVICE_UNAVAILABLE, and the span says the request failed
    assert answer.status_code == 200
    assert [e["extensions"]["code"] for e in answer.json()["errors"]] == ["SERVICE_UNAVAILABLE"]
    [span] = _server_spans(exporter)
    assert (span.attributes or {})["gateway.error_code"] == "SERVICE_UNAVAILABLE"
    assert span.status.status_code is StatusCode.ERROR


async def test_only_graphql_requests_are_traced(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    # /readyz reads the database outside any /graphql request: neither it nor its statements
    # become traces (nor do the jobs' statements or the LISTEN ping)
    assert (await traced.get("/healthz")).status_code == 200
    assert (await traced.get("/readyz")).status_code == 200
    assert exporter.get_finished_spans() == ()


async def test_tracing_off_installs_nothing_and_a_traced_app_uninstalls_on_stop(
    settings: Settings, exporter: InMemorySpanExporter
) -> None:
    def instrumented() -> bool:
        return hasattr(asyncpg.connection.Connection.fetchval, "__wrapped__")

    # given the default (OTEL_TRACES=off): asyncpg is left as it is
    assert Settings().otel_traces == "off"
    async with serve(settings) as http:
        assert (await _post(http, LIST)).status_code == 200
        assert not instrumented()
    # when a traced app runs, asyncpg is instrumented only while it does
    async with serve(settings, span_exporter=exporter) as http:
        assert instrumented()
    assert not instrumented()


class _OtlpReceiver:
    """A minimal OTLP/HTTP endpoint on loopback: remembers each POST's path and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self.received = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        body = await reader.readexactly(length)
        self.requests.append((lines[0].split(" ")[1], body))
        self.received.set()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n"
            b"content-length: 0\r\nconnection: close\r\n\r\n"
        )
        await writer.drain()
        writer.close()


async def test_otel_traces_otlp_sends_the_spans_to_the_configured_endpoint(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an OTLP/HTTP receiver and OTEL_TRACES=otlp with the standard endpoint variable
    receiver = _OtlpReceiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-under-test")
    try:
        otlp = settings.model_copy(update={"otel_traces": "otlp"})
        async with serve(otlp) as http:
            assert (await _post(http, LIST)).status_code == 200
        # when the app stops (the batch is flushed), then the receiver got the request's span
        await asyncio.wait_for(receiver.received.wait(), timeout=10)
    finally:
        server.close()
        await server.wait_closed()
    paths = {path for path, _ in receiver.requests}
    assert paths == {"/v1/traces"}
    sent = b"".join(body for _, body in receiver.requests)
    for expected in (b"query OpenIncidents", b"gateway.tenant", b"gateway-under-test"):
        assert expected in sent


@pytest.mark.parametrize(
    ("document", "name", "expected"),
    [
        ("{ a }", None, ("query", None)),
        ("query Q { a }", None, ("query", "Q")),
        ("mutation M($x: Int) { a(x: $x) }", None, ("mutation", "M")),
        # fragments first, a field named like a keyword, comments and strings are not operations
        (
            'fragment F on T { query mutation }\n# query Fake\nsubscription S { a(s: "query X") }',
            None,
            ("subscription", "S"),
        ),
        ("query A { a } mutation B { b }", "B", ("mutation", "B")),
        ("query A { a }", "Missing", None),
        ('fragment F on T { a(s: "unterminated) }', None, None),
    ],
)
def test_operation_of_reads_the_operation_without_parsing(
    document: str, name: str | None, expected: Any
) -> None:
    assert operation_of(document, name) == expected


async def test_otel_traces_console_prints_the_spans(
    settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    console = settings.model_copy(update={"otel_traces": "console"})
    async with serve(console) as http:
        assert (await _post(http, LIST, tenant="printed")).status_code == 200
    # the app's stop flushes the batch to stdout, one JSON object per span
    out = capfd.readouterr().out
    assert '"name": "query OpenIncidents"' in out
    assert '"gateway.tenant": "printed"' in out
