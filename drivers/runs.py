"""Runs (DOMAIN.md §1.12): the few writes the governance paths make."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, map_db_errors
from drivers.mapping import RUN
from drivers.records import RunRecord

__all__ = [
    "fetch_run_for_update",
    "has_run_incident",
    "increment_incident_count",
    "insert_incident_proposal",
    "set_run_failed",
]

_run = t.runs


async def fetch_run_for_update(conn: AsyncConnection, *, tenant_id: str, run_id: str) -> RunRecord:
    """Lock one run of the tenant, or raise NotFound (also for another tenant's run)."""
    stmt = (
        select(*RUN.columns)
        .where(_run.c.tenant_id == tenant_id, _run.c.id == run_id)
        .with_for_update()
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("Run", run_id)
    return RUN.record(*row)


async def set_run_failed(
    conn: AsyncConnection, *, tenant_id: str, run_id: str, error_message: str, now: datetime
) -> RunRecord:
    """Mark a run FAILED with its error message, completed now."""
    stmt = (
        update(_run)
        .where(_run.c.tenant_id == tenant_id, _run.c.id == run_id)
        .values(status="FAILED", error_message=error_message, completed_at=now, updated_at=now)
        .returning(*RUN.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("Run", run_id)
    return RUN.record(*row)


async def increment_incident_count(
    conn: AsyncConnection, *, tenant_id: str, run_id: str, now: datetime
) -> RunRecord:
    """Count one more incident against the run."""
    stmt = (
        update(_run)
        .where(_run.c.tenant_id == tenant_id, _run.c.id == run_id)
        .values(incident_count=_run.c.incident_count + 1, updated_at=now)
        .returning(*RUN.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("Run", run_id)
    return RUN.record(*row)


async def has_run_incident(conn: AsyncConnection, *, tenant_id: str, run_id: str) -> bool:
    """Whether the run already has its one RUN incident (§3.13)."""
    inc = t.incidents
    stmt = select(
        exists().where(
            inc.c.tenant_id == tenant_id,
            inc.c.source_run_id == run_id,
            inc.c.source_type == "RUN",
        )
    )
    with map_db_errors():
        return bool((await conn.execute(stmt)).scalar_one())


async def insert_incident_proposal(
    conn: AsyncConnection, *, tenant_id: str, incident_id: str, title: str, now: datetime
) -> str:
    """Insert a DRAFT policy proposal sourced from an incident; return its id."""
    stmt = (
        insert(t.policy_proposals)
        .values(
            tenant_id=tenant_id,
            title=title,
            status="DRAFT",
            source_type="INCIDENT",
            source_id=incident_id,
            created_by="system",
            created_at=now,
        )
        .returning(t.policy_proposals.c.id)
    )
    with map_db_errors():
        return str((await conn.execute(stmt)).scalar_one())
