"""The last step of the pipeline: Strawberry's view, fed the decoded request, answering JSON only.

By the time a request gets here the pipeline (gateway/app.py) has bounded and decoded its body,
authenticated the caller, handled its Idempotency-Key and tried the repeated-read shortcut. The
view executes the operation; what Strawberry would answer as text/plain (an unknown
`operationName`, a mutation over GET, ...) is answered as JSON with a code instead.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException, StarletteRequestAdapter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from gateway.metrics import count_errors, count_operation
from gateway.pipeline import PARAMS, PRINCIPAL, state
from gateway.prepared_reads import OPERATION_KEY, READ_PATH_HEADER
from gateway.replica import COMMITS, DATABASE
from gateway.responses import (
    GRAPHQL_RESPONSE,
    code_uncoded_errors,
    error_response,
    response_media_type,
)
from gateway.runtime import Runtime
from gateway.websocket import TextWebSocketAdapter, TransportWSHandler
from resolvers.compiled import PreparedCache
from resolvers.context import Commits, Context
from resolvers.errors import BadUserInput, GatewayError, NotFound

__all__ = ["GraphQLApp", "context_for"]


class _PipelineRequestAdapter(StarletteRequestAdapter):
    """Strawberry's request adapter, with the parameters the pipeline already decoded."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.params: dict[str, Any] = request.scope["state"][PARAMS]


def _transport_error(exc: HTTPException, method: str) -> tuple[int, GatewayError, dict[str, str]]:
    """Strawberry's HTTPException as (status, coded error, headers)."""
    cause = exc.__cause__
    if isinstance(cause, InvalidOperationTypeError) and method == "GET":
        # GraphQL over HTTP: a mutation sent with GET is a 405 that says to POST it.
        return 405, BadUserInput(f"{exc.reason}; send it with POST."), {"allow": "POST"}
    if isinstance(cause, CannotGetOperationTypeError):
        return 400, BadUserInput(exc.reason, field="operationName"), {}
    if isinstance(cause, MissingQueryError):
        return 400, BadUserInput(exc.reason, field="query"), {}
    if exc.status_code == 404:
        return 404, NotFound(exc.reason), {}
    return exc.status_code, BadUserInput(exc.reason), {}


def context_for(request_state: dict[str, Any], prepared: PreparedCache | None) -> Context:
    """The resolvers' context of a request, from what the pipeline put in its state.

    The view and the prepared-write path (gateway/prepared_writes.py) both build it here.
    """
    runtime: Runtime = request_state["runtime"]
    return Context(
        principal=request_state.get(PRINCIPAL),
        db=request_state.get(DATABASE, runtime.db),
        commits=request_state.get(COMMITS) or Commits(),
        request_id=request_state.get("request_id", "-"),
        feed=runtime.hub,
        breaker=runtime.breaker,
        compiled_reads=runtime.settings.gateway_compiled_reads,
        operation_key=request_state.get(OPERATION_KEY),
        prepared=prepared,
        verification_mode=runtime.settings.aos_verification_mode,
    )


class GraphQLApp(GraphQL[Context, None]):
    """Executes operations for the principal the pipeline authenticated; JSON answers only."""

    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = TextWebSocketAdapter
    request_adapter_class = _PipelineRequestAdapter

    def __init__(self, schema: Any, *, prepared: PreparedCache) -> None:
        # Only graphql-transport-ws: the legacy graphql-ws protocol would skip our auth hook.
        # No IDE here: gateway/graphiql.py serves the page before authentication.
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
        )
        self.prepared = prepared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            status, error, headers = _transport_error(exc, request.method)
            media_type = response_media_type(request.headers.get("accept"))
            response = error_response(error, status, media_type=media_type, headers=headers)
        await response(scope, receive, send)

    def should_render_graphql_ide(self, request: Any) -> bool:
        """Never: gateway/graphiql.py serves the IDE.

        A GET naming a `documentId` has no `query` parameter yet is an operation: its document
        is in the parameters the pipeline decoded.
        """
        return False

    async def parse_http_body(self, request_adapter: Any) -> GraphQLRequestData:
        """The operation gateway/body_limits.py decoded and checked: nothing is read twice."""
        params: dict[str, Any] = request_adapter.params
        return GraphQLRequestData(
            query=params["query"],
            variables=params.get("variables"),
            operation_name=params.get("operationName"),
            extensions=params.get("extensions"),
        )

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        return context_for(state(request.scope), self.prepared)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub = await super().get_sub_response(request)
        sub.media_type = response_media_type(request.headers.get("accept"))
        request.state.sub_response = sub
        return sub

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        # Which read path served the operation: a header, and the per-path counter.
        request.state.sub_response.headers[READ_PATH_HEADER] = count_operation(result.data)
        code_uncoded_errors(response, getattr(request.state, "request_id", "-"))  # type: ignore[arg-type]
        errors: list[dict[str, Any]] = response.get("errors") or []  # type: ignore[assignment]
        if errors:
            count_errors(error["extensions"]["code"] for error in errors)
        # Under the newer media type a request that could not execute at all (parse,
        # validation, variable coercion) is a 400 without a `data` entry. Errors raised while
        # executing carry a path; those keep 200 even when data is null.
        sub: Response = request.state.sub_response
        if (
            result.data is None
            and result.errors
            and all(e.path is None for e in result.errors)
            and sub.media_type == GRAPHQL_RESPONSE
        ):
            sub.status_code = 400
            response.pop("data", None)
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
