"""Stored answers for the Idempotency-Key header (API.md): claim, store, release, purge.

A key is claimed by inserting a pending row (no answer yet) in its own short transaction, so two
concurrent requests with one key cannot both run, on any replica, without holding a connection
for the length of the request. Rows older than the retention are treated as absent and reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from drivers import tables as t
from drivers.errors import map_db_errors

__all__ = [
    "RETENTION",
    "StoredAnswer",
    "claim_key",
    "purge_idempotency_keys",
    "release_key",
    "store_answer",
]

RETENTION = timedelta(hours=24)
_k = t.idempotency_keys


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What a key already holds: the first request's hash and, once it finished, its answer."""

    request_hash: str
    status_code: int | None
    content_type: str | None
    body: bytes | None
    created_at: datetime


def _key(tenant_id: str, actor: str, key: str) -> ColumnElement[bool]:
    return and_(_k.c.tenant_id == tenant_id, _k.c.actor == actor, _k.c.key == key)


async def claim_key(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    actor: str,
    key: str,
    request_hash: str,
    abandon_after: timedelta,
) -> StoredAnswer | None:
    """Claim a key for this request; return None when claimed, else what the key holds.

    A row past the retention, or a pending row older than `abandon_after` (its process died
    before answering), is taken over as if it did not exist.
    """
    now = func.now()
    stmt = (
        insert(_k)
        .values(tenant_id=tenant_id, actor=actor, key=key, request_hash=request_hash)
        .on_conflict_do_update(
            index_elements=[_k.c.tenant_id, _k.c.actor, _k.c.key],
            set_={
                "request_hash": request_hash,
                "status_code": None,
                "content_type": None,
                "body": None,
                "created_at": now,
            },
            where=or_(
                _k.c.created_at < now - literal(RETENTION),
                and_(_k.c.status_code.is_(None), _k.c.created_at < now - literal(abandon_after)),
            ),
        )
        .returning(_k.c.key)
    )
    with map_db_errors():
        if (await conn.execute(stmt)).first() is not None:
            return None
        row = (
            await conn.execute(
                select(
                    _k.c.request_hash,
                    _k.c.status_code,
                    _k.c.content_type,
                    _k.c.body,
                    _k.c.created_at,
                ).where(_key(tenant_id, actor, key))
            )
        ).one()
    return StoredAnswer(*row)


async def store_answer(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    actor: str,
    key: str,
    status_code: int,
    content_type: str | None,
    body: bytes,
) -> None:
    """Keep the first request's answer for replays."""
    with map_db_errors():
        await conn.execute(
            update(_k)
            .where(_key(tenant_id, actor, key))
            .values(status_code=status_code, content_type=content_type, body=body)
        )


async def release_key(conn: AsyncConnection, *, tenant_id: str, actor: str, key: str) -> None:
    """Drop a pending claim whose request failed transiently, so a retry can run again."""
    with map_db_errors():
        pending = _k.c.status_code.is_(None)
        await conn.execute(delete(_k).where(_key(tenant_id, actor, key), pending))


async def purge_idempotency_keys(conn: AsyncConnection) -> int:
    """Delete answers past the retention; return how many."""
    with map_db_errors():
        result = await conn.execute(
            delete(_k).where(_k.c.created_at < func.now() - literal(RETENTION))
        )
    return int(result.rowcount or 0)
