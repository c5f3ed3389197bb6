"""The fast lane: a POST the pipeline's steps would pass unchanged goes straight to its plan.

On a small read or a one-statement mutation most of the gateway's CPU went to the pipeline
around the one statement, not to it: ten middleware coroutines, decoding and checking the body,
Starlette's header wrappers. Two kinds of POST skip those steps here.

- Reads (issue #14 item 6): once the repeated-read shortcut (gateway/prepared_reads.py) has
  answered a body, its bytes are remembered with the operation key (`BodyKeys`), and the next
  POST with the same bytes goes straight to the bound plan.
- Mutations (issue #16 item 1): a body naming a mutation document that planned before
  (schema/prepared_writes.py; the plan is per document, the variables differ per request) is
  decoded and checked as gateway/body_limits.py does and run from its plan, as
  gateway/prepared_writes.py runs it.

What depends on the request still runs here, every time: the caller is authenticated (a 401 or
503 is left to the pipeline, which answers it), the plan runs for the caller's tenant and role,
the request id, the status and latency metrics, and the headers are those of the pipeline.

Anything else takes the full pipeline, with the body replayed to it: a body not remembered and
no planned mutation (or larger than MAX_REMEMBERED_BODY), Idempotency-Key or X-Gateway-LSN (their
steps act on it), a streaming Accept (SSE, multipart), another content type, a credential that
does not authenticate, a body the pipeline would refuse or that names a stored document, a
mutation while a read replica is configured (ReadYourWrites hands out X-Gateway-LSN after the
commit), and a plan that is gone or declines before running (the pipeline runs it again). The
lane is only installed when no step could decide otherwise for the same bytes (gateway/app.py):
not with OTEL tracing (one span per request) nor with TRUSTED_DOCUMENTS=only (the registry is
consulted per request); and only bodies that name no document are remembered.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from prometheus_client.metrics import Counter as CounterChild
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.body_limits import Refused, params_of
from gateway.graphql_app import context_for
from gateway.metrics import PREPARED_WRITES, READ_FAST_LANE, WRITE_FAST_LANE
from gateway.pipeline import GRAPHQL_PATH, PRINCIPAL
from gateway.prepared_reads import (
    FAST_BODY,
    MAX_REMEMBERED_BODY,
    BodyKeys,
    count_compiled,
    send_compiled,
)
from gateway.prepared_writes import send_result
from gateway.request_context import request_id_for, requests_series, seconds_series
from gateway.responses import response_media_type
from gateway.trusted_documents import names_a_document
from resolvers.auth import Principal
from resolvers.compiled import Caller, PreparedCache, run_prepared
from resolvers.errors import GatewayError
from schema.prepared_writes import WritePlan, WritePlans, run_plan

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["FastLane"]

# Headers whose pipeline step must see the request.
_PIPELINE_HEADERS = frozenset({b"idempotency-key", b"x-gateway-lsn"})
# The series RequestContextMiddleware counts the pipeline's answers in.
_OK = requests_series(GRAPHQL_PATH, 200)
_FAILED = requests_series(GRAPHQL_PATH, 500)
_SECONDS = seconds_series(GRAPHQL_PATH)


class _Request:
    """The few headers the lane reads, from one pass over the scope's headers."""

    __slots__ = ("accept", "authorization", "content_type", "request_id")

    def __init__(self) -> None:
        self.accept: bytes | None = None
        self.authorization: bytes | None = None
        self.content_type: bytes | None = None
        self.request_id: bytes | None = None

    def media_type(self) -> str:
        """The answer's content type for the request's Accept (as the pipeline chooses it)."""
        accept = self.accept
        return response_media_type(None if accept is None else accept.decode("latin-1"))


