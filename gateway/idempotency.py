"""The Idempotency-Key header (API.md): one write per key, the first answer replayed for 24 h.

Semantics follow the IETF draft "The Idempotency-Key HTTP Header Field": a key reused with a
different body → 422, a key whose first request is still running → 409, a malformed key → 400;
all three carry GraphQL-shaped errors with `extensions.code`. Answers that say "try again"
(SERVICE_UNAVAILABLE, INTERNAL, any 5xx) are not kept, so the client's retry really runs again.
Keys are scoped to (tenant, caller).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drivers import idempotency as store
from gateway.responses import error_response
from resolvers.auth import Principal
from resolvers.errors import BadUserInput, Conflict, GatewayError

__all__ = ["HEADER", "purge_expired_keys", "run_idempotent"]

HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
_MAX_KEY = 255
# A claim whose request never answered (its process died) is given up after this long.
_ABANDON_AFTER = timedelta(seconds=60)
_RETRY_CODES = frozenset({"SERVICE_UNAVAILABLE", "INTERNAL"})


def _request_hash(body: bytes) -> str:
    """Hash the request as JSON with sorted keys, so key order and spacing do not matter."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def _keepable(status: int, body: bytes) -> bool:
    if status >= 500:
        return False
    try:
        errors = orjson.loads(body).get("errors") or []
    except (orjson.JSONDecodeError, AttributeError):
        return True
    return not any((e.get("extensions") or {}).get("code") in _RETRY_CODES for e in errors)


async def run_idempotent(
    app: ASGIApp,
    *,
    engine: AsyncEngine,
    principal: Principal,
    key: str,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Run `app` for this request at most once per key, replaying the stored answer after."""
    if not key or len(key) > _MAX_KEY or not key.isascii() or not key.isprintable():
        error = BadUserInput(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.", field="Idempotency-Key"
        )
        await error_response(error, 400)(scope, receive, send)
        return
    body = await _read_body(receive)
    ids = {"tenant_id": principal.tenant_id, "actor": principal.subject, "key": key}
    request_hash = _request_hash(body)
    async with engine.begin() as conn:
        held = await store.claim_key(
            conn, request_hash=request_hash, abandon_after=_ABANDON_AFTER, **ids
        )
    if held is not None:
        await _answer_held(held, request_hash, scope, receive, send)
        return

    status = 500
    content_type: str | None = None
    chunks: list[bytes] = []

    async def replay_body() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def capture(message: Message) -> None:
        nonlocal status, content_type
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() == b"content-type":
                    content_type = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
        await send(message)

    try:
        await app(scope, replay_body, capture)
    except BaseException:
        async with engine.begin() as conn:
            await store.release_key(conn, **ids)
        raise
    answer = b"".join(chunks)
    async with engine.begin() as conn:
        if _keepable(status, answer):
            await store.store_answer(
                conn, status_code=status, content_type=content_type, body=answer, **ids
            )
        else:
            await store.release_key(conn, **ids)


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _answer_held(
    held: store.StoredAnswer, request_hash: str, scope: Scope, receive: Receive, send: Send
) -> None:
    if held.request_hash != request_hash:
        error: GatewayError = Conflict(
            "This Idempotency-Key was already used with a different request."
        )
        await error_response(error, 422)(scope, receive, send)
    elif held.status_code is None:  # the first request has not answered yet
        error = Conflict("A request with this Idempotency-Key is still running; retry later.")
        await error_response(error, 409)(scope, receive, send)
    else:
        replay = Response(held.body or b"", status_code=held.status_code)
        if held.content_type:
            replay.headers["content-type"] = held.content_type
        replay.headers[REPLAYED_HEADER] = "true"
        await replay(scope, receive, send)


async def purge_expired_keys(engine: AsyncEngine) -> int:
    """Background job: delete stored answers past the 24 h retention."""
    async with engine.begin() as conn:
        return await store.purge_idempotency_keys(conn)
