"""Strawberry's ASGI app with our authentication, context and JSON encoding."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from gateway.runtime import Runtime
from resolvers.context import Context
from resolvers.errors import GatewayError, Unauthenticated

__all__ = ["GraphQLApp", "error_response"]

GRAPHQL_RESPONSE = "application/graphql-response+json"


def error_response(error: GatewayError, status: int) -> Response:
    """A GraphQL-shaped error body outside execution (auth, unavailable database)."""
    body = {"errors": [{"message": error.message, "extensions": error.extensions}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class GraphQLApp(GraphQL[Context, None]):
    """Authenticates before execution: a request without a valid token never reaches GraphQL."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            if not self._wants_ide(request):
                runtime: Runtime = request.state.runtime
                try:
                    principal = await runtime.auth.authenticate(request.headers.get("authorization"))
                except GatewayError as exc:
                    status = 401 if isinstance(exc, Unauthenticated) else 503
                    await error_response(exc, status)(scope, receive, send)
                    return
                request.state.principal = principal
        await super().__call__(scope, receive, send)

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
        )

    async def get_sub_response(self, request: Request) -> Response:
        sub = await super().get_sub_response(request)
        # GraphQL-over-HTTP: answer in the newer media type when the client asks for it.
        if GRAPHQL_RESPONSE in request.headers.get("accept", ""):
            sub.media_type = GRAPHQL_RESPONSE
        request.state.sub_response = sub
        return sub

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        # Under the newer media type a request that could not execute at all is a 400.
        sub: Response = request.state.sub_response
        if result.data is None and result.errors and sub.media_type == GRAPHQL_RESPONSE:
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
