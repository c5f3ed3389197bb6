"""The read fast lane: a POST whose exact body was a compiled read before skips the pipeline.

Issue #14 item 6: on the repeated-read shortcut (gateway/prepared_reads.py) most of a small
read's gateway CPU went to the pipeline around it, not to its one SELECT: ten middleware
coroutines, decoding and checking the body, the canonical JSON of the variables for the key,
Starlette's header wrappers. Everything those steps decide from the body alone (size, JSON,
parameters, the operation's key) is the same for the same bytes, so once the shortcut has
answered a body, the body's bytes are remembered with the operation key (`BodyKeys`), and the
next POST with the same bytes goes straight to the bound plan. What depends on the request
still runs here, every time: the caller is authenticated (a 401 or 503 is left to the
pipeline, which answers it), the plan is run for the caller's tenant and role, the request id,
the status and latency metrics, and the headers are those of the pipeline.

Anything else takes the full pipeline, with the body replayed to it: a body not remembered (or
larger than MAX_REMEMBERED_BODY), Idempotency-Key or X-Gateway-LSN (their steps act on it),
a streaming Accept (SSE, multipart), another content type, a credential that does not
authenticate, and a plan that is gone or declines (the pipeline runs it again). The lane is
only installed when no step could decide otherwise for the same bytes (gateway/app.py): not
with OTEL tracing (one span per request) nor with TRUSTED_DOCUMENTS=only (the registry is
consulted per request); and only bodies that name no document are remembered.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import READ_FAST_LANE
from gateway.pipeline import GRAPHQL_PATH
from gateway.prepared_reads import (
    FAST_BODY,
    MAX_REMEMBERED_BODY,
    BodyKeys,
    count_compiled,
    send_compiled,
)
from gateway.request_context import request_id_for, requests_series, seconds_series
from gateway.responses import response_media_type
from resolvers.compiled import Caller, PreparedCache, run_prepared
from resolvers.errors import GatewayError

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["ReadFastLane"]

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


class ReadFastLane:
    """Serves remembered bodies from their bound plans; see the module docstring."""

    def __init__(
        self, app: ASGIApp, *, prepared: PreparedCache, bodies: BodyKeys, max_bytes: int
    ) -> None:
        self.app = app
        self.prepared = prepared
        self.bodies = bodies
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
        key = self.bodies.get(body)
        if key is None:
            scope.setdefault("state", {})[FAST_BODY] = body
            await self.app(scope, replay, send)
            return
        if not await self._answer(scope, request, key, started, send):
            await self.app(scope, replay, send)

    async def _answer(
        self, scope: Scope, request: _Request, key: Hashable, started: float, send: Send
    ) -> bool:
        """Answer from the bound plan; False (nothing sent): the pipeline answers instead."""
        runtime: Runtime = scope["state"]["runtime"]
        authorization = request.authorization
        try:
            principal = await runtime.auth.authenticate(
                None if authorization is None else authorization.decode("latin-1")
            )
        except GatewayError:
            return False  # the pipeline's Authentication answers 401 / 503
        incoming = request.request_id
        request_id = request_id_for(None if incoming is None else incoming.decode("latin-1"))
        # As gateway/replica.ReadYourWrites: reads go to the replica when there is one.
        db = runtime.db if runtime.replica is None else runtime.replica.db
        caller = Caller(principal, runtime.breaker, request_id)
        try:
            answer = await run_prepared(db, caller, self.prepared, key)
            if answer is None:
                return False
            accept = request.accept
            media_type = response_media_type(None if accept is None else accept.decode("latin-1"))
            await send_compiled(send, answer, media_type, request_id)
        except BaseException:
            _FAILED.inc()
            raise
        finally:
            _SECONDS.observe(time.perf_counter() - started)
        count_compiled(answer)
        READ_FAST_LANE.inc()
        _OK.inc()
        return True