def _read_headers(scope: Scope) -> _Request | None:
    """The lane's headers (the first of each, as gateway/pipeline.header), or None: pipeline."""
    found = _Request()
    for name, value in scope["headers"]:
        if name == b"authorization":
            found.authorization = found.authorization or value
        elif name == b"content-type":
            found.content_type = found.content_type or value
        elif name == b"accept":
            found.accept = found.accept or value
        elif name == b"x-request-id":
            found.request_id = found.request_id or value
        elif name in _PIPELINE_HEADERS:
            return None
    content_type = found.content_type or b""
    if content_type.partition(b";")[0].strip().lower() != b"application/json":
        return None
    accept = (found.accept or b"").lower()
    if b"stream" in accept or b"multipart" in accept:
        return None
    return found


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that yields the messages the lane already took, then the client's own."""
    pending = messages[::-1]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, list[Message]]:
    """(the whole body or None, the messages to hand the pipeline), reading up to `limit` bytes.

    None: a body still incomplete past `limit` or a disconnect; the pipeline gets the bytes read
    so far as one message, reads the rest itself and applies MAX_REQUEST_BYTES.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, [_partial(chunks), message]
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if not message.get("more_body", False):
            whole = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            return whole, [{"type": "http.request", "body": whole, "more_body": False}]
        if size > limit:
            return None, [_partial(chunks)]


def _partial(chunks: list[bytes]) -> Message:
    """The chunks read so far as one message; the rest of the body follows from the client."""
    return {"type": "http.request", "body": b"".join(chunks), "more_body": True}


class FastLane:
    """Serves remembered read bodies and planned mutations; see the module docstring.

    `bodies` None: no read is remembered (compiled reads off); `plans` None: every mutation
    takes the pipeline (MUTATION_FAST_PATH=off).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        prepared: PreparedCache,
        bodies: BodyKeys | None,
        plans: WritePlans | None,
        max_bytes: int,
    ) -> None:
        self.app = app
        self.prepared = prepared
        self.bodies = bodies
        self.plans = plans
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != GRAPHQL_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = _read_headers(scope)
        if request is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body, taken = await _read_body(receive, min(MAX_REMEMBERED_BODY, self.max_bytes))
        replay = _replaying(taken, receive)
        if body is None:  # too long to be remembered, or the client went away
            await self.app(scope, replay, send)
            return
        key = None if self.bodies is None else self.bodies.get(body)
        if key is not None:
            answered = await self._answer_read(scope, request, key, started, send)
        elif self.plans is not None and b"mutation" in body:
            answered = await self._answer_write(scope, request, body, started, send)
        else:
            answered = False
        if not answered:
            if key is None:
                scope.setdefault("state", {})[FAST_BODY] = body
            await self.app(scope, replay, send)

    async def _answer_read(
        self, scope: Scope, request: _Request, key: Hashable, started: float, send: Send
    ) -> bool:
        """Answer from the bound plan; False (nothing sent): the pipeline answers instead."""
        runtime: Runtime = scope["state"]["runtime"]
        principal = await _authenticated(runtime, request)
        if principal is None:
            return False
        request_id = _request_id(scope, request)
        # As gateway/replica.ReadYourWrites: reads go to the replica when there is one.
        db = runtime.db if runtime.replica is None else runtime.replica.db
        caller = Caller(principal, runtime.breaker, request_id)
        try:
            answer = await run_prepared(db, caller, self.prepared, key)
            if answer is None:
                return False
            await send_compiled(send, answer, request.media_type(), request_id)
        except BaseException:
            _answered(_FAILED, started)
            raise
        count_compiled(answer)
        READ_FAST_LANE.inc()
        _answered(_OK, started)
        return True

    async def _answer_write(
        self, scope: Scope, request: _Request, body: bytes, started: float, send: Send
    ) -> bool:
        """Run a planned mutation; False (nothing ran, nothing sent): the pipeline answers."""
        plans = self.plans
        assert plans is not None  # noqa: S101 - only called with plans
        runtime: Runtime = scope["state"]["runtime"]
        planned = None if runtime.replica is not None else _planned(plans, body)
        if planned is None:
            return False
        plan, params = planned
        principal = await _authenticated(runtime, request)
        if principal is None:
            return False
        request_state = scope["state"]
        request_state[PRINCIPAL] = principal
        request_id = _request_id(scope, request)
        ctx = context_for(request_state, self.prepared)
        try:
            result = await run_plan(
                plans, plan, ctx, params.get("variables"), params.get("extensions")
            )
            if result is None:
                return False
            await send_result(send, result, request.media_type(), request_id, id_header=True)
        except BaseException:
            _answered(_FAILED, started)
            raise
        PREPARED_WRITES.inc()
        WRITE_FAST_LANE.inc()
        _answered(_OK, started)
        return True


def _planned(plans: WritePlans, body: bytes) -> tuple[WritePlan, dict[str, Any]] | None:
    """The mutation's plan and parameters, or None where the pipeline must see the body."""
    try:
        params = params_of(body)
    except Refused:
        return None
    if names_a_document(params):
        return None
    plan = plans.get(params["query"], params.get("operationName"))
    return None if plan is None else (plan, params)


async def _authenticated(runtime: Runtime, request: _Request) -> Principal | None:
    """The caller, or None: the pipeline's Authentication answers 401 / 503."""
    authorization = request.authorization
    try:
        return await runtime.auth.authenticate(
            None if authorization is None else authorization.decode("latin-1")
        )
    except GatewayError:
        return None


def _request_id(scope: Scope, request: _Request) -> str:
    """The request id, as RequestContextMiddleware gives it (and where the 500 handler reads it)."""
    incoming = request.request_id
    request_id = request_id_for(None if incoming is None else incoming.decode("latin-1"))
    scope["state"]["request_id"] = request_id
    return request_id


def _answered(series: CounterChild, started: float) -> None:
    """An answer the lane sent (or failed to): counted as RequestContextMiddleware counts it."""
    series.inc()
    _SECONDS.observe(time.perf_counter() - started)
