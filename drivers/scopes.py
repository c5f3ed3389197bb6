"""Execution scopes (DOMAIN.md §1.16, §3.6): persisted, row-locked, valid across replicas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, StaleState, map_db_errors
from drivers.mapping import EXECUTION_SCOPE
from drivers.records import ExecutionScopeRecord

__all__ = [
    "claim_expired_scope",
    "fetch_scope",
    "insert_recovery_evidence",
    "insert_scope",
    "update_scope",
]

_scp = t.execution_scopes


async def insert_scope(
    conn: AsyncConnection, *, tenant_id: str, values: dict[str, Any]
) -> ExecutionScopeRecord:
    """Insert one ACTIVE scope (id `scope_` + 24 hex from the column default)."""
    stmt = (
        insert(_scp)
        .values(tenant_id=tenant_id, status="ACTIVE", **values)
        .returning(*EXECUTION_SCOPE.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return EXECUTION_SCOPE.record(*row)


async def fetch_scope(
    conn: AsyncConnection, *, tenant_id: str, scope_id: str, lock: bool = False
) -> ExecutionScopeRecord:
    """One scope of the tenant, row-locked (FOR UPDATE) when `lock`, or NotFound."""
    stmt = select(*EXECUTION_SCOPE.columns).where(
        _scp.c.tenant_id == tenant_id, _scp.c.id == scope_id
    )
    if lock:
        stmt = stmt.with_for_update()
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("ExecutionScope", scope_id)
    return EXECUTION_SCOPE.record(*row)


async def update_scope(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    scope_id: str,
    expected_status: str,
    values: dict[str, Any],
) -> ExecutionScopeRecord:
    """Update a scope guarded by its status (StaleState if it moved on)."""
    stmt = (
        update(_scp)
        .where(
            _scp.c.tenant_id == tenant_id,
            _scp.c.id == scope_id,
            _scp.c.status == expected_status,
        )
        .values(**values)
        .returning(*EXECUTION_SCOPE.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise StaleState(f"scope {scope_id} is no longer {expected_status}")
    return EXECUTION_SCOPE.record(*row)


async def insert_recovery_evidence(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    incident_id: str,
    payload: dict[str, Any],
    now: datetime,
) -> str:
    """Append the RECOVERY_ACTION evidence of one scoped execution; returns its id."""
    stmt = (
        insert(t.incident_evidence)
        .values(
            tenant_id=tenant_id,
            incident_id=incident_id,
            evidence_type="RECOVERY_ACTION",
            recovery_executed=True,
            payload=payload,
            created_at=now,
        )
        .returning(t.incident_evidence.c.id)
    )
    with map_db_errors():
        return str((await conn.execute(stmt)).scalar_one())


async def claim_expired_scope(
    conn: AsyncConnection, *, now: datetime
) -> tuple[str, ExecutionScopeRecord] | None:
    """Lock one ACTIVE scope of any tenant past expires_at (SKIP LOCKED): (tenant, scope)."""
    stmt = (
        select(_scp.c.tenant_id, *EXECUTION_SCOPE.columns)
        .where(_scp.c.status == "ACTIVE", _scp.c.expires_at <= now)
        .order_by(_scp.c.expires_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else (str(row[0]), EXECUTION_SCOPE.record(*row[1:]))
