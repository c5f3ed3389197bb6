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
from cachetools import LRUCache
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.fanout import operation_identity
from gateway.metrics import GRAPHQL_OPERATIONS, GRAPHQL_ROOT_FIELDS, PREPARED_READS
from gateway.pipeline import IDEMPOTENCY_KEY, PARAMS, PRINCIPAL, header, is_graphql_http, state
from gateway.replica import DATABASE
from gateway.responses import response_media_type
from gateway.trusted_documents import names_a_document
from resolvers.compiled import Caller, CompiledRoots, PreparedCache, run_prepared

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = [
    "FAST_BODY",
    "MAX_REMEMBERED_BODY",
    "OPERATION_KEY",
    "READ_PATH_HEADER",
    "BodyKeys",
    "PreparedReads",
    "count_compiled",
    "operation_key",
    "send_answer",
    "send_compiled",
]

OPERATION_KEY = "operation_key"
READ_PATH_HEADER = "x-gateway-read-path"
COMPILED_OPERATIONS = GRAPHQL_OPERATIONS.labels("compiled")
COMPILED_ROOTS = GRAPHQL_ROOT_FIELDS.labels("compiled")
_READ_PATH = READ_PATH_HEADER.encode()
# scope["state"] key: the body gateway/fast_lane.py read and did not know.
FAST_BODY = "fast_lane_body"
# Longer bodies are never remembered: the fast lane's cache holds at most maxsize of these.
MAX_REMEMBERED_BODY = 16 * 1024
# Streaming answers (multipart, SSE) are never served from a remembered plan.
_STREAMING = ("multipart/mixed", "text/event-stream")


def operation_key(params: dict[str, Any]) -> Hashable | None:
    """The identity of a checked operation: document, operation name and variables.

    Variables are keyed by their canonical JSON, so key order does not matter.
    """
    return operation_identity(params["query"], params.get("operationName"), params.get("variables"))


class BodyKeys(LRUCache[bytes, Hashable]):
    """Bounded LRU: exact request body -> the operation key the pipeline derived from it."""

    def __init__(self, maxsize: int = 1024) -> None:
        super().__init__(maxsize=maxsize)


class PreparedReads:
    """Serves repeats of compiled reads from PreparedCache; see the module docstring."""

    def __init__(
        self, app: ASGIApp, *, prepared: PreparedCache, bodies: BodyKeys | None = None
    ) -> None:
        self.app = app
        self.prepared = prepared
        self.bodies = bodies  # the fast lane's, when it is installed

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
                params = request_state[PARAMS]
                key = operation_key(params)
                if key is not None:
                    request_state[OPERATION_KEY] = key
                    db = request_state.get(DATABASE, runtime.db)  # gateway/replica.py
                    request_id = request_state.get("request_id", "-")
                    caller = Caller(request_state[PRINCIPAL], runtime.breaker, request_id)
                    answer = await run_prepared(db, caller, self.prepared, key)
                    if answer is not None:
                        await send_compiled(send, answer, response_media_type(accept))
                        count_compiled(answer)
                        self._remember_body(request_state, params, key)
                        return
        await self.app(scope, receive, send)

    def _remember_body(
        self, request_state: dict[str, Any], params: dict[str, Any], key: Hashable
    ) -> None:
        """Let gateway/fast_lane.py answer the next POST of these exact bytes.

        Only a body whose document was inline: a named one passes the registry's check here.
        """
        body = request_state.get(FAST_BODY)
        if self.bodies is not None and body is not None and not names_a_document(params):
            self.bodies[body] = key


async def send_compiled(
    send: Send, data: CompiledRoots, media_type: str, request_id: str | None = None
) -> None:
    """The compiled answer's bytes and headers, as the GraphQL view sends them."""
    await send_answer(send, orjson.dumps({"data": data}), media_type, "compiled", request_id)


async def send_answer(
    send: Send, body: bytes, media_type: str, read_path: str, request_id: str | None = None
) -> None:
    """A 200 JSON answer with the view's headers (X-Gateway-Read-Path says `read_path`).

    `request_id`: the fast lane's own X-Request-ID (in the pipeline the first step adds it).
    """
    headers = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", media_type.encode()),
        (_READ_PATH, read_path.encode()),
    ]
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def count_compiled(data: CompiledRoots) -> None:
    """The counters of an operation answered from a remembered plan."""
    COMPILED_OPERATIONS.inc()
    COMPILED_ROOTS.inc(len(data))
    PREPARED_READS.inc()
