"""Reads behind incident export bundles (DOMAIN.md §3.21): the incident, its run, steps, violation.

The records here are private to export building (the Run GraphQL type has its own), so they hold
only the columns a bundle shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, map_db_errors
from drivers.mapping import INCIDENT
from drivers.records import IncidentRecord

__all__ = [
    "BundleRun",
    "BundleStep",
    "BundleViolation",
    "fetch_bundle_incident",
    "fetch_bundle_run",
    "fetch_bundle_steps",
    "fetch_first_violation",
]

_run, _step, _vio = t.runs, t.run_steps, t.policy_violations


@dataclass(frozen=True, slots=True)
class BundleRun:
    id: str
    agent_id: str | None
    status: str
    error_message: str | None
    started_at: datetime | None
    completed_at: datetime | None
    estimated_cost_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class BundleStep:
    step_index: int
    step_type: str
    tokens: int
    cost_cents: Decimal
    duration_ms: int
    status: str
    content_hash: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BundleViolation:
    policy_id: str
    violated_rule: str


async def fetch_bundle_incident(
    conn: AsyncConnection, *, tenant_id: str, incident_id: str
) -> IncidentRecord:
    """One incident of the tenant, or NotFound (another tenant's id included)."""
    stmt = select(*INCIDENT.columns).where(
        t.incidents.c.tenant_id == tenant_id, t.incidents.c.id == incident_id
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("Incident", incident_id)
    return INCIDENT.record(*row)


async def fetch_bundle_run(
    conn: AsyncConnection, *, tenant_id: str, run_id: str
) -> BundleRun | None:
    """The tenant's run, or None."""
    stmt = select(
        _run.c.id,
        _run.c.agent_id,
        _run.c.status,
        _run.c.error_message,
        _run.c.started_at,
        _run.c.completed_at,
        _run.c.estimated_cost_usd,
    ).where(_run.c.tenant_id == tenant_id, _run.c.id == run_id)
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else BundleRun(*row)


async def fetch_bundle_steps(
    conn: AsyncConnection, *, tenant_id: str, run_id: str
) -> list[BundleStep]:
    """The run's steps in step_index order."""
    stmt = (
        select(
            _step.c.step_index,
            _step.c.step_type,
            _step.c.tokens,
            _step.c.cost_cents,
            _step.c.duration_ms,
            _step.c.status,
            _step.c.content_hash,
            _step.c.created_at,
        )
        .where(_step.c.tenant_id == tenant_id, _step.c.run_id == run_id)
        .order_by(_step.c.step_index)
    )
    with map_db_errors():
        return [BundleStep(*row) for row in await conn.execute(stmt)]


async def fetch_first_violation(
    conn: AsyncConnection, *, tenant_id: str, incident_id: str
) -> BundleViolation | None:
    """The incident's first policy violation (by created_at, then id), or None."""
    stmt = (
        select(_vio.c.policy_id, _vio.c.violated_rule)
        .where(_vio.c.tenant_id == tenant_id, _vio.c.incident_id == incident_id)
        .order_by(_vio.c.created_at, _vio.c.id)
        .limit(1)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else BundleViolation(*row)
