"""OpenTelemetry traces (OTEL_TRACES): one server span per /graphql request, database spans below.

Off by default, and then absent: no middleware in the pipeline and no instrumentation, so the hot
path pays nothing (gateway/app.py adds the middleware only when tracing is on). On, the request's
span carries the operation name, the read path that served it, the caller's tenant and the error
code; an incoming W3C `traceparent` makes it a child of the caller's trace. Every statement sent
through asyncpg, both the engines' (SQLAlchemy runs on asyncpg) and the compiled path's plain
pool, is a client span below it (opentelemetry-instrumentation-asyncpg, parameters not recorded);
statements outside any request (jobs, the LISTEN ping) are not traced.
Where spans go: OTLP over HTTP (the exporter reads the standard OTEL_EXPORTER_OTLP_* variables),
the console, or an exporter a test passes to create_app.
"""

from __future__ import annotations

import asyncio
import sys
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, Lexer, Source, TokenKind
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import ERROR_CODE_ATTRIBUTE
from gateway.pipeline import GRAPHQL_PATH, PARAMS, PRINCIPAL, is_graphql_http, state
from gateway.prepared_reads import READ_PATH_HEADER

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
    from opentelemetry.trace import Link, TraceState
    from opentelemetry.util.types import Attributes

    from gateway.settings import Settings

__all__ = [
    "ERROR_CODE",
    "OPERATION_NAME",
    "OPERATION_TYPE",
    "READ_PATH",
    "TENANT",
    "Tracing",
    "TracingMiddleware",
    "operation_of",
    "tracing_for",
]

SERVICE = "governance-gateway"
# Span attributes of the request span (the brief's names; graphql.* follow OTel's semantic
# conventions for GraphQL servers).
OPERATION_NAME = "graphql.operation.name"
OPERATION_TYPE = "graphql.operation.type"
READ_PATH = "gateway.read_path"
TENANT = "gateway.tenant"
ERROR_CODE = ERROR_CODE_ATTRIBUTE  # set by gateway/metrics.py count_errors

_W3C = TraceContextTextMapPropagator()
_TRACE_HEADERS = (b"traceparent", b"tracestate")
_READ_PATH_HEADER = READ_PATH_HEADER.encode()
_OPERATION_KEYWORDS = frozenset({"query", "mutation", "subscription"})


# The SDK, its exporters and the instrumentation are imported only when tracing is on: ~0.2 s
# of start-up that every process (CLI, worker, tests' replicas) would otherwise pay.


def _resource() -> Resource:
    """OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES when set (the SDK reads them), else ours."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415

    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: SERVICE}))
    return detected


def _requests_only(delegate: Sampler) -> Sampler:
    """A sampler that drops database spans outside any request, else asks `delegate`.

    Background jobs and the LISTEN connection's ping (every LISTENER_PING_SECONDS on every
    process) would otherwise each be a trace of one statement. `delegate` is the SDK's own
    choice (OTEL_TRACES_SAMPLER, by default: follow the parent, sample every root).
    """
    from opentelemetry.sdk.trace.sampling import (  # noqa: PLC0415
        Decision,
        Sampler,
        SamplingResult,
    )

    class RequestsOnly(Sampler):
        def should_sample(  # noqa: PLR0917 - the SDK's Sampler signature
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[Link] | None = None,
            trace_state: TraceState | None = None,
        ) -> SamplingResult:
            parent = trace.get_current_span(parent_context).get_span_context()
            if kind is SpanKind.CLIENT and not parent.is_valid:
                return SamplingResult(Decision.DROP)
            return delegate.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"RequestsOnly{{{delegate.get_description()}}}"

    return RequestsOnly()


class Tracing:
    """One app's tracer provider, and the instrumentation it installs for the app's lifespan."""

    def __init__(self, exporter: SpanExporter, *, batch: bool) -> None:
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            BatchSpanProcessor,
            SimpleSpanProcessor,
        )

        configured = TracerProvider(shutdown_on_exit=False).sampler  # per OTEL_TRACES_SAMPLER
        self.provider = TracerProvider(resource=_resource(), sampler=_requests_only(configured))
        # Batching keeps export off the request; a test's in-memory exporter wants spans at once.
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("gateway")

    def instrument(self) -> None:
        """Database spans: asyncpg is patched process-wide until shutdown()."""
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: PLC0415

        AsyncPGInstrumentor().instrument(tracer_provider=self.provider)  # type: ignore[no-untyped-call]

    async def shutdown(self) -> None:
        """Undo the instrumentation and flush what is still queued.

        The flush runs in a thread: the exporter's HTTP POST blocks, and must not stall the
        event loop (which may even be serving the collector, as in the tests).
        """
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: PLC0415

        AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
        await asyncio.to_thread(self.provider.shutdown)


def tracing_for(settings: Settings, exporter: SpanExporter | None = None) -> Tracing | None:
    """The app's tracing per OTEL_TRACES, or None when off; `exporter` (tests) overrides it."""
    if exporter is not None:
        return Tracing(exporter, batch=False)
    if settings.otel_traces == "off":
        return None
    if settings.otel_traces == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter  # noqa: PLC0415

        # sys.stdout as it is now: the exporter's default is bound when its module is imported.
        return Tracing(ConsoleSpanExporter(out=sys.stdout), batch=True)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return Tracing(OTLPSpanExporter(), batch=True)


