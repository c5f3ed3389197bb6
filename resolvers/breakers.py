"""Circuit-breaker use cases: state reads (with lazy TTL recovery) and the four mutations (§3.7).

Every mutation gets or creates the breaker row, locks it, and decides only after the lock; its
state change, breaker incident, one outbox alert, audit row and BREAKER_CHANGED notification
commit together. Reads never insert: a missing row reads as CLOSED with no failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drivers import breakers as db
from drivers.mapping import (
    CIRCUIT_BREAKER_ALL_INCIDENTS,
    CIRCUIT_BREAKER_INCIDENTS,
    QUERY_CIRCUIT_BREAKER,
)
from drivers.records import BreakerIncidentRecord, CircuitBreakerRecord
from drivers.rules.breaker import (
    DEFAULT_BREAKER,
    DISABLED_BY_BREAKER,
    check_score,
    drift_outcome,
    drift_reason,
    manual_disable_action,
    recovery_due,
    schema_error_reason,
    schema_errors_trip,
)
from resolvers.auth import Role, require_role
from resolvers.breaker_state import (
    Trip,
    now_utc,
    recover_breaker,
    recover_expired_breakers,
    reset,
    trip,
)
from resolvers.context import Context
from resolvers.errors import BadUserInput, translate_errors
from resolvers.lists import nested_connection
from resolvers.metrics import BREAKER_DISABLES, BREAKER_DRIFT_WARNINGS, BREAKER_ENABLES
from resolvers.pagination import ConnectionResult
from resolvers.unit_of_work import UnitOfWork, as_json, unit_of_work
from resolvers.validation import check_length

__all__ = [
    "BreakerChange",
    "breaker_incidents",
    "current_breakers",
    "disable_circuit_breaker",
    "enable_circuit_breaker",
    "get_circuit_breaker",
    "get_circuit_breaker_by_id",
    "list_circuit_breakers",
    "recover_expired_breakers",
    "report_breaker_drift",
    "report_breaker_schema_errors",
]

MAX_NAME = 100
MAX_REASON = 1000
MAX_COUNT = 1_000_000


@dataclass(frozen=True, slots=True)
class BreakerChange:
    """A mutation's answer: whether the state changed, the breaker, and the incident touched."""

    changed: bool
    breaker: CircuitBreakerRecord
    incident: BreakerIncidentRecord | None


# --- reads ---------------------------------------------------------------------------------------


async def _settle(
    ctx: Context, tenant_id: str, record: CircuitBreakerRecord
) -> CircuitBreakerRecord:
    """Run the lazy TTL recovery if the row is due; otherwise return it unchanged."""
    settings = ctx.breaker
    if not recovery_due(
        disabled=record.disabled, until=record.disabled_until, now=now_utc(), settings=settings
    ):
        return record
    recovered = await recover_breaker(
        ctx.db.primary,
        tenant_id=tenant_id,
        name=record.name,
        settings=settings,
        operation="circuitBreaker",
        request_id=ctx.request_id,
    )
    return recovered or db.closed_breaker(record.name)


async def get_circuit_breaker(ctx: Context, name: str) -> CircuitBreakerRecord:
    """The breaker's state; a breaker never written reads as CLOSED (nothing is inserted)."""
    principal = require_role(ctx)
    loader = ctx.loaders.one(QUERY_CIRCUIT_BREAKER)
    record: CircuitBreakerRecord | None = await loader.load(name)
    if record is None:
        return db.closed_breaker(name)
    settled = await _settle(ctx, principal.tenant_id, record)
    if settled is not record:
        loader.clear(name).prime(name, settled)
    return settled


async def get_circuit_breaker_by_id(ctx: Context, breaker_id: int) -> CircuitBreakerRecord | None:
    """A breaker by row id (the id of BREAKER_CHANGED notifications), settled; None if unknown."""
    principal = require_role(ctx)
    with translate_errors():
        async with ctx.db.reads.connect() as conn:
            found = await db.fetch_breakers_by_ids(
                conn, tenant_id=principal.tenant_id, ids=[breaker_id]
            )
    record = found.get(breaker_id)
    return None if record is None else await _settle(ctx, principal.tenant_id, record)


async def list_circuit_breakers(ctx: Context) -> list[CircuitBreakerRecord]:
    """Every breaker of the tenant by name; the default one is listed before its first write."""
    principal = require_role(ctx)
    with translate_errors():
        async with ctx.db.reads.connect() as conn:
            rows = await db.fetch_breakers(conn, tenant_id=principal.tenant_id)
    settled = [await _settle(ctx, principal.tenant_id, r) for r in rows]
    if all(r.name != DEFAULT_BREAKER for r in settled):
        settled.append(db.closed_breaker(DEFAULT_BREAKER))
        settled.sort(key=lambda r: r.name)
    return settled


