"""Circuit-breaker rows and breaker incidents (DOMAIN.md §1.14, §3.7, §4).

Reads never insert. Mutations call `get_or_create_breaker_for_update` first: the row is created
with INSERT … ON CONFLICT DO NOTHING and then locked, so concurrent first writers agree on one
row and every decision is taken under the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, insert, literal, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, map_db_errors
from drivers.mapping import BREAKER_INCIDENT, CIRCUIT_BREAKER
from drivers.records import BreakerIncidentRecord, CircuitBreakerRecord

__all__ = [
    "DueRecovery",
    "closed_breaker",
    "fetch_breaker",
    "fetch_breaker_for_update",
    "fetch_breakers",
    "fetch_breakers_by_ids",
    "fetch_breakers_seen",
    "fetch_due_recoveries",
    "get_or_create_breaker_for_update",
    "insert_breaker_incident",
    "open_breakers_by_name",
    "resolve_breaker_incident",
    "update_breaker",
]

_cb, _bi = t.circuit_breakers, t.breaker_incidents


def closed_breaker(name: str) -> CircuitBreakerRecord:
    """What a breaker that was never written reads as: CLOSED with no failures."""
    return CircuitBreakerRecord(
        id=None,
        name=name,
        consecutive_failures=0,
        last_failure_at=None,
        disabled_until=None,
        disabled_by=None,
        opened_at=None,
        updated_at=None,
        disabled=False,
        disabled_reason=None,
        incident_id=None,
        created_at=None,
    )


async def fetch_breaker(
    conn: AsyncConnection, *, tenant_id: str, name: str
) -> CircuitBreakerRecord | None:
    """One breaker of the tenant, or None when it was never written (never inserts)."""
    stmt = select(*CIRCUIT_BREAKER.columns).where(_cb.c.tenant_id == tenant_id, _cb.c.name == name)
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else CIRCUIT_BREAKER.record(*row)


async def fetch_breakers_by_ids(
    conn: AsyncConnection, *, tenant_id: str, ids: list[int]
) -> dict[int, CircuitBreakerRecord]:
    """Breakers of the tenant by row id (another tenant's id is simply missing)."""
    stmt = select(*CIRCUIT_BREAKER.columns).where(_cb.c.tenant_id == tenant_id, _cb.c.id.in_(ids))
    with map_db_errors():
        rows = (await conn.execute(stmt)).all()
    records = [CIRCUIT_BREAKER.record(*row) for row in rows]
    return {r.id: r for r in records if r.id is not None}


async def fetch_breakers(conn: AsyncConnection, *, tenant_id: str) -> list[CircuitBreakerRecord]:
    """Every breaker row of the tenant, by name."""
    stmt = select(*CIRCUIT_BREAKER.columns).where(_cb.c.tenant_id == tenant_id).order_by(_cb.c.name)
    with map_db_errors():
        rows = (await conn.execute(stmt)).all()
    return [CIRCUIT_BREAKER.record(*row) for row in rows]


async def fetch_breakers_seen(
    conn: AsyncConnection, *, tenant_id: str, name: str | None
) -> tuple[list[CircuitBreakerRecord], str]:
    """The tenant's breakers (the one named, or all by name) and the snapshot that read them.

    ONE statement, so the snapshot (pg_current_snapshot(), as text) is exactly the one the rows
    were read with: a subscriber skips the changes it saw (resolvers/subscriptions.Horizon).
    The one-row side keeps the snapshot when no breaker row matches.
    """
    rows = select(*CIRCUIT_BREAKER.columns).where(_cb.c.tenant_id == tenant_id)
    if name is not None:
        rows = rows.where(_cb.c.name == name)
    b = rows.subquery("b")
    one = select(literal(1).label("one")).subquery("one")
    stmt = (
        select(cast(func.pg_current_snapshot(), Text), *b.c)
        .select_from(one.outerjoin(b, true()))
        .order_by(b.c.name)
    )
    with map_db_errors():
        found = (await conn.execute(stmt)).all()
    records = [CIRCUIT_BREAKER.record(*row[1:]) for row in found if row[1 + _NAME] is not None]
    return records, str(found[0][0])


_NAME = [c.name for c in CIRCUIT_BREAKER.columns].index("name")


async def fetch_breaker_for_update(
    conn: AsyncConnection, *, tenant_id: str, name: str
) -> CircuitBreakerRecord | None:
    """Lock an existing breaker row (waits for other writers); None if there is none."""
    stmt = (
        select(*CIRCUIT_BREAKER.columns)
        .where(_cb.c.tenant_id == tenant_id, _cb.c.name == name)
        .with_for_update(of=_cb)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else CIRCUIT_BREAKER.record(*row)


async def get_or_create_breaker_for_update(
    conn: AsyncConnection, *, tenant_id: str, name: str
) -> CircuitBreakerRecord:
    """Create the breaker row if missing (ON CONFLICT DO NOTHING), then lock and return it."""
    stmt = (
        pg_insert(_cb)
        .values(tenant_id=tenant_id, name=name)
        .on_conflict_do_nothing(index_elements=[_cb.c.tenant_id, _cb.c.name])
    )
    with map_db_errors():
        await conn.execute(stmt)
    record = await fetch_breaker_for_update(conn, tenant_id=tenant_id, name=name)
    if record is None:  # pragma: no cover - the row was just inserted or already there
        raise NotFound("CircuitBreaker", name)
    return record


async def update_breaker(
    conn: AsyncConnection, *, tenant_id: str, breaker_id: int, values: dict[str, Any]
) -> CircuitBreakerRecord:
    """Write new column values to a (locked) breaker row and return it."""
    # RETURNING evaluates the derived opened_at against the new row (and this transaction's
    # freshly inserted incident), so one statement answers.
    stmt = (
        update(_cb)
        .where(_cb.c.tenant_id == tenant_id, _cb.c.id == breaker_id)
        .values(**values)
        .returning(*CIRCUIT_BREAKER.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return CIRCUIT_BREAKER.record(*row)


async def insert_breaker_incident(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    incident_id: str,
    name: str,
    reason: str,
    severity: str,
    drift_score: float,
    sample_count: int,
    details: Any,
    now: datetime,
) -> BreakerIncidentRecord:
    """Insert the breaker incident of one trip."""
    stmt = (
        insert(_bi)
        .values(
            id=incident_id,
            tenant_id=tenant_id,
            circuit_breaker_name=name,
            created_at=now,
            reason=reason,
            severity=severity,
            drift_score=drift_score,
            sample_count=sample_count,
            details=details,
        )
        .returning(*BREAKER_INCIDENT.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return BREAKER_INCIDENT.record(*row)


async def resolve_breaker_incident(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    incident_id: str,
    resolved_by: str,
    notes: str,
    now: datetime,
) -> BreakerIncidentRecord | None:
    """Resolve an unresolved breaker incident; None if it is gone or already resolved."""
    stmt = (
        update(_bi)
        .where(_bi.c.tenant_id == tenant_id, _bi.c.id == incident_id, _bi.c.resolved.is_(False))
        .values(resolved=True, resolved_at=now, resolved_by=resolved_by, resolution_notes=notes)
        .returning(*BREAKER_INCIDENT.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else BREAKER_INCIDENT.record(*row)


@dataclass(frozen=True, slots=True)
class DueRecovery:
    tenant_id: str
    name: str


async def fetch_due_recoveries(
    conn: AsyncConnection, *, now: datetime, limit: int
) -> list[DueRecovery]:
    """Lock OPEN breakers of any tenant whose TTL has passed, skipping rows others hold."""
    stmt = (
        select(_cb.c.tenant_id, _cb.c.name)
        .where(
            _cb.c.disabled.is_(True),
            _cb.c.disabled_until.is_not(None),
            _cb.c.disabled_until <= now,
        )
        .order_by(_cb.c.disabled_until, _cb.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with map_db_errors():
        rows = (await conn.execute(stmt)).all()
    return [DueRecovery(row.tenant_id, row.name) for row in rows]


async def open_breakers_by_name(conn: AsyncConnection) -> dict[str, int]:
    """For every breaker name any tenant has, how many tenants have it open (disabled)."""
    stmt = (
        select(_cb.c.name, func.count().filter(_cb.c.disabled.is_(True)))
        .group_by(_cb.c.name)
        .order_by(_cb.c.name)
    )
    with map_db_errors():
        rows = (await conn.execute(stmt)).all()
    return {str(name): int(count) for name, count in rows}
