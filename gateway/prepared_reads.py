"""The repeated-read shortcut: a POST identical to a compiled read before is answered here.

A POSTed query whose (document, operation name, variables) compiled whole before is answered
straight from its bound plan (resolvers/compiled.py) with the caller's tenant: the bytes and
headers the GraphQL view would send, without parsing, validation or execution. Any other request
goes on to the view carrying its key (`scope["state"]["operation_key"]`), so that a compiled
answer is remembered; a repeat of a mixed operation (some roots need resolvers) goes on too, and
the view reuses its bound plan for the compiled roots (schema/compiled.py).
This is the hot path of compiled reads: it reuses the body decoded by
gateway/body_limits.py and the principal of gateway/auth.py, and decodes nothing itself.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.fanout import operation_identity
from gateway.metrics import GRAPHQL_OPERATIONS, GRAPHQL_ROOT_FIELDS, PREPARED_READS
from gateway.pipeline import IDEMPOTENCY_KEY, PARAMS, PRINCIPAL, header, is_graphql_http, state
from gateway.replica import DATABASE
from gateway.responses import response_media_type
from resolvers.compiled import Caller, CompiledRoots, PreparedCache, run_prepared

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["OPERATION_KEY", "READ_PATH_HEADER", "PreparedReads", "operation_key"]

OPERATION_KEY = "operation_key"
READ_PATH_HEADER = "x-gateway-read-path"
COMPILED_OPERATIONS = GRAPHQL_OPERATIONS.labels("compiled")
COMPILED_ROOTS = GRAPHQL_ROOT_FIELDS.labels("compiled")
# Streaming answers (multipart, SSE) are never served from a remembered plan.
_STREAMING = ("multipart/mixed", "text/event-stream")


def operation_key(params: dict[str, Any]) -> Hashable | None:
    """The identity of a checked operation: document, operation name and variables.

    Variables are keyed by their canonical JSON, so key order does not matter.
    """
    return operation_identity(params["query"], params.get("operationName"), params.get("variables"))


class PreparedReads:
    """Serves repeats of compiled reads from PreparedCache; see the module docstring."""

    def __init__(self, app: ASGIApp, *, prepared: PreparedCache) -> None:
        self.app = app
        self.prepared = prepared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_graphql_http(scope) and scope["method"] == "POST":
            request_state = state(scope)
            runtime: Runtime = request_state["runtime"]
            accept = header(scope, b"accept")
            if (
                runtime.db.json_reads is not None
                and IDEMPOTENCY_KEY not in request_state
                and not (accept and any(kind in accept for kind in _STREAMING))
            ):
                key = operation_key(request_state[PARAMS])
                if key is not None:
                    request_state[OPERATION_KEY] = key
                    db = request_state.get(DATABASE, runtime.db)  # gateway/replica.py
                    caller = Caller(
                        request_state[PRINCIPAL],
                        runtime.breaker,
                        request_state.get("request_id", "-"),
                    )
                    answer = await run_prepared(db, caller, self.prepared, key)
                    if answer is not None:
                        await _send_compiled(send, answer, response_media_type(accept))
                        return
        await self.app(scope, receive, send)


async def _send_compiled(send: Send, data: CompiledRoots, media_type: str) -> None:
    body = orjson.dumps({"data": data})
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
    COMPILED_ROOTS.inc(len(data))
    PREPARED_READS.inc()
