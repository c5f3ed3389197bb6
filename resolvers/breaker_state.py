"""Breaker transitions on a locked row, shared by the mutations, lazy recovery and the sweeper.

Each function runs inside the caller's transaction with the breaker row already locked: it writes
the state row, the breaker incident and exactly one outbox alert. The caller adds the audit row
and the BREAKER_CHANGED notification, so every state change commits as one unit (DOMAIN.md §3.7).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from drivers import alerts, audit
from drivers import breakers as db
from drivers.records import BreakerIncidentRecord, CircuitBreakerRecord
from drivers.rules.breaker import (
    RECOVERED_BY,
    BreakerSettings,
    disable_alert,
    disabled_until,
    enable_alert,
    new_incident_id,
    recovery_due,
)
from resolvers.errors import translate_errors
from resolvers.metrics import BREAKER_ENABLES
from resolvers.unit_of_work import as_json

__all__ = [
    "AUTO_RECOVER_NOTES",
    "Trip",
    "recover_breaker",
    "recover_expired_breakers",
    "reset",
    "trip",
]

log = logging.getLogger("gateway.breakers")

AUTO_RECOVER_NOTES = "Auto-recovered after TTL expired"
SWEEP_JOB = "recover_expired_breakers"
_SWEEP_MAX = 1000  # per call; the next tick continues


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trip:
    """What a trip writes to its incident and alert."""

    reason: str
    severity: str
    drift_score: float
    sample_count: int
    details: Any
    disabled_by: str
    until: datetime | None = None


async def trip(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    before: CircuitBreakerRecord,
    spec: Trip,
    now: datetime,
    settings: BreakerSettings,
    extra: dict[str, Any] | None = None,
) -> tuple[CircuitBreakerRecord, BreakerIncidentRecord]:
    """Open the breaker: new incident, state row, one DISABLE alert."""
    assert before.id is not None  # noqa: S101 - callers lock an existing row first
    incident_id = new_incident_id()
    until = disabled_until(now, spec.until, settings)
    incident = await db.insert_breaker_incident(
        conn,
        tenant_id=tenant_id,
        incident_id=incident_id,
        name=before.name,
        reason=spec.reason,
        severity=spec.severity,
        drift_score=spec.drift_score,
        sample_count=spec.sample_count,
        details=spec.details,
        now=now,
    )
    after = await db.update_breaker(
        conn,
        tenant_id=tenant_id,
        breaker_id=before.id,
        values={
            **(extra or {}),
            "disabled": True,
            "disabled_by": spec.disabled_by,
            "disabled_reason": spec.reason,
            "disabled_until": until,
            "incident_id": incident_id,
            "updated_at": now,
        },
    )
    payload = disable_alert(
        tenant_id=tenant_id,
        name=before.name,
        incident_id=incident_id,
        severity=spec.severity,
        reason=spec.reason,
        drift_score=spec.drift_score,
        sample_count=spec.sample_count,
        until=until,
        now=now,
        settings=settings,
    )
    await alerts.enqueue_alert(
        conn,
        tenant_id=tenant_id,
        payload=payload,
        alert_type="DISABLE",
        circuit_breaker_name=before.name,
        incident_id=incident_id,
        max_attempts=settings.alert_max_attempts,
        now=now,
    )
    return after, incident


async def reset(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    before: CircuitBreakerRecord,
    resolved_by: str,
    notes: str,
    reason: str | None,
    now: datetime,
    settings: BreakerSettings,
) -> tuple[CircuitBreakerRecord, BreakerIncidentRecord | None]:
    """Close the breaker: clear the state, resolve the current incident, one ENABLE alert."""
    assert before.id is not None  # noqa: S101 - callers lock an existing row first
    resolved = None
    if before.incident_id is not None:
        resolved = await db.resolve_breaker_incident(
            conn,
            tenant_id=tenant_id,
            incident_id=before.incident_id,
            resolved_by=resolved_by,
            notes=notes,
            now=now,
        )
    after = await db.update_breaker(
        conn,
        tenant_id=tenant_id,
        breaker_id=before.id,
        values={
            "disabled": False,
            "disabled_by": None,
            "disabled_reason": None,
            "disabled_until": None,
            "incident_id": None,
            "consecutive_failures": 0,
            "updated_at": now,
        },
    )
    payload = enable_alert(
        tenant_id=tenant_id,
        name=before.name,
        enabled_by=resolved_by,
        reason=reason,
        now=now,
        settings=settings,
    )
    await alerts.enqueue_alert(
        conn,
        tenant_id=tenant_id,
        payload=payload,
        alert_type="ENABLE",
        circuit_breaker_name=before.name,
        incident_id=before.incident_id,
        max_attempts=settings.alert_max_attempts,
        now=now,
    )
    return after, resolved


async def _recover_locked(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    before: CircuitBreakerRecord,
    now: datetime,
    settings: BreakerSettings,
    operation: str,
    request_id: str | None,
) -> CircuitBreakerRecord:
    after, _ = await reset(
        conn,
        tenant_id=tenant_id,
        before=before,
        resolved_by=RECOVERED_BY,
        notes=AUTO_RECOVER_NOTES,
        reason=AUTO_RECOVER_NOTES,
        now=now,
        settings=settings,
    )
    await audit.insert_audit(
        conn,
        tenant_id=tenant_id,
        actor=RECOVERED_BY,
        actor_role="SYSTEM",
        operation=operation,
        entity_type="circuit_breakers",
        entity_id=str(before.id),
        before=as_json(before),
        after=as_json(after),
        request_id=request_id,
    )
    await audit.notify(conn, tenant_id=tenant_id, kind="BREAKER_CHANGED", entity_id=str(before.id))
    return after


async def recover_breaker(
    engine: AsyncEngine,
    *,
    tenant_id: str,
    name: str,
    settings: BreakerSettings,
    operation: str,
    request_id: str | None,
    now: datetime | None = None,
) -> CircuitBreakerRecord | None:
    """Auto-recover one breaker in its own short transaction if, under the lock, it is still due.

    Returns the row as it stands afterwards (None if there is no row). When another replica
    recovered it first, the lock waits for that commit and the re-check finds nothing to do.
    """
    now = now or now_utc()
    with translate_errors():
        async with engine.begin() as conn:
            before = await db.fetch_breaker_for_update(conn, tenant_id=tenant_id, name=name)
            if before is None or not recovery_due(
                disabled=before.disabled, until=before.disabled_until, now=now, settings=settings
            ):
                return before
            after = await _recover_locked(
                conn,
                tenant_id=tenant_id,
                before=before,
                now=now,
                settings=settings,
                operation=operation,
                request_id=request_id,
            )
    BREAKER_ENABLES.labels("auto_recover").inc()
    log.info("breaker %s/%s auto-recovered (%s)", tenant_id, name, operation)
    return after


async def recover_expired_breakers(
    engine: AsyncEngine, *, now: datetime | None = None, settings: BreakerSettings | None = None
) -> int:
    """Sweeper job: auto-recover every OPEN breaker past its TTL, one transaction each.

    Rows are claimed with FOR UPDATE SKIP LOCKED and re-checked under the lock, so racing
    sweepers (and lazy reads) recover each trip exactly once.
    """
    settings = settings or BreakerSettings()
    if not settings.auto_recover:
        return 0
    now = now or now_utc()
    recovered = 0
    while recovered < _SWEEP_MAX:
        async with engine.begin() as conn:
            due = await db.fetch_due_recoveries(conn, now=now, limit=1)
            if not due:
                break
            tenant_id, name = due[0].tenant_id, due[0].name
            # Already locked by this transaction: the re-read just returns the full record.
            before = await db.fetch_breaker_for_update(conn, tenant_id=tenant_id, name=name)
            assert before is not None  # noqa: S101 - locked above
            await _recover_locked(
                conn,
                tenant_id=tenant_id,
                before=before,
                now=now,
                settings=settings,
                operation=SWEEP_JOB,
                request_id=None,
            )
        BREAKER_ENABLES.labels("auto_recover").inc()
        log.info("breaker %s/%s auto-recovered by the sweeper", tenant_id, name)
        recovered += 1
    return recovered
