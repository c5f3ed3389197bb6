"""Limit overrides (DOMAIN.md §1.4, §3.3): reads for checks, guarded state changes, job claims."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, StaleState, map_db_errors
from drivers.mapping import LIMIT_OVERRIDE
from drivers.records import LimitOverrideRecord
from drivers.rules.overrides import OPEN_STATUSES

__all__ = [
    "claim_due",
    "count_active_overrides",
    "fetch_open_override_id",
    "fetch_override",
    "insert_override",
    "lock_tenant_overrides",
    "set_override_status",
]

_ovr = t.limit_overrides


async def fetch_override(
    conn: AsyncConnection, *, tenant_id: str, override_id: str, lock: bool = False
) -> LimitOverrideRecord:
    """One override of the tenant (optionally row-locked), or NotFound."""
    with map_db_errors():
        if lock:
            locked = await conn.execute(
                select(_ovr.c.id)
                .where(_ovr.c.tenant_id == tenant_id, _ovr.c.id == override_id)
                .with_for_update()
            )
            if locked.first() is None:
                raise NotFound("LimitOverride", override_id)
        stmt = select(*LIMIT_OVERRIDE.columns).where(
            _ovr.c.tenant_id == tenant_id, _ovr.c.id == override_id
        )
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("LimitOverride", override_id)
    return LIMIT_OVERRIDE.record(*row)


async def lock_tenant_overrides(conn: AsyncConnection, *, tenant_id: str) -> None:
    """Serialize every path to ACTIVE of one tenant until commit (transaction advisory lock).

    Request, approval and the activation job take it before counting, so "at most 5 ACTIVE per
    tenant" is exact under concurrency in any number of processes; one-open-per-limit is also
    guaranteed by the unique index, whatever takes this lock.
    """
    key = func.hashtextextended(literal("limit_overrides:") + tenant_id, 0)
    with map_db_errors():
        await conn.execute(select(func.pg_advisory_xact_lock(key)))


async def count_active_overrides(conn: AsyncConnection, *, tenant_id: str) -> int:
    """How many ACTIVE overrides the tenant holds."""
    stmt = select(func.count()).where(_ovr.c.tenant_id == tenant_id, _ovr.c.status == "ACTIVE")
    with map_db_errors():
        return int((await conn.execute(stmt)).scalar_one())


async def fetch_open_override_id(
    conn: AsyncConnection, *, tenant_id: str, limit_id: str
) -> str | None:
    """The limit's PENDING, APPROVED or ACTIVE override, if any."""
    stmt = select(_ovr.c.id).where(
        _ovr.c.tenant_id == tenant_id,
        _ovr.c.limit_id == limit_id,
        _ovr.c.status.in_(OPEN_STATUSES),
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else str(row[0])


async def insert_override(conn: AsyncConnection, *, tenant_id: str, values: dict[str, Any]) -> str:
    """Insert one override; the unique partial index refuses a second open one per limit."""
    stmt = insert(_ovr).values(tenant_id=tenant_id, **values).returning(_ovr.c.id)
    with map_db_errors():
        return str((await conn.execute(stmt)).scalar_one())


async def set_override_status(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    override_id: str,
    expected: tuple[str, ...],
    values: dict[str, Any],
) -> None:
    """Update an override guarded by its expected status (StaleState if it moved on)."""
    stmt = (
        update(_ovr)
        .where(
            _ovr.c.tenant_id == tenant_id,
            _ovr.c.id == override_id,
            _ovr.c.status.in_(expected),
        )
        .values(**values)
    )
    with map_db_errors():
        result = await conn.execute(stmt)
    if result.rowcount == 0:
        raise StaleState(f"override {override_id} is no longer {'/'.join(expected)}")


async def claim_due(
    conn: AsyncConnection,
    *,
    status: str,
    column: str,
    now: datetime,
    skip: frozenset[str] = frozenset(),
) -> tuple[str, str] | None:
    """Lock one override of any tenant in `status` whose `column` ≤ now (SKIP LOCKED).

    `skip` holds ids this run already left where they were (activation deferred by the cap).
    Returns (tenant_id, id) or None when nothing is due.
    """
    due_col = _ovr.c[column]
    clauses = [_ovr.c.status == status, due_col <= now]
    if skip:
        clauses.append(_ovr.c.id.not_in(skip))
    stmt = (
        select(_ovr.c.tenant_id, _ovr.c.id)
        .where(*clauses)
        .order_by(due_col)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else (str(row[0]), str(row[1]))
