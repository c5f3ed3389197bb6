"""Limits (DOMAIN.md §1.1-1.2, §3.1): filters of the `limits` list and the limit writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, map_db_errors
from drivers.mapping import LIMIT
from drivers.records import LimitRecord

__all__ = ["LimitFilter", "fetch_limit", "insert_limit", "limit_filter_clauses", "update_limit"]

_lim = t.limits


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitFilter:
    """Filters of the `limits` list; `limit_type` ending in `*` is a prefix match."""

    category: tuple[str, ...] | None = None
    status: tuple[str, ...] | None = None
    scope: tuple[str, ...] | None = None
    enforcement: tuple[str, ...] | None = None
    limit_type: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def limit_filter_clauses(f: LimitFilter) -> list[ColumnElement[bool]]:
    """Translate a filter into WHERE clauses (the tenant filter is added by the caller)."""
    clauses: list[ColumnElement[bool]] = []
    for column, values in (
        (_lim.c.limit_category, f.category),
        (_lim.c.status, f.status),
        (_lim.c.scope, f.scope),
        (_lim.c.enforcement, f.enforcement),
    ):
        if values is not None:
            clauses.append(column.in_(values))
    if f.limit_type is not None:
        if f.limit_type.endswith("*"):
            clauses.append(_lim.c.limit_type.startswith(f.limit_type[:-1], autoescape=True))
        else:
            clauses.append(_lim.c.limit_type == f.limit_type)
    if f.created_after is not None:
        clauses.append(_lim.c.created_at >= f.created_after)
    if f.created_before is not None:
        clauses.append(_lim.c.created_at < f.created_before)
    return clauses


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
