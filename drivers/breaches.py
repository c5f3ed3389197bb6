"""Limit breaches (DOMAIN.md §1.3, §3.2): list filters, existence checks and the append."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, map_db_errors
from drivers.mapping import LIMIT_BREACH
from drivers.records import LimitBreachRecord

__all__ = ["BreachFilter", "breach_filter_clauses", "ensure_exists", "insert_breach"]

_brk = t.limit_breaches
_BY_ENTITY: dict[str, Table] = {"Run": t.runs, "Incident": t.incidents, "Limit": t.limits}


@dataclass(frozen=True, slots=True, kw_only=True)
class BreachFilter:
    limit_id: str | None = None
    run_id: str | None = None
    breach_type: str | None = None
    since: datetime | None = None


def breach_filter_clauses(f: BreachFilter) -> list[ColumnElement[bool]]:
    """WHERE clauses of the `limitBreaches` list (the tenant filter is added by the caller)."""
    clauses: list[ColumnElement[bool]] = []
    if f.limit_id is not None:
        clauses.append(_brk.c.limit_id == f.limit_id)
    if f.run_id is not None:
        clauses.append(_brk.c.run_id == f.run_id)
    if f.breach_type is not None:
        clauses.append(_brk.c.breach_type == f.breach_type)
    if f.since is not None:
        clauses.append(_brk.c.breached_at >= f.since)
    return clauses


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
