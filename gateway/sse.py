"""GraphQL over Server-Sent Events (graphql-sse, distinct connections mode), beside WebSockets.

For proxies that block WebSockets: a GET or POST to /graphql with `Accept: text/event-stream`
carrying {query, variables, operationName, extensions} is answered `text/event-stream`, one
`event: next` per result and a final `event: complete` (a query or mutation: one `next`). The
pipeline in front of this step already bounded and decoded the body and authenticated the
caller, so a refusal there (400, 401, 413, 503) is the usual JSON answer with a code; anything
GraphQL itself reports (parse, validation, limits, roles) comes as a `next` carrying the errors,
as the protocol requires once the stream is accepted.

Subscriptions run on `fanout.sharing_schema` with the same group key as graphql-transport-ws, so
an SSE subscriber and a WebSocket subscriber of an equal operation share each event's execution
and payload. A comment line (`: ping`) every SSE_KEEPALIVE_SECONDS keeps idle proxies from
closing the stream; a client that disconnects ends its subscription at once (the stream's task
is cancelled, which unregisters it from the hub). A slow reader is cut off as on WebSockets: its
hub queue overflows and its stream ends with SERVICE_UNAVAILABLE (reason SLOW_SUBSCRIBER).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import Gauge
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.http import process_result
from strawberry.http.streaming import SSETransport
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.aio import aclosing

from gateway import fanout
from gateway.metrics import count_operation
from gateway.pipeline import PARAMS, PRINCIPAL, header, is_graphql_http, state
from gateway.responses import code_uncoded_errors, error_body, error_response
from resolvers.context import Context
from resolvers.errors import BadUserInput, Forbidden, Unavailable

if TYPE_CHECKING:
    from gateway.graphql_app import GraphQLApp
    from gateway.runtime import Runtime

__all__ = ["EVENT_STREAM_PATH", "EventStreams", "end_event_streams", "wants_event_stream"]

log = logging.getLogger("gateway.errors")

OPEN_STREAMS = Gauge("gateway_sse_streams", "Open graphql-sse event streams on this process")
# The `path` label of HTTP metrics for /graphql event streams: their duration is a stream's
# lifetime, kept out of the /graphql latency histogram.
EVENT_STREAM_PATH = "/graphql:sse"

_TRANSPORT = SSETransport()
_HEADERS = [(k.lower().encode(), v.encode()) for k, v in _TRANSPORT.headers.items()]
_PING = _TRANSPORT.encode_comment("ping").encode()
_COMPLETE = _TRANSPORT.encode_event("complete").encode()

# Streams of this process that a graceful shutdown ends (see end_event_streams).
_stops: set[asyncio.Future[None]] = set()
_draining = False


def wants_event_stream(scope: Scope) -> bool:
    """An HTTP request to /graphql that accepts `text/event-stream`."""
    if not is_graphql_http(scope):
        return False
    accept = header(scope, b"accept")
    return accept is not None and _TRANSPORT.accepts(accept)


def end_event_streams() -> int:
    """End every open stream (without `complete`) and refuse new ones: the server is stopping.

    uvicorn's graceful shutdown waits for every HTTP response to finish, and a subscription's
    never does; `gateway serve` calls this first, so a rolling restart takes seconds and the
    clients reconnect (to another replica) as they do after any dropped connection.
    """
    global _draining  # noqa: PLW0603 - one flag per process, like the server it describes
    _draining = True
    for stop in _stops:
        if not stop.done():
            stop.set_result(None)
    return len(_stops)


def _next_event(result: ExecutionResult, request_id: str) -> bytes:
    """One `next` event: the shared payload text when the group has one, else this result's."""
    text = None if result.errors or result.extensions else fanout.results.payload(result.data)
    if text is None:
        body: dict[str, Any] = dict(process_result(result))
        code_uncoded_errors(body, request_id)
        text = orjson.dumps(body).decode()
    return _TRANSPORT.encode_event("next", text).encode()