async def current_breakers(
    ctx: Context, name: str | None
) -> tuple[list[CircuitBreakerRecord], str]:
    """A subscription's current state (the named breaker, or every one) and its read's snapshot.

    Settled like the queries. When settling recovered a breaker (a write), the state is read
    once more, so that write is inside the snapshot and its notification is not sent again.
    """
    principal = require_role(ctx)
    tenant_id = principal.tenant_id
    for _ in range(2):
        with translate_errors():
            async with ctx.db.reads.connect() as conn:
                rows, snapshot = await db.fetch_breakers_seen(conn, tenant_id=tenant_id, name=name)
        settled = [await _settle(ctx, tenant_id, r) for r in rows]
        if all(s is r for s, r in zip(settled, rows, strict=True)):
            break
    if name is not None:
        return settled or [db.closed_breaker(name)], snapshot
    if all(r.name != DEFAULT_BREAKER for r in settled):
        settled.append(db.closed_breaker(DEFAULT_BREAKER))
        settled.sort(key=lambda r: r.name)
    return settled, snapshot


async def breaker_incidents(
    ctx: Context,
    breaker: CircuitBreakerRecord,
    *,
    first: int,
    after: str | None,
    include_resolved: bool,
) -> ConnectionResult[BreakerIncidentRecord]:
    """The breaker's incidents, newest first; unresolved only unless include_resolved."""
    relation = CIRCUIT_BREAKER_ALL_INCIDENTS if include_resolved else CIRCUIT_BREAKER_INCIDENTS
    return await nested_connection(ctx, relation, breaker.name, first=first, after=after)


# --- mutations -----------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    check_length("name", name, MAX_NAME, minimum=1)


async def _prepare(ctx: Context, role: Role, name: str) -> None:
    """Role check, then settle an expired trip first so the mutation decides on fresh state."""
    principal = require_role(ctx, role)
    with translate_errors():
        async with ctx.db.reads.connect() as conn:
            record = await db.fetch_breaker(conn, tenant_id=principal.tenant_id, name=name)
    if record is not None:
        await _settle(ctx, principal.tenant_id, record)


def _finish(uow: UnitOfWork, before: CircuitBreakerRecord, after: CircuitBreakerRecord) -> None:
    assert before.id is not None  # noqa: S101 - the row was created and locked
    uow.audit("circuit_breakers", str(before.id), before=as_json(before), after=as_json(after))
    if after != before:
        uow.notify("BREAKER_CHANGED", str(before.id))


def _count_trip(incident: BreakerIncidentRecord | None, changed: bool) -> None:
    if changed and incident is not None:
        cause = "drift" if (incident.drift_score or 0) > 0 else "manual"
        BREAKER_DISABLES.labels(cause, incident.severity).inc()


async def report_breaker_drift(
    ctx: Context,
    *,
    name: str,
    drift_score: float,
    sample_count: int | None,
    details: Any,
) -> BreakerChange:
    """Count a drift failure (> threshold) or reset the count; trips P1 after 3 in a row."""
    _check_name(name)
    if not check_score(drift_score):
        raise BadUserInput("driftScore must be between 0 and 1", field="driftScore")
    samples = 1 if sample_count is None else sample_count
    if not 0 <= samples <= MAX_COUNT:
        raise BadUserInput(f"sampleCount must be 0..{MAX_COUNT}", field="sampleCount")
    settings = ctx.breaker
    await _prepare(ctx, Role.INGEST, name)
    incident = None
    async with unit_of_work(ctx, "reportBreakerDrift") as uow:
        before = await db.get_or_create_breaker_for_update(
            uow.conn, tenant_id=uow.tenant_id, name=name
        )
        assert before.id is not None  # noqa: S101
        outcome = drift_outcome(
            disabled=before.disabled,
            consecutive_failures=before.consecutive_failures,
            score=drift_score,
            settings=settings,
        )
        now = now_utc()
        values: dict[str, Any] = {}
        if outcome.counter_changed:
            values = {"consecutive_failures": outcome.consecutive_failures, "updated_at": now}
        if outcome.failed:
            values["last_failure_at"] = now
        after = before
        if outcome.trip:
            spec = Trip(
                reason=drift_reason(drift_score, settings.drift_threshold),
                severity="P1",
                drift_score=drift_score,
                sample_count=samples,
                details=details,
                disabled_by=DISABLED_BY_BREAKER,
            )
            after, incident = await trip(
                uow.conn,
                tenant_id=uow.tenant_id,
                before=before,
                spec=spec,
                now=now,
                settings=settings,
                extra=values,
            )
        elif values:
            after = await db.update_breaker(
                uow.conn, tenant_id=uow.tenant_id, breaker_id=before.id, values=values
            )
        _finish(uow, before, after)
    if outcome.warning:
        BREAKER_DRIFT_WARNINGS.labels(name).inc()
    _count_trip(incident, outcome.trip)
    return BreakerChange(outcome.trip, after, incident)


