"""Bearer-token authentication: API keys (hashed at rest) and HS256 JWTs → Principal.

`Authentication` is the pipeline's middleware for HTTP; WebSockets authenticate in
`connection_init` with the same Authenticator (gateway/websocket.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from drivers.api_keys import TOKEN_PREFIX, hash_token, live_token_hashes, touch_api_key
from gateway.pipeline import PRINCIPAL, header, is_graphql_http, state
from gateway.responses import error_response, response_media_type
from resolvers.auth import Principal, Role
from resolvers.errors import GatewayError, Unauthenticated, translate_errors

if TYPE_CHECKING:  # gateway.runtime holds an Authenticator
    from gateway.runtime import Runtime

__all__ = ["Authentication", "Authenticator", "Credential"]

_ROLES = {r.value: r for r in Role}


@dataclass(frozen=True, slots=True)
class Credential:
    """What a long-lived connection must keep checking: its API key, or its JWT's expiry."""

    key_hash: str | None  # an API key's token hash (re-checked while the connection is open)
    expires: float = math.inf  # a JWT's `exp` (Unix time); inf without one


class Authenticator:
    """Turns an Authorization header into a Principal, or raises Unauthenticated.

    API-key lookups are cached per process for `cache_seconds` (0 disables the cache), so a hot
    key costs no SQL; a revoked key stops working within that time. A JWT that verified is kept
    until its `exp`: a JWT cannot be revoked, so re-verifying the same token string (HMAC, JSON,
    claim checks: ~40 µs) could only ever give the same principal until it expires.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        jwt_secret: str | None,
        jwt_audience: str | None = None,
        jwt_issuer: str | None = None,
        cache_seconds: float = 10.0,
    ) -> None:
        self._engine = engine
        self._jwt_secret = jwt_secret
        self._jwt_audience = jwt_audience
        self._jwt_issuer = jwt_issuer
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._jwts: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        """Authenticate one `Authorization: Bearer <token>` value."""
        if not authorization:
            raise Unauthenticated("missing bearer token")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("expected 'Authorization: Bearer <token>'")
        if token.startswith(TOKEN_PREFIX):
            return await self._api_key(token)
        return self._jwt(token)

    def credential(self, authorization: str) -> Credential:
        """What an open WebSocket or event stream authenticated with `authorization` is bound to.

        Only after `authenticate` accepted it (a JWT's expiry then comes from its cache).
        """
        token = authorization.strip().partition(" ")[2].strip()
        if token.startswith(TOKEN_PREFIX):
            return Credential(hash_token(token))
        hit = self._jwts.get(token)
        if hit is not None:
            return Credential(None, hit[0])
        try:  # the cache was cleared meanwhile
            return Credential(None, self._verify_jwt(token)[1])
        except Unauthenticated:  # expired since: the connection ends at once
            return Credential(None, 0.0)

    async def revoked_keys(self, key_hashes: Collection[str]) -> set[str]:
        """Which of these API keys no longer work (one query); they also leave the cache."""
        with translate_errors():
            async with self._engine.connect() as conn:
                live = await live_token_hashes(conn, hashes=list(key_hashes))
        revoked = set(key_hashes) - live
        for digest in revoked:
            self._cache.pop(digest, None)
        return revoked

    async def _api_key(self, token: str) -> Principal:
        digest = hash_token(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with translate_errors():
            async with self._engine.begin() as conn:
                record = await touch_api_key(conn, token=token)
        if record is None:
            self._cache.pop(digest, None)
            raise Unauthenticated("unknown or revoked API key")
        principal = Principal(
            record.tenant_id, f"apikey:{record.name or record.id}", _ROLES[record.role]
        )
        if self._cache_seconds > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self._cache_seconds, principal)
        return principal

    def _jwt(self, token: str) -> Principal:
        hit = self._jwts.get(token)
        if hit is not None and time.time() < hit[0]:
            return hit[1]
        principal, expires = self._verify_jwt(token)
        if len(self._jwts) > 10_000:
            self._jwts.clear()
        self._jwts[token] = (expires, principal)
        return principal

    def _verify_jwt(self, token: str) -> tuple[Principal, float]:
        if not self._jwt_secret:
            raise Unauthenticated("JWT authentication is not configured")
        try:
            claims = jwt.decode(
                token,
                self._jwt_secret,
                algorithms=["HS256"],
                audience=self._jwt_audience,
                issuer=self._jwt_issuer,
                options={"require": ["sub", "tenant_id", "role"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        sub, tenant, role = claims["sub"], claims["tenant_id"], claims["role"]
        if not (isinstance(sub, str) and sub and isinstance(tenant, str) and tenant):
            raise Unauthenticated("invalid token: sub and tenant_id must be non-empty strings")
        if role not in _ROLES:
            raise Unauthenticated(f"invalid token: unknown role {role!r}")
        exp = claims.get("exp")
        expires = float(exp) if isinstance(exp, int | float) else math.inf
        return Principal(tenant, sub, _ROLES[role]), expires


class Authentication:
    """No /graphql HTTP request goes further without a principal: 401 (503 if keys can't be read).

    The principal goes on in `scope["state"]` for the Idempotency-Key, the shortcut and GraphQL.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_graphql_http(scope):
            await self.app(scope, receive, send)
            return
        request_state = state(scope)
        runtime: Runtime = request_state["runtime"]
        try:
            principal = await runtime.auth.authenticate(header(scope, b"authorization"))
        except GatewayError as exc:
            unauthenticated = isinstance(exc, Unauthenticated)
            response = error_response(
                exc,
                401 if unauthenticated else 503,
                media_type=response_media_type(header(scope, b"accept")),
                headers={"www-authenticate": "Bearer"} if unauthenticated else None,
            )
            await response(scope, receive, send)
            return
        request_state[PRINCIPAL] = principal
        await self.app(scope, receive, send)
