"""graphql-transport-ws: authentication in connection_init, shared fan-out, text frames."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, cast

import orjson
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.utils.aio import aclosing

from gateway import fanout, groups
from gateway.notifications import WATCHER
from gateway.runtime import Runtime
from gateway.trusted_documents import DOCUMENT_IDS, DocumentIds
from resolvers.context import Context
from resolvers.errors import GatewayError, Unauthenticated

if TYPE_CHECKING:
    from strawberry.schema.schema import StreamResult

__all__ = ["WS_FORBIDDEN", "WS_UNAVAILABLE", "TextWebSocketAdapter", "TransportWSHandler"]

log = logging.getLogger("gateway.errors")


# graphql-transport-ws close codes (see docs/decisions.md § Live subscriptions).
WS_FORBIDDEN = 4403  # connection_init without a valid token (the protocol's "Forbidden")
WS_UNAVAILABLE = 4500  # the token could not be checked (database down); retry later


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """Sends JSON as text frames: graphql-transport-ws messages are text, orjson gives bytes."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        await self.send_text(orjson.dumps(message).decode())

    async def send_text(self, text: str) -> None:
        """One text frame, already JSON (a shared subscription payload in its own frame)."""
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Authenticates `connection_init` with the same Authenticator as HTTP.

    The payload's `authorization` ("Bearer <token>") becomes the connection's principal; every
    operation on the socket then runs with a context for that principal. A missing or bad token
    closes the socket with 4403 before `connection_ack`; a subscribe before a successful
    `connection_init` is closed with 4401 by the protocol handler itself.

    Operations run on `fanout.sharing_schema`: subscribers of an equal operation (principal,
    document, operationName, variables) share each event's execution and its serialised
    payload; each gets it in its own `next` frame (gateway/fanout.py).

    A socket whose API key is revoked or whose JWT expires is closed with 4403 (its reason says
    which) by gateway/session_watch.py.
    """

    _unwatch: Callable[[], None] | None = None  # set once connection_init authenticated

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """Strawberry's, on the sharing schema with the operation's group key."""
        key = fanout.share_key(
            self.context.principal, operation.query, operation.operation_name, operation.variables
        )
        schema = fanout.sharing_schema(self.schema)
        if key is not None:
            # once its own stream has caught up, the group's shared stream serves this operation
            sink = groups.SocketSink.of(
                cast("TextWebSocketAdapter", self.websocket).ws, self.operations, operation
            )
            if sink is not None:
                spec = groups.OperationSpec(
                    schema,
                    operation.query,
                    operation.variables,
                    operation.operation_name,
                    self.context,
                    self.root_value,
                )
                WATCHER.set(groups.Member(key, sink, spec))  # this operation's task only
        try:
            result_source = await schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=self.context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
                operation_extensions=None if key is None else {fanout.SHARE_KEY: key},
            )
            async with aclosing(result_source):
                await self._send_result_stream(operation, result_source)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except _OperationStreamClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def _send_result_stream(
        self, operation: Operation[Context, None], result_source: StreamResult
    ) -> None:
        first = True
        async for result in result_source:
            if first and isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
                return
            if not isinstance(result, ExecutionResult):
                await self._reject_incremental_delivery(operation)
                return
            first = False
            shared = (
                None if result.errors or result.extensions else fanout.results.payload(result.data)
            )
            if shared is None:
                await operation.send_next(result)
            elif not operation.completed:
                adapter = cast("TextWebSocketAdapter", self.websocket)
                await adapter.send_text(
                    f'{{"id":{orjson.dumps(operation.id).decode()},"type":"next",'
                    f'"payload":{shared}}}'
                )

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """TRUSTED_DOCUMENTS as over HTTP: `documentId`/APQ resolved, `only` enforced."""
        payload = cast("dict[str, object]", message.get("payload"))
        websocket = cast("TextWebSocketAdapter", self.websocket).ws
        ids: DocumentIds | None = getattr(websocket.state, DOCUMENT_IDS, None)
        if (
            self.connection_acknowledged
            and isinstance(payload, dict)
            and ids is not None
            and ids.names_a_document(payload)
        ):
            runtime: Runtime = websocket.state.runtime
            try:
                await ids.resolve(payload, runtime.db.primary)
            except GatewayError as exc:
                frame = ErrorMessage(
                    id=message["id"],
                    type="error",
                    payload=[{"message": exc.message, "extensions": exc.extensions}],
                )
                await self.send_message(frame)
                return
        await super().handle_subscribe(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload") or {}
        if isinstance(payload, dict) and not (
            self.connection_init_received or self.connection_timed_out
        ):
            if self.connection_init_timeout_task:
                self.connection_init_timeout_task.cancel()
            websocket = cast("TextWebSocketAdapter", self.websocket).ws
            runtime: Runtime = websocket.state.runtime
            raw = payload.get("authorization") or payload.get("Authorization")
            authorization = raw if isinstance(raw, str) else ""  # "": missing, refused below
            try:
                principal = await runtime.auth.authenticate(authorization)
            except Unauthenticated as exc:
                log.info("websocket connection_init refused: %s", exc.message)
                self.connection_init_received = True
                await self.websocket.close(code=WS_FORBIDDEN, reason="Forbidden")
                return
            except Exception as exc:  # e.g. the database is down: the client retries later
                log.warning("websocket connection_init could not authenticate: %s", exc)
                self.connection_init_received = True
                await self.websocket.close(code=WS_UNAVAILABLE, reason="Service unavailable")
                return
            self.context = dataclasses.replace(self.context, principal=principal)
            credential = runtime.auth.credential(authorization)
            self._unwatch = runtime.sessions.watch(credential, self._forbid)
        await super().handle_connection_init(message)

    async def handle(self) -> None:
        """Strawberry's; the connection stops being watched for credential expiry when it ends."""
        try:
            await super().handle()
        finally:
            if self._unwatch is not None:
                self._unwatch()

    async def _forbid(self, reason: str) -> None:
        """The credential was revoked or expired (gateway/session_watch.py): close with 4403."""
        log.info("websocket closed: %s", reason)
        with suppress(Exception):  # already closing: nothing left to end
            await self.websocket.close(code=WS_FORBIDDEN, reason=reason)
