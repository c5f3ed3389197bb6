"""The incident aggregator's data access (DOMAIN.md §3.10): key locks, window and rate reads.

The rule that strings these together lives in resolvers/aggregation.py; everything here runs
on the caller's transaction and never commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, map_db_errors
from drivers.mapping import INCIDENT
from drivers.records import IncidentRecord
from drivers.rules.incidents import AGGREGATION_WINDOW_SECONDS

__all__ = [
    "count_created_last_hour",
    "fetch_open_in_window",
    "fetch_overflow_incident",
    "lock_aggregation_key",
    "lock_tenant_creation",
    "update_aggregated_incident",
]

_inc = t.incidents
_HOUR = timedelta(hours=1)


async def _xact_lock(conn: AsyncConnection, key: str) -> None:
    # A 64-bit hash of a readable key; held until the transaction ends.
    stmt = select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0)))
    with map_db_errors():
        await conn.execute(stmt)


async def lock_aggregation_key(
    conn: AsyncConnection, *, tenant_id: str, trigger_type: str, window_start: datetime
) -> None:
    """Serialize signals of one (tenant, trigger type, window) until the transaction ends."""
    epoch = int(window_start.timestamp())
    await _xact_lock(conn, f"incident-aggregation:{tenant_id}:{trigger_type}:{epoch}")


async def lock_tenant_creation(conn: AsyncConnection, *, tenant_id: str) -> None:
    """Serialize the tenant's incident creation so the hourly cap holds under concurrency.

    Always taken after the key lock (one lock order, no deadlock).
    """
    await _xact_lock(conn, f"incident-creation:{tenant_id}")


async def fetch_open_in_window(
    conn: AsyncConnection, *, tenant_id: str, trigger_type: str, window_start: datetime
) -> IncidentRecord | None:
    """Lock the newest unresolved incident of this trigger type started in the window."""
    window_end = window_start + timedelta(seconds=AGGREGATION_WINDOW_SECONDS)
    stmt = (
        select(*INCIDENT.columns)
        .where(
            _inc.c.tenant_id == tenant_id,
            _inc.c.trigger_type == trigger_type,
            _inc.c.status != "RESOLVED",
            _inc.c.started_at >= window_start,
            _inc.c.started_at < window_end,
        )
        .order_by(_inc.c.started_at.desc(), _inc.c.id.desc())
        .limit(1)
        .with_for_update()
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else INCIDENT.record(*row)


async def count_created_last_hour(conn: AsyncConnection, *, tenant_id: str, now: datetime) -> int:
    """How many incidents the tenant got in the hour before `now` (every source counts)."""
    stmt = select(func.count()).where(
        _inc.c.tenant_id == tenant_id, _inc.c.created_at > now - _HOUR
    )
    with map_db_errors():
        return int((await conn.execute(stmt)).scalar_one())


async def fetch_overflow_incident(
    conn: AsyncConnection, *, tenant_id: str, now: datetime
) -> IncidentRecord | None:
    """Lock the newest unresolved RATE_LIMIT_OVERFLOW incident created within the hour."""
    stmt = (
        select(*INCIDENT.columns)
        .where(
            _inc.c.tenant_id == tenant_id,
            _inc.c.trigger_type == "RATE_LIMIT_OVERFLOW",
            _inc.c.status != "RESOLVED",
            _inc.c.created_at > now - _HOUR,
        )
        .order_by(_inc.c.created_at.desc(), _inc.c.id.desc())
        .limit(1)
        .with_for_update()
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else INCIDENT.record(*row)


async def update_aggregated_incident(
    conn: AsyncConnection, *, tenant_id: str, incident_id: str, values: dict[str, Any]
) -> IncidentRecord:
    """Write the aggregator's changes to a locked incident and return the new row."""
    stmt = (
        update(_inc)
        .where(_inc.c.tenant_id == tenant_id, _inc.c.id == incident_id)
        .values(**values)
        .returning(*INCIDENT.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("Incident", incident_id)
    return INCIDENT.record(*row)