@lru_cache(maxsize=512)
def operation_of(document: str, name: str | None) -> tuple[str, str | None] | None:
    """(type, name) of the operation a request runs, read with the lexer only (no parse).

    The named one when `name` is given, else the document's first operation; None when it is
    not there or the document does not lex (the GraphQL view then answers the error). Cached:
    clients repeat their documents, and lexing one with fragments takes ~0.1 ms.
    """
    lexer = Lexer(Source(document))
    depth = 0
    in_fragment = False  # a top-level `{` then opens the fragment's selection
    try:
        token = lexer.advance()
        while token.kind is not TokenKind.EOF:
            if token.kind is TokenKind.BRACE_L:
                if depth == 0 and name is None and not in_fragment:
                    return "query", None  # the shorthand `{ ... }`
                in_fragment = in_fragment and depth > 0
                depth += 1
            elif token.kind is TokenKind.BRACE_R:
                depth -= 1
            elif depth == 0 and token.kind is TokenKind.NAME and token.value == "fragment":
                in_fragment = True
            elif depth == 0 and token.kind is TokenKind.NAME and token.value in _OPERATION_KEYWORDS:
                following = lexer.advance()
                found = following.value if following.kind is TokenKind.NAME else None
                if name is None or found == name:
                    return str(token.value), found
                token = following
                continue
            token = lexer.advance()
    except GraphQLError:
        return None
    return None


class TracingMiddleware:
    """Opens the server span of each HTTP /graphql request; see the module docstring."""

    def __init__(self, app: ASGIApp, *, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_graphql_http(scope):
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key in _TRACE_HEADERS
        }
        method = scope["method"]
        status = 500
        read_path: str | None = None

        async def send_observed(message: Message) -> None:
            nonlocal status, read_path
            if message["type"] == "http.response.start":
                status = message["status"]
                for key, value in message.get("headers") or ():
                    if key == _READ_PATH_HEADER:
                        read_path = value.decode("latin-1")
            await send(message)

        with self.tracer.start_as_current_span(
            f"{method} {GRAPHQL_PATH}",
            context=_W3C.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": GRAPHQL_PATH},
        ) as span:
            try:
                await self.app(scope, receive, send_observed)
            finally:
                _describe(span, state(scope), status, read_path)


def _describe(span: Any, request_state: dict[str, Any], status: int, read_path: str | None) -> None:
    """What the request turned out to be, from what the pipeline left in its state."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    if read_path is not None:
        span.set_attribute(READ_PATH, read_path)
    principal = request_state.get(PRINCIPAL)
    if principal is not None:
        span.set_attribute(TENANT, principal.tenant_id)
    params = request_state.get(PARAMS)
    if params is not None and isinstance(params.get("query"), str):
        operation = operation_of(params["query"], params.get("operationName"))
        if operation is not None:
            kind, name = operation
            span.set_attribute(OPERATION_TYPE, kind)
            if name is not None:
                span.set_attribute(OPERATION_NAME, name)
                span.update_name(f"{kind} {name}")
