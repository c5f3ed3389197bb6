"""Limit breaches (DOMAIN.md §1.3, §3.2): existence checks and the append."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, map_db_errors
from drivers.mapping import LIMIT_BREACH
from drivers.records import LimitBreachRecord

__all__ = ["ensure_exists", "insert_breach"]

_brk = t.limit_breaches
_BY_ENTITY: dict[str, Table] = {"Run": t.runs, "Incident": t.incidents, "Limit": t.limits}


async def ensure_exists(
    conn: AsyncConnection, entity: str, *, tenant_id: str, entity_id: str
) -> None:
    """Raise NotFound unless the tenant has this Run, Incident or Limit."""
    table = _BY_ENTITY[entity]
    stmt = select(table.c.id).where(table.c.tenant_id == tenant_id, table.c.id == entity_id)
    with map_db_errors():
        found = (await conn.execute(stmt)).first()
    if found is None:
        raise NotFound(entity, entity_id)


async def insert_breach(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    limit_id: str,
    breach_type: str,
    value_at_breach: Decimal | None,
    limit_value: Decimal,
    run_id: str | None,
    incident_id: str | None,
    details: Any,
    now: datetime,
) -> LimitBreachRecord:
    """Append one breach row (new uuid, breached_at = now)."""
    stmt = (
        insert(_brk)
        .values(
            tenant_id=tenant_id,
            limit_id=limit_id,
            breach_type=breach_type,
            value_at_breach=value_at_breach,
            limit_value=limit_value,
            run_id=run_id,
            incident_id=incident_id,
            details=details,
            breached_at=now,
        )
        .returning(*LIMIT_BREACH.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return LIMIT_BREACH.record(*row)
