"""The Alertmanager outbox (DOMAIN.md §1.15, §3.8): enqueue, claim, bookkeeping, re-drive, purge.

Rows are enqueued inside the caller's transaction (so an alert exists exactly when its state
change committed) and delivered later by a worker that claims them with SKIP LOCKED.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import map_db_errors
from drivers.mapping import ALERT_OUTBOX
from drivers.records import AlertOutboxRecord

__all__ = [
    "OutboxStats",
    "claim_due_alerts",
    "enqueue_alert",
    "fetch_alerts",
    "mark_failed_attempt",
    "mark_incident_alert_sent",
    "mark_sent",
    "outbox_stats",
    "outbox_stats_select",
    "outbox_totals",
    "purge",
    "redrive_failed",
]

_ao = t.alert_outbox


async def enqueue_alert(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    payload: Any,
    alert_type: str,
    circuit_breaker_name: str | None,
    incident_id: str | None,
    max_attempts: int,
    now: datetime,
) -> AlertOutboxRecord:
    """Add one PENDING alert, due now."""
    stmt = (
        insert(_ao)
        .values(
            tenant_id=tenant_id,
            payload=payload,
            alert_type=alert_type,
            circuit_breaker_name=circuit_breaker_name,
            incident_id=incident_id,
            max_attempts=max_attempts,
            next_attempt_at=now,
            created_at=now,
        )
        .returning(*ALERT_OUTBOX.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return ALERT_OUTBOX.record(*row)


async def fetch_alerts(conn: AsyncConnection, *, tenant_id: str) -> list[AlertOutboxRecord]:
    """Every outbox row of the tenant, oldest first (tests and tools)."""
    stmt = select(*ALERT_OUTBOX.columns).where(_ao.c.tenant_id == tenant_id).order_by(_ao.c.id)
    with map_db_errors():
        rows = (await conn.execute(stmt)).all()
    return [ALERT_OUTBOX.record(*row) for row in rows]


async def claim_due_alerts(
    conn: AsyncConnection, *, now: datetime, limit: int = 10
) -> list[AlertOutboxRecord]:
    """Lock up to `limit` due PENDING rows of any tenant, skipping rows other workers hold."""
    stmt = (
        select(*ALERT_OUTBOX.columns)
        .where(_ao.c.status == "PENDING", _ao.c.next_attempt_at <= now)
        .order_by(_ao.c.next_attempt_at, _ao.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with map_db_errors():
        rows = (await conn.execute(stmt)).all()
    return [ALERT_OUTBOX.record(*row) for row in rows]


async def mark_sent(conn: AsyncConnection, *, alert_id: int, now: datetime) -> None:
    """The alert reached Alertmanager (or there is none to reach)."""
    with map_db_errors():
        await conn.execute(
            update(_ao).where(_ao.c.id == alert_id).values(status="SENT", sent_at=now)
        )


async def mark_incident_alert_sent(
    conn: AsyncConnection, *, tenant_id: str, incident_id: str, response: str, now: datetime
) -> None:
    """Record on the breaker incident that its alert was delivered."""
    _bi = t.breaker_incidents
    with map_db_errors():
        await conn.execute(
            update(_bi)
            .where(_bi.c.tenant_id == tenant_id, _bi.c.id == incident_id)
            .values(alert_sent=True, alert_sent_at=now, alert_response=response)
        )


async def mark_failed_attempt(
    conn: AsyncConnection,
    *,
    alert_id: int,
    attempts: int,
    error: str,
    now: datetime,
    next_attempt_at: datetime,
    dead: bool,
) -> None:
    """Count a failed attempt; a dead letter becomes FAILED, otherwise it is due again later."""
    values: dict[str, Any] = {"attempts": attempts, "last_attempt_at": now, "last_error": error}
    if dead:
        values["status"] = "FAILED"
    else:
        values["next_attempt_at"] = next_attempt_at
    with map_db_errors():
        await conn.execute(update(_ao).where(_ao.c.id == alert_id).values(**values))


async def redrive_failed(
    conn: AsyncConnection, *, tenant_id: str, extra: int, now: datetime
) -> list[int]:
    """FAILED rows with attempts < max_attempts + extra go back to PENDING with more attempts."""
    stmt = (
        update(_ao)
        .where(
            _ao.c.tenant_id == tenant_id,
            _ao.c.status == "FAILED",
            _ao.c.attempts < _ao.c.max_attempts + extra,
        )
        .values(status="PENDING", max_attempts=_ao.c.max_attempts + extra, next_attempt_at=now)
        .returning(_ao.c.id)
    )
    with map_db_errors():
        return sorted(int(i) for i in (await conn.execute(stmt)).scalars())


async def purge(conn: AsyncConnection, *, now: datetime, days: int) -> int:
    """Delete SENT and FAILED rows of every tenant created more than `days` ago."""
    stmt = delete(_ao).where(
        _ao.c.status.in_(("SENT", "FAILED")), _ao.c.created_at < now - timedelta(days=days)
    )
    with map_db_errors():
        result = await conn.execute(stmt)
    return int(result.rowcount)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    sent: int
    failed: int
    oldest_pending_at: datetime | None


def outbox_stats_select(tenant: Any) -> Select[Any]:
    """Rows per status and the oldest PENDING row's created_at (OutboxStats' fields).

    Both read paths run it: the resolver path with the tenant bound, the compiled path with its
    own tenant parameter.
    """
    pending = _ao.c.status == "PENDING"
    columns = [
        func.count().filter(pending).label("pending"),
        func.count().filter(_ao.c.status == "SENT").label("sent"),
        func.count().filter(_ao.c.status == "FAILED").label("failed"),
        func.min(_ao.c.created_at).filter(pending).label("oldest_pending_at"),
    ]
    return select(*columns).where(_ao.c.tenant_id == tenant)


async def outbox_stats(conn: AsyncConnection, *, tenant_id: str) -> OutboxStats:
    """Rows per status and the oldest PENDING row's created_at, in one statement."""
    stmt = outbox_stats_select(tenant_id)
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return OutboxStats(int(row[0]), int(row[1]), int(row[2]), row[3])


async def outbox_totals(conn: AsyncConnection) -> OutboxStats:
    """outbox_stats over every tenant (the operator's /metrics gauges); `sent` is not counted."""
    pending = _ao.c.status == "PENDING"
    stmt = select(
        func.count().filter(pending),
        func.count().filter(_ao.c.status == "FAILED"),
        func.min(_ao.c.created_at).filter(pending),
    ).where(_ao.c.status.in_(("PENDING", "FAILED")))
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return OutboxStats(int(row[0]), 0, int(row[1]), row[2])
