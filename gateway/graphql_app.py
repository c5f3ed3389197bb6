"""Strawberry's ASGI app with our authentication, context and JSON encoding."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from gateway.fanout import operation_identity
from gateway.idempotency import HEADER as IDEMPOTENCY_KEY
from gateway.idempotency import run_idempotent
from gateway.metrics import GRAPHQL_OPERATIONS, PREPARED_READS
from gateway.responses import error_response
from gateway.runtime import Runtime
from gateway.websocket import TextWebSocketAdapter, TransportWSHandler
from resolvers.auth import Principal
from resolvers.compiled import PreparedCache, run_prepared
from resolvers.context import Context
from resolvers.errors import GatewayError, Unauthenticated

__all__ = ["ASSETS_DIR", "READ_PATH_HEADER", "GraphQLApp", "offline_ide_html"]

log = logging.getLogger("gateway.errors")
COMPILED_OPERATIONS = GRAPHQL_OPERATIONS.labels("compiled")

GRAPHQL_RESPONSE = "application/graphql-response+json"
READ_PATH_HEADER = "x-gateway-read-path"
ASSETS_DIR = Path(__file__).parent / "static" / "graphiql"
# The IDE's CDN assets, served from ASSETS_DIR instead so GraphiQL works without internet.
_LOCAL_ASSETS = {
    "https://unpkg.com/react@18.2.0/umd/react.production.min.js": "react.production.min.js",
    "https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js": (
        "react-dom.production.min.js"
    ),
    "https://unpkg.com/js-cookie@3.0.5/dist/js.cookie.min.js": "js.cookie.min.js",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.css": "graphiql.min.css",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.js": "graphiql.min.js",
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/style.css": "plugin-explorer.css",
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/index.umd.js": (
        "plugin-explorer.umd.js"
    ),
}


def offline_ide_html(html: str) -> str:
    """Point the IDE page at the bundled assets; fail loudly if Strawberry changed its page."""
    for remote, local in _LOCAL_ASSETS.items():
        if remote not in html:
            raise RuntimeError(f"GraphiQL page no longer loads {remote}; update _LOCAL_ASSETS")
        html = html.replace(remote, f"/graphiql/{local}")
    return html


def operation_key(data: object) -> Hashable | None:
    """The identity of a POSTed operation: document, operation name and variables.

    None for anything but a plain single operation (batches, non-string documents): those never
    take the shortcut. Variables are keyed by their canonical JSON, so key order does not matter.
    """
    if not isinstance(data, dict):
        return None
    query, name, variables = data.get("query"), data.get("operationName"), data.get("variables")
    if not isinstance(query, str) or not isinstance(name, str | None):
        return None
    if not isinstance(variables, dict | None):
        return None
    return operation_identity(query, name, variables)


def _wants_graphql_response(request: Request | WebSocket) -> bool:
    """GraphQL-over-HTTP: answer in the newer media type when the client asks for it."""
    return GRAPHQL_RESPONSE in request.headers.get("accept", "")


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the already-read body once, then the client's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_compiled(send: Send, data: str, media_type: str) -> None:
    body = b'{"data":' + data.encode() + b"}"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", media_type.encode()),
                (READ_PATH_HEADER.encode(), b"compiled"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
    COMPILED_OPERATIONS.inc()
    PREPARED_READS.inc()


class GraphQLApp(GraphQL[Context, None]):
    """Authenticates before execution: a request without a valid token never reaches GraphQL."""

    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = TextWebSocketAdapter

    def __init__(self, schema: Any, graphql_ide: Any = "graphiql") -> None:
        # Only graphql-transport-ws: the legacy graphql-ws protocol would skip our auth hook.
        super().__init__(
            schema,
            graphql_ide=graphql_ide,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
        )
        self.prepared = PreparedCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            if not self._wants_ide(request):
                runtime: Runtime = request.state.runtime
                try:
                    principal = await runtime.auth.authenticate(
                        request.headers.get("authorization")
                    )
                except GatewayError as exc:
                    status = 401 if isinstance(exc, Unauthenticated) else 503
                    await error_response(exc, status)(scope, receive, send)
                    return
                request.state.principal = principal
                key = request.headers.get(IDEMPOTENCY_KEY)
                if key is not None and request.method == "POST":
                    await run_idempotent(
                        super().__call__,
                        engine=runtime.db.primary,
                        principal=principal,
                        key=key,
                        scope=scope,
                        receive=receive,
                        send=send,
                    )
                    return
                if request.method == "POST" and runtime.db.json_reads is not None:
                    replay = await self._serve_prepared(request, principal, send)
                    if replay is None:
                        return
                    receive = replay
        await super().__call__(scope, receive, send)

    async def _serve_prepared(
        self, request: Request, principal: Principal, send: Send
    ) -> Receive | None:
        """Answer a repeat of a compiled operation without GraphQL; else hand the body on.

        A POSTed query whose (document, operation name, variables) compiled before is answered
        straight from its bound plan (resolvers/compiled.py) with the caller's tenant: the same
        bytes and headers Strawberry would send, without parsing, validation or execution. Any
        other request continues on Strawberry's view, which gets the body replayed, and records
        its key so that its compiled answer is remembered. Returns that replaying `receive`, or
        None when the request was answered here.
        """
        body = await request.body()
        replay = _replaying(body, request.receive)
        headers = request.headers
        if "application/json" not in headers.get(
            "content-type", ""
        ) or self._get_stream_transport_from_headers(headers):
            return replay
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return replay
        key = operation_key(data)
        if key is None:
            return replay
        request.state.operation_key = key
        runtime: Runtime = request.state.runtime
        answer = await run_prepared(runtime.db, principal, self.prepared, key)
        if answer is None:
            return replay
        media = GRAPHQL_RESPONSE if _wants_graphql_response(request) else "application/json"
        await _send_compiled(send, answer, media)
        return None

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(offline_ide_html(self.graphql_ide_html))

    def _wants_ide(self, request: Request) -> bool:
        return (
            self.graphql_ide is not None
            and request.method == "GET"
            and "query" not in request.query_params
            and "text/html" in request.headers.get("accept", "")
        )

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        runtime: Runtime = request.state.runtime
        return Context(
            principal=getattr(request.state, "principal", None),
            db=runtime.db,
            request_id=getattr(request.state, "request_id", "-"),
            feed=runtime.hub,
            breaker=runtime.breaker,
            compiled_reads=runtime.settings.gateway_compiled_reads,
            operation_key=getattr(request.state, "operation_key", None),
            prepared=self.prepared,
            verification_mode=runtime.settings.aos_verification_mode,
        )

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub = await super().get_sub_response(request)
        if _wants_graphql_response(request):
            sub.media_type = GRAPHQL_RESPONSE
        request.state.sub_response = sub
        return sub

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        # Which read path served the operation: a header, and the per-path counter.
        path = "compiled" if isinstance(result.data, orjson.Fragment) else "resolver"
        request.state.sub_response.headers[READ_PATH_HEADER] = path
        GRAPHQL_OPERATIONS.labels(path).inc()
        # Last guard: an error that escaped the schema's ErrorCodes (e.g. raised inside an
        # extension hook) still gets a code and never leaks its message.
        errors: list[dict[str, Any]] = response.get("errors") or []  # type: ignore[assignment]
        for error in errors:
            if not (error.get("extensions") or {}).get("code"):
                request_id = getattr(request.state, "request_id", "-")
                log.error("uncoded error (request %s): %s", request_id, error.get("message"))
                error["message"] = f"Unexpected error. Request id: {request_id}"
                error["extensions"] = {"code": "INTERNAL", "requestId": request_id}
        # Under the newer media type a request that could not execute at all is a 400. Errors
        # raised while executing carry a path; those keep 200 even when data is null.
        sub: Response = request.state.sub_response
        if (
            result.data is None
            and result.errors
            and all(e.path is None for e in result.errors)
            and sub.media_type == GRAPHQL_RESPONSE
        ):
            sub.status_code = 400
        return response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type == GRAPHQL_RESPONSE:
            response.headers["content-type"] = GRAPHQL_RESPONSE
        return response

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)