async def report_breaker_schema_errors(
    ctx: Context, *, name: str, error_count: int | None, details: Any
) -> BreakerChange:
    """Trip a CLOSED breaker with P3 when one report carries ≥ 5 schema errors."""
    _check_name(name)
    count = 1 if error_count is None else error_count
    if not 0 <= count <= MAX_COUNT:
        raise BadUserInput(f"errorCount must be 0..{MAX_COUNT}", field="errorCount")
    settings = ctx.breaker
    await _prepare(ctx, Role.INGEST, name)
    incident = None
    async with unit_of_work(ctx, "reportBreakerSchemaErrors") as uow:
        before = await db.get_or_create_breaker_for_update(
            uow.conn, tenant_id=uow.tenant_id, name=name
        )
        tripped = schema_errors_trip(disabled=before.disabled, count=count, settings=settings)
        after = before
        if tripped:
            spec = Trip(
                reason=schema_error_reason(count, settings.schema_error_threshold),
                severity="P3",
                drift_score=1.0,
                sample_count=count,
                details=details,
                disabled_by=DISABLED_BY_BREAKER,
            )
            after, incident = await trip(
                uow.conn,
                tenant_id=uow.tenant_id,
                before=before,
                spec=spec,
                now=now_utc(),
                settings=settings,
            )
        _finish(uow, before, after)
    _count_trip(incident, tripped)
    return BreakerChange(tripped, after, incident)


async def disable_circuit_breaker(
    ctx: Context, *, name: str, reason: str, until: datetime | None
) -> BreakerChange:
    """Open the breaker by hand (P2); the same reason while OPEN changes nothing."""
    _check_name(name)
    check_length("reason", reason.strip(), MAX_REASON, minimum=1)
    if until is not None and (until.tzinfo is None or until <= now_utc()):
        raise BadUserInput("until must be a time in the future", field="until")
    settings = ctx.breaker
    await _prepare(ctx, Role.ADMIN, name)
    incident = None
    async with unit_of_work(ctx, "disableCircuitBreaker") as uow:
        before = await db.get_or_create_breaker_for_update(
            uow.conn, tenant_id=uow.tenant_id, name=name
        )
        action = manual_disable_action(
            disabled=before.disabled, current_reason=before.disabled_reason, reason=reason
        )
        actor = uow.principal.subject
        now = now_utc()
        after = before
        if action == "supersede" and before.incident_id is not None:
            await db.resolve_breaker_incident(
                uow.conn,
                tenant_id=uow.tenant_id,
                incident_id=before.incident_id,
                resolved_by=actor,
                notes="Superseded by manual disable",
                now=now,
            )
        if action != "noop":
            spec = Trip(
                reason=reason,
                severity="P2",
                drift_score=0.0,
                sample_count=0,
                details={"manual_disable": True},
                disabled_by=actor,
                until=until,
            )
            after, incident = await trip(
                uow.conn,
                tenant_id=uow.tenant_id,
                before=before,
                spec=spec,
                now=now,
                settings=settings,
            )
        _finish(uow, before, after)
    _count_trip(incident, action != "noop")
    return BreakerChange(action != "noop", after, incident)


async def enable_circuit_breaker(ctx: Context, *, name: str, reason: str | None) -> BreakerChange:
    """Close an OPEN breaker and resolve its incident; a CLOSED one is left alone."""
    _check_name(name)
    check_length("reason", reason, MAX_REASON)
    settings = ctx.breaker
    await _prepare(ctx, Role.ADMIN, name)
    resolved = None
    async with unit_of_work(ctx, "enableCircuitBreaker") as uow:
        before = await db.get_or_create_breaker_for_update(
            uow.conn, tenant_id=uow.tenant_id, name=name
        )
        after = before
        if before.disabled:
            after, resolved = await reset(
                uow.conn,
                tenant_id=uow.tenant_id,
                before=before,
                resolved_by=uow.principal.subject or "manual",
                notes=reason or "Manual reset",
                reason=reason,
                now=now_utc(),
                settings=settings,
            )
        _finish(uow, before, after)
    if before.disabled:
        BREAKER_ENABLES.labels("manual").inc()
    return BreakerChange(before.disabled, after, resolved)
