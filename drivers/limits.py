"""Limits (DOMAIN.md §1.1-1.2, §3.1): the limit writes (list filters: drivers/mapping.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, map_db_errors
from drivers.mapping import LIMIT
from drivers.records import LimitRecord

__all__ = ["fetch_limit", "insert_limit", "update_limit"]

_lim = t.limits


# --- writes (DOMAIN.md §3.1) ----------------------------------------------------------------------


async def fetch_limit(
    conn: AsyncConnection, *, tenant_id: str, limit_id: str, lock: bool = False
) -> LimitRecord:
    """One limit of the tenant with its derived values, or NotFound; `lock` takes a row lock."""
    with map_db_errors():
        if lock:
            locked = await conn.execute(
                select(_lim.c.id)
                .where(_lim.c.tenant_id == tenant_id, _lim.c.id == limit_id)
                .with_for_update()
            )
            if locked.first() is None:
                raise NotFound("Limit", limit_id)
        stmt = select(*LIMIT.columns).where(_lim.c.tenant_id == tenant_id, _lim.c.id == limit_id)
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("Limit", limit_id)
    return LIMIT.record(*row)


async def insert_limit(
    conn: AsyncConnection, *, tenant_id: str, values: dict[str, Any], now: datetime
) -> str:
    """Insert an ACTIVE limit and its integrity row (VERIFIED, 1.0000); returns the new id."""
    stmt = (
        insert(_lim)
        .values(tenant_id=tenant_id, status="ACTIVE", created_at=now, updated_at=now, **values)
        .returning(_lim.c.id)
    )
    with map_db_errors():
        limit_id = str((await conn.execute(stmt)).scalar_one())
        await conn.execute(
            insert(t.limit_integrity).values(
                tenant_id=tenant_id,
                limit_id=limit_id,
                integrity_status="VERIFIED",
                integrity_score=Decimal("1.0000"),
                computed_at=now,
            )
        )
    return limit_id


async def update_limit(
    conn: AsyncConnection, *, tenant_id: str, limit_id: str, values: dict[str, Any], now: datetime
) -> None:
    """Change some columns of one limit and bump updated_at."""
    stmt = (
        update(_lim)
        .where(_lim.c.tenant_id == tenant_id, _lim.c.id == limit_id)
        .values(updated_at=now, **values)
    )
    with map_db_errors():
        result = await conn.execute(stmt)
    if result.rowcount == 0:
        raise NotFound("Limit", limit_id)
