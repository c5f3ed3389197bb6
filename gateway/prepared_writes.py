"""The prepared-write path: a POSTed mutation runs from its plan, without Strawberry's view.

A POSTed operation whose (document, operation name) plans as a mutation (schema/prepared_writes.py:
parsed, validated and checked once per process) is executed here for the caller, with the
context the view would build (gateway/graphql_app.context_for), and answered with the bytes and
headers the view would send. Everything the plan does not serve goes on to the view unchanged:
queries, subscriptions, streaming answers (SSE, multipart), and any request the plan declines
before executing (a refusal the view answers). The steps before this one (Idempotency-Key,
X-Gateway-LSN, authentication, trusted documents) apply as for any request.
MUTATION_FAST_PATH=off leaves this step out of the pipeline.
"""

from __future__ import annotations

from typing import Any

import orjson
from graphql import ExecutionResult
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.graphql_app import context_for
from gateway.metrics import PREPARED_WRITES, count_errors, count_operation
from gateway.pipeline import PARAMS, header, is_graphql_http, state
from gateway.prepared_reads import send_answer
from gateway.responses import code_uncoded_errors, response_media_type
from resolvers.compiled import PreparedCache
from schema.prepared_writes import WritePlans, run_plan

__all__ = ["PreparedWrites", "send_result"]

# Streaming answers (multipart, SSE) are the view's.
_STREAMING = ("multipart/mixed", "text/event-stream")


class PreparedWrites:
    """Runs planned mutations; see the module docstring."""

    def __init__(self, app: ASGIApp, *, plans: WritePlans, prepared: PreparedCache) -> None:
        self.app = app
        self.plans = plans
        self.prepared = prepared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_graphql_http(scope) and scope["method"] == "POST":
            request_state = state(scope)
            params: dict[str, Any] | None = request_state.get(PARAMS)
            query = params.get("query") if params is not None else None
            accept = header(scope, b"accept")
            if (
                params is not None
                and isinstance(query, str)
                and not (accept and any(kind in accept for kind in _STREAMING))
            ):
                plan = self.plans.get(query, params.get("operationName"))
                if plan is not None:
                    ctx = context_for(request_state, self.prepared)
                    result = await run_plan(
                        self.plans, plan, ctx, params.get("variables"), params.get("extensions")
                    )
                    if result is not None:
                        await send_result(send, result, response_media_type(accept), ctx.request_id)
                        PREPARED_WRITES.inc()
                        return
        await self.app(scope, receive, send)


async def send_result(
    send: Send,
    result: ExecutionResult,
    media_type: str,
    request_id: str,
    *,
    id_header: bool = False,
) -> None:
    """The executed result's bytes and headers, with the view's counters and error guard.

    strawberry.http.process_result, then GraphQLApp.process_result's guard and counters.
    `id_header`: send X-Request-ID (the fast lane's; in the pipeline the first step adds it).
    """
    response: dict[str, Any] = {"data": result.data}
    if result.errors:
        response["errors"] = [error.formatted for error in result.errors]
    path = count_operation(result.data)
    code_uncoded_errors(response, request_id)
    if result.errors:
        count_errors(error["extensions"]["code"] for error in response["errors"])
    await send_answer(
        send, orjson.dumps(response), media_type, path, request_id if id_header else None
    )
