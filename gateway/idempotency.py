"""The Idempotency-Key header (API.md): one write per key, the first answer replayed for 24 h.

Semantics follow the IETF draft "The Idempotency-Key HTTP Header Field": a key reused with a
different body → 422, a key whose first request is still running → 409, a malformed key → 400;
all three carry GraphQL-shaped errors with `extensions.code`. Answers that say "try again"
(SERVICE_UNAVAILABLE, INTERNAL, any 5xx) are not kept, so the client's retry really runs again.
Keys are scoped to (tenant, caller).

The answer is committed BEFORE its first byte is sent: a client that retries the moment the
response arrives must find the stored answer (a replay), never the pending claim (409).
"""

from __future__ import annotations

import hashlib
import logging
from contextlib import suppress
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drivers import idempotency as store
from gateway.pipeline import IDEMPOTENCY_KEY, PARAMS, PRINCIPAL, header, is_graphql_http, state
from gateway.responses import error_response, response_media_type
from resolvers.auth import Principal
from resolvers.errors import BadUserInput, Conflict, GatewayError, translate_errors

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["IdempotencyKeys", "purge_expired_keys"]

log = logging.getLogger("gateway")

REPLAYED_HEADER = "idempotent-replayed"
_MAX_KEY = 255
# A claim whose request never answered (its process died) is given up after this long.
_ABANDON_AFTER = timedelta(seconds=60)
_RETRY_CODES = frozenset({"SERVICE_UNAVAILABLE", "INTERNAL"})


def _request_hash(params: dict[str, Any]) -> str:
    """Hash the decoded request with sorted keys, so key order and spacing do not matter."""
    return hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _keepable(status: int, body: bytes) -> bool:
    if status >= 500:
        return False
    try:
        errors = orjson.loads(body).get("errors") or []
    except (orjson.JSONDecodeError, AttributeError):
        return True
    return not any((e.get("extensions") or {}).get("code") in _RETRY_CODES for e in errors)


class IdempotencyKeys:
    """Runs a POST carrying Idempotency-Key at most once per key; replays the stored answer after.

    The downstream answer is buffered, stored (or the claim released) and committed, and only
    then sent. Needs the principal and the decoded body from earlier in the pipeline.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, b"idempotency-key") if is_graphql_http(scope) else None
        if key is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not key or len(key) > _MAX_KEY or not key.isascii() or not key.isprintable():
            error = BadUserInput(
                "Idempotency-Key must be 1 to 255 printable ASCII characters.",
                field="Idempotency-Key",
            )
            await self._refuse(error, 400, scope, receive, send)
            return
        request_state = state(scope)
        runtime: Runtime = request_state["runtime"]
        principal: Principal = request_state[PRINCIPAL]
        request_state[IDEMPOTENCY_KEY] = key
        ids = {"tenant_id": principal.tenant_id, "actor": principal.subject, "key": key}
        request_hash = _request_hash(request_state[PARAMS])
        engine = runtime.db.primary
        try:
            with translate_errors():
                async with engine.begin() as conn:
                    held = await store.claim_key(
                        conn, request_hash=request_hash, abandon_after=_ABANDON_AFTER, **ids
                    )
        except GatewayError as exc:  # the database is down: nothing ran, the client retries
            await self._refuse(exc, 503, scope, receive, send)
            return
        if held is not None:
            await self._answer_held(held, request_hash, scope, receive, send)
            return

        messages: list[Message] = []

        async def buffer(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, receive, buffer)
        except BaseException:
            with suppress(GatewayError), translate_errors():  # the first failure is the news
                async with engine.begin() as conn:
                    await store.release_key(conn, **ids)
            raise
        try:
            with translate_errors():
                await _keep(engine, ids, messages)
        except GatewayError:
            # The operation ran; its answer still goes out. A retry meets the pending claim
            # (409) until it is abandoned.
            log.warning(
                "Idempotency-Key answer not stored (request %s)",
                request_state.get("request_id", "-"),
            )
        for message in messages:
            await send(message)

    async def _refuse(
        self, error: GatewayError, status: int, scope: Scope, receive: Receive, send: Send
    ) -> None:
        media_type = response_media_type(header(scope, b"accept"))
        await error_response(error, status, media_type=media_type)(scope, receive, send)

    async def _answer_held(
        self,
        held: store.StoredAnswer,
        request_hash: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if held.request_hash != request_hash:
            error = Conflict("This Idempotency-Key was already used with a different request.")
            await self._refuse(error, 422, scope, receive, send)
        elif held.status_code is None:  # the first request has not answered yet
            error = Conflict("A request with this Idempotency-Key is still running; retry later.")
            await self._refuse(error, 409, scope, receive, send)
        else:
            replay = Response(held.body or b"", status_code=held.status_code)
            if held.content_type:
                replay.headers["content-type"] = held.content_type
            replay.headers[REPLAYED_HEADER] = "true"
            await replay(scope, receive, send)


async def _keep(engine: AsyncEngine, ids: dict[str, str], messages: list[Message]) -> None:
    """Store the buffered answer for replays (or release the claim) and commit."""
    status = 500
    content_type: str | None = None
    for message in messages:
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() == b"content-type":
                    content_type = value.decode("latin-1")
    answer = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    async with engine.begin() as conn:
        if _keepable(status, answer):
            await store.store_answer(
                conn, status_code=status, content_type=content_type, body=answer, **ids
            )
        else:
            await store.release_key(conn, **ids)


async def purge_expired_keys(engine: AsyncEngine) -> int:
    """Background job: delete stored answers past the 24 h retention."""
    async with engine.begin() as conn:
        return await store.purge_idempotency_keys(conn)