def _forbidden_event(reason: str) -> bytes:
    """The `next` event that ends a stream whose credential was revoked or expired."""
    return _TRANSPORT.encode_event("next", error_body(Forbidden(reason)).decode()).encode()


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStreams:
    """Pipeline step: answers /graphql requests that accept `text/event-stream` (graphql-sse).

    Sits after Authentication (the principal is known) and before IdempotencyKeys: a stream is
    not an answer that can be stored and replayed, so an Idempotency-Key is refused here.
    """

    def __init__(self, app: ASGIApp, *, view: GraphQLApp) -> None:
        self.app = app
        self.view = view

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not wants_event_stream(scope):
            await self.app(scope, receive, send)
            return
        if header(scope, b"idempotency-key") is not None:
            error = BadUserInput(
                "Idempotency-Key is not accepted with Accept: text/event-stream; "
                "send the mutation as application/json to make it idempotent.",
                field="Idempotency-Key",
            )
            await error_response(error, 400)(scope, receive, send)
            return
        if _draining:
            unavailable = Unavailable("this process is shutting down; connect again")
            await error_response(unavailable, 503)(scope, receive, send)
            return
        runtime: Runtime = state(scope)["runtime"]
        request = Request(scope, receive)
        context = await self.view.get_context(request, None)
        results = await self._execute(scope, context)
        stream = _Stream(send, context.request_id)
        credential = runtime.auth.credential(header(scope, b"authorization") or "")
        unwatch = runtime.sessions.watch(credential, stream.forbid)
        try:
            await stream.relay(results, receive, runtime.settings.sse_keepalive_seconds)
        finally:
            unwatch()

    async def _execute(self, scope: Scope, context: Context) -> AsyncIterator[Any]:
        """The operation's results, on the sharing schema with its fan-out group key."""
        request_state = state(scope)
        params: dict[str, Any] = request_state[PARAMS]
        query, variables = params["query"], params.get("variables")
        name = params.get("operationName")
        key = fanout.share_key(request_state[PRINCIPAL], query, name, variables)
        extensions = params.get("extensions")
        if key is not None:
            extensions = {**(extensions or {}), fanout.SHARE_KEY: key}
        return await fanout.sharing_schema(self.view.schema).stream(
            query,
            variable_values=variables,
            context_value=context,
            operation_name=name,
            operation_extensions=extensions,
            allowed_operation_types=OperationType.from_http(scope["method"]),
        )


class _Stream:
    """One response: results as `next` events, keep-alive comments, ended by either side."""

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self._request_id = request_id
        self._lock = asyncio.Lock()  # the pump's events and the pings are whole chunks
        self._completed = False
        self._stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._forbidden: str | None = None

    async def forbid(self, reason: str) -> None:
        """The credential was revoked or expired (gateway/session_watch.py): end the stream.

        It ends with a `next` carrying a FORBIDDEN error and `complete`, so the client knows
        not to reconnect with the same credential.
        """
        self._forbidden = reason
        if not self._stop.done():
            self._stop.set_result(None)

    async def _write(self, chunk: bytes, *, last: bool = False) -> None:
        async with self._lock:
            if self._completed:  # nothing follows `complete` (a late ping)
                return
            self._completed = last
            await self._send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def _pump(self, results: AsyncIterator[Any]) -> None:
        """Every result as a `next` event, then `complete`; iterated in this one task only."""
        async with aclosing(results):
            first = True
            async for result in results:
                if first:
                    first = False
                    count_operation(result.data)
                await self._write(_next_event(result, self._request_id))
        await self._write(_COMPLETE, last=True)

    async def relay(self, results: AsyncIterator[Any], receive: Receive, keepalive: float) -> None:
        await self._send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        pump = asyncio.create_task(self._pump(results), name="gateway-sse")
        gone = asyncio.create_task(_until_disconnect(receive), name="gateway-sse-disconnect")
        stop = self._stop
        _stops.add(stop)
        OPEN_STREAMS.inc()
        try:
            while not (pump.done() or gone.done() or stop.done()):
                done, _ = await asyncio.wait(
                    {pump, gone, stop}, timeout=keepalive, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    await self._write(_PING)
        finally:
            _stops.discard(stop)
            OPEN_STREAMS.dec()
            client_gone = gone.done() and not gone.cancelled()
            pump.cancel()  # on disconnect or shutdown: unregisters the subscriber from the hub
            gone.cancel()
            await asyncio.gather(pump, gone, return_exceptions=True)
        if not pump.cancelled() and pump.exception() is not None:
            log.error(
                "event stream failed (request %s)", self._request_id, exc_info=pump.exception()
            )
        if not client_gone:
            if self._forbidden is not None and not self._completed:
                await self._write(_forbidden_event(self._forbidden))
                await self._write(_COMPLETE, last=True)
            # End the chunked body; without `complete` when the stream did not finish itself.
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
