"""Policy violations (DOMAIN.md §1.11, §3.14): idempotent insert and the incident link."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, map_db_errors
from drivers.mapping import POLICY_VIOLATION
from drivers.records import PolicyViolationRecord

__all__ = [
    "count_incident_evidence",
    "fetch_violation",
    "insert_violation",
    "set_violation_incident",
]

_viol = t.policy_violations


async def fetch_violation(
    conn: AsyncConnection, *, tenant_id: str, run_id: str, policy_id: str
) -> PolicyViolationRecord | None:
    """The tenant's violation of one policy by one run, if recorded."""
    stmt = select(*POLICY_VIOLATION.columns).where(
        _viol.c.tenant_id == tenant_id, _viol.c.run_id == run_id, _viol.c.policy_id == policy_id
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else POLICY_VIOLATION.record(*row)


async def insert_violation(
    conn: AsyncConnection, *, tenant_id: str, values: dict[str, Any]
) -> PolicyViolationRecord | None:
    """Insert a violation, or return None if (tenant, run, policy) already has one.

    ON CONFLICT DO NOTHING: a concurrent duplicate waits for the first insert's transaction
    and then gets None instead of an error, so the caller can answer with the existing row.
    """
    stmt = (
        insert(_viol)
        .values(tenant_id=tenant_id, **values)
        .on_conflict_do_nothing(index_elements=["tenant_id", "run_id", "policy_id"])
        .returning(*POLICY_VIOLATION.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else POLICY_VIOLATION.record(*row)


async def set_violation_incident(
    conn: AsyncConnection, *, tenant_id: str, violation_id: str, incident_id: str
) -> PolicyViolationRecord:
    """Link a violation to the incident it was aggregated into."""
    stmt = (
        update(_viol)
        .where(_viol.c.tenant_id == tenant_id, _viol.c.id == violation_id)
        .values(incident_id=incident_id)
        .returning(*POLICY_VIOLATION.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("PolicyViolation", violation_id)
    return POLICY_VIOLATION.record(*row)


async def count_incident_evidence(
    conn: AsyncConnection, *, tenant_id: str, incident_id: str, evidence_type: str
) -> int:
    """How many evidence rows of one type an incident has."""
    evd = t.incident_evidence
    stmt = select(func.count()).where(
        evd.c.tenant_id == tenant_id,
        evd.c.incident_id == incident_id,
        evd.c.evidence_type == evidence_type,
    )
    with map_db_errors():
        return int((await conn.execute(stmt)).scalar_one())
