"""API keys: only a SHA-256 hash of each token is stored (DOMAIN.md §1.17)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, map_db_errors
from drivers.records import ApiKeyRecord

__all__ = [
    "TOKEN_PREFIX",
    "hash_token",
    "insert_api_key",
    "live_token_hashes",
    "revoke_api_key",
    "touch_api_key",
]

# Tokens carry a prefix so the gateway can tell them from JWTs without a database round trip.
TOKEN_PREFIX = "gwk_"  # noqa: S105 - a public prefix, not a secret
_COLUMNS = (
    t.api_keys.c.id,
    t.api_keys.c.tenant_id,
    t.api_keys.c.name,
    t.api_keys.c.role,
    t.api_keys.c.created_at,
    t.api_keys.c.last_used_at,
    t.api_keys.c.revoked_at,
)


def hash_token(token: str) -> str:
    """Hash a token; 256 random bits need no slow KDF, so a plain SHA-256 is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


async def insert_api_key(
    conn: AsyncConnection, *, tenant_id: str, role: str, name: str | None
) -> tuple[ApiKeyRecord, str]:
    """Create a key and return it with its token, which is never stored or shown again."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    stmt = (
        insert(t.api_keys)
        .values(tenant_id=tenant_id, role=role, name=name, token_hash=hash_token(token))
        .returning(*_COLUMNS)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return ApiKeyRecord(*row), token


async def revoke_api_key(conn: AsyncConnection, *, key_id: str) -> ApiKeyRecord:
    """Revoke a key by id (idempotent: the first revocation time is kept)."""
    stmt = (
        update(t.api_keys)
        .where(t.api_keys.c.id == key_id)
        .values(revoked_at=func.coalesce(t.api_keys.c.revoked_at, func.now()))
        .returning(*_COLUMNS)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("ApiKey", key_id)
    return ApiKeyRecord(*row)


async def touch_api_key(conn: AsyncConnection, *, token: str) -> ApiKeyRecord | None:
    """Look up a live key by token and stamp last_used_at, in one statement."""
    stmt = (
        update(t.api_keys)
        .where(t.api_keys.c.token_hash == hash_token(token), t.api_keys.c.revoked_at.is_(None))
        .values(last_used_at=func.now())
        .returning(*_COLUMNS)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else ApiKeyRecord(*row)


async def live_token_hashes(conn: AsyncConnection, *, hashes: list[str]) -> set[str]:
    """Which of these token hashes still belong to an unrevoked key (one statement)."""
    if not hashes:
        return set()
    stmt = select(t.api_keys.c.token_hash).where(
        t.api_keys.c.token_hash.in_(hashes), t.api_keys.c.revoked_at.is_(None)
    )
    with map_db_errors():
        return set((await conn.execute(stmt)).scalars())
