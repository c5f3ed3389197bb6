"""Incident use cases: lists, point reads, nested fields and lifecycle mutations (§3.11)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import audit
from drivers import incidents as db
from drivers.mapping import (
    QUERY_INCIDENT,
    RECURRENCE_GROUP_LENGTH,
    RECURRENCE_GROUP_MAX,
)
from drivers.records import (
    IncidentDerivedRecord,
    IncidentEventRecord,
    IncidentRecord,
)
from drivers.rules.incidents import AUTO_RESOLVE_AFTER_SECONDS
from resolvers.auth import require_role
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, translate_errors
from resolvers.lists import (
    root_one,
)
from resolvers.unit_of_work import as_json, unit_of_work
from resolvers.validation import check_length

__all__ = [
    "HUMAN_EVENT_TYPES",
    "EventInput",
    "ResolveInput",
    "acknowledge_incident",
    "add_incident_event",
    "auto_resolve_stale_incidents",
    "close_incident",
    "create_postmortem_stub",
    "get_incident",
    "incident_derived",
    "recurrence_group",
    "resolve_incident",
]

RESOLVE_METHODS = ("AUTO", "MANUAL", "ROLLBACK")


async def get_incident(ctx: Context, incident_id: str) -> IncidentRecord | None:
    """One incident of the tenant, or None (also for another tenant's id)."""
    return await root_one(ctx, QUERY_INCIDENT, incident_id)


async def recurrence_group(ctx: Context, signature: str) -> list[IncidentRecord]:
    """The tenant's incidents sharing a recurrence_signature, newest first, at most 50."""
    principal = require_role(ctx)
    check_length("signature", signature, RECURRENCE_GROUP_LENGTH[1], RECURRENCE_GROUP_LENGTH[0])
    with translate_errors():
        async with ctx.db.reads.connect() as conn:
            return await db.fetch_recurrence_group(
                conn,
                tenant_id=principal.tenant_id,
                signature=signature,
                limit=RECURRENCE_GROUP_MAX,
            )


async def incident_derived(ctx: Context, incident: IncidentRecord) -> IncidentDerivedRecord:
    """lastSeenAt, evidenceCount, recoveryAttempted, recurrenceCount (§1.18), batched."""
    found: IncidentDerivedRecord | None = await ctx.loaders.incident_derived().load(incident.id)
    if found is None:  # deleted since it was read: nothing derives from it any more
        return IncidentDerivedRecord(incident.created_at, 0, False, 0)
    return found


def _now() -> datetime:
    return datetime.now(UTC)


def _illegal(action: str, incident: IncidentRecord) -> Conflict:
    return Conflict(
        f"cannot {action} an incident in status {incident.status}",
        reason="ILLEGAL_TRANSITION",
        status=incident.status,
    )


async def acknowledge_incident(ctx: Context, incident_id: str, note: str | None) -> IncidentRecord:
    """OPEN → ACKNOWLEDGED, with its ACKNOWLEDGED event and audit row."""
    check_length("note", note, 2000)
    async with unit_of_work(ctx, "acknowledgeIncident") as uow:
        before = await db.fetch_incident_for_update(
            uow.conn, tenant_id=uow.tenant_id, incident_id=incident_id
        )
        if before.status != "OPEN":
            raise _illegal("acknowledge", before)
        now = _now()
        actor = uow.principal.subject
        after = await db.update_incident_acknowledged(
            uow.conn, tenant_id=uow.tenant_id, incident_id=incident_id, actor=actor, now=now
        )
        event = await db.insert_event(
            uow.conn,
            tenant_id=uow.tenant_id,
            incident_id=incident_id,
            event_type="ACKNOWLEDGED",
            description=f"Incident acknowledged by {actor}",
            data={"note": note},
            now=now,
        )
        uow.audit("incidents", incident_id, before=as_json(before), after=as_json(after))
        uow.notify("INCIDENT_ACKNOWLEDGED", incident_id)
        uow.notify("INCIDENT_EVENT_ADDED", event.id)
    ctx.loaders.one(QUERY_INCIDENT).clear(incident_id).prime(incident_id, after)
    return after


async def create_postmortem_stub(ctx: Context, incident_id: str) -> IncidentRecord:
    """Give the incident a postmortem artifact id "pm-" + 16 hex (§3.11), in any status.

    An incident that already has one keeps it: the call is then a no-op (its audit row shows
    before = after), so retries never orphan a postmortem document.
    """
    async with unit_of_work(ctx, "createPostmortemStub") as uow:
        before = await db.fetch_incident_for_update(
            uow.conn, tenant_id=uow.tenant_id, incident_id=incident_id
        )
        after = before
        if before.postmortem_artifact_id is None:
            stubbed = await db.set_postmortem_stub(
                uow.conn,
                tenant_id=uow.tenant_id,
                incident_id=incident_id,
                artifact_id=f"pm-{secrets.token_hex(8)}",
                now=_now(),
            )
            after = stubbed or before  # the row is locked: it cannot have changed meanwhile
            uow.notify("INCIDENT_UPDATED", incident_id)
        uow.audit("incidents", incident_id, before=as_json(before), after=as_json(after))
    ctx.loaders.one(QUERY_INCIDENT).clear(incident_id).prime(incident_id, after)
    return after


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolveInput:
    method: str = "MANUAL"
    notes: str | None = None
    resolution_type: str | None = None
    summary: str | None = None
    postmortem_artifact_id: str | None = None


def _check_resolve_input(data: ResolveInput) -> None:
    if data.method not in RESOLVE_METHODS:
        raise BadUserInput(
            f"method must be one of {', '.join(RESOLVE_METHODS)}; use closeIncident for "
            "MANUAL_CLOSURE",
            field="method",
        )
    check_length("notes", data.notes, 10_000)
    check_length("resolutionType", data.resolution_type, 50)
    check_length("summary", data.summary, 10_000)
    check_length("postmortemArtifactId", data.postmortem_artifact_id, 64)


async def resolve_incident(ctx: Context, incident_id: str, data: ResolveInput) -> IncidentRecord:
    """OPEN/ACKNOWLEDGED → RESOLVED, with its RESOLVED event and audit row."""
    _check_resolve_input(data)
    suffix = f": {data.notes}" if data.notes else ""
    return await _end_incident(
        ctx,
        incident_id,
        data,
        operation="resolveIncident",
        verb="resolve",
        event_type="RESOLVED",
        describe=lambda actor: f"Incident resolved by {actor} ({data.method}){suffix}",
        event_data={"resolution_method": data.method, "notes": data.notes},
    )


async def close_incident(ctx: Context, incident_id: str, reason: str) -> IncidentRecord:
    """Manual closure (false positive, duplicate): resolve with MANUAL_CLOSURE and the reason."""
    if not reason.strip():
        raise BadUserInput("reason must not be blank", field="reason")
    check_length("reason", reason, 10_000, minimum=1)
    return await _end_incident(
        ctx,
        incident_id,
        ResolveInput(method="MANUAL_CLOSURE", notes=reason),
        operation="closeIncident",
        verb="close",
        event_type="MANUALLY_CLOSED",
        describe=lambda actor: f"Incident manually closed by {actor}: {reason}",
        event_data={"resolution_method": "MANUAL_CLOSURE", "reason": reason},
    )


async def _end_incident(
    ctx: Context,
    incident_id: str,
    data: ResolveInput,
    *,
    operation: str,
    verb: str,
    event_type: str,
    describe: Callable[[str], str],
    event_data: dict[str, Any],
) -> IncidentRecord:
    """OPEN/ACKNOWLEDGED → RESOLVED in one transaction: state, timeline event, audit, notify."""
    async with unit_of_work(ctx, operation) as uow:
        before = await db.fetch_incident_for_update(
            uow.conn, tenant_id=uow.tenant_id, incident_id=incident_id
        )
        if before.status not in ("OPEN", "ACKNOWLEDGED"):
            raise _illegal(verb, before)
        now = _now()
        actor = uow.principal.subject
        after = await db.update_incident_resolved(
            uow.conn,
            tenant_id=uow.tenant_id,
            incident_id=incident_id,
            actor=actor,
            now=now,
            started_at=before.started_at,
            method=data.method,
            notes=data.notes,
            resolution_type=data.resolution_type,
            summary=data.summary,
            postmortem_artifact_id=data.postmortem_artifact_id,
        )
        event = await db.insert_event(
            uow.conn,
            tenant_id=uow.tenant_id,
            incident_id=incident_id,
            event_type=event_type,
            description=describe(actor),
            data=event_data,
            now=now,
        )
        uow.audit("incidents", incident_id, before=as_json(before), after=as_json(after))
        uow.notify("INCIDENT_RESOLVED", incident_id)
        uow.notify("INCIDENT_EVENT_ADDED", event.id)
    ctx.loaders.one(QUERY_INCIDENT).clear(incident_id).prime(incident_id, after)
    return after


# Lifecycle event types come only from the transitions; people may add these (§3.11).
HUMAN_EVENT_TYPES = (
    "NOTE",
    "CALL_FAILED",
    "THRESHOLD_CROSSED",
    "FREEZE_TRIGGERED",
    "EVIDENCE_CAPTURED",
)
MAX_EVENT_DATA_BYTES = 16_384


@dataclass(frozen=True, slots=True, kw_only=True)
class EventInput:
    event_type: str
    description: str
    data: Any = None  # a JSON object once checked


def _check_event_input(data: EventInput) -> None:
    if data.event_type not in HUMAN_EVENT_TYPES:
        raise BadUserInput(
            f"eventType must be one of {', '.join(HUMAN_EVENT_TYPES)}; lifecycle events come "
            "from the lifecycle mutations",
            field="eventType",
        )
    if not data.description.strip():
        raise BadUserInput("description must not be blank", field="description")
    check_length("description", data.description, 2000, minimum=1)
    if data.data is not None:
        if not isinstance(data.data, dict):
            raise BadUserInput("data must be a JSON object", field="data")
        if len(orjson.dumps(data.data)) > MAX_EVENT_DATA_BYTES:
            raise BadUserInput(f"data must be at most {MAX_EVENT_DATA_BYTES} bytes", field="data")


async def add_incident_event(
    ctx: Context, incident_id: str, data: EventInput
) -> IncidentEventRecord:
    """Append an operator's timeline entry and bump the incident's updated_at.

    One statement in autocommit (unit_of_work one_statement=True): touch, event, audit row and
    both notifications commit together or not at all; the audit document is the event as
    inserted, so it is built before the statement from the id the statement will use.
    """
    _check_event_input(data)
    async with unit_of_work(ctx, "addIncidentEvent", one_statement=True) as uow:
        planned = IncidentEventRecord(
            db.new_id(), incident_id, data.event_type, data.description, data.data or {}, _now()
        )
        uow.audit("incident_events", planned.id, before=None, after=as_json(planned))
        uow.notify("INCIDENT_UPDATED", incident_id)
        uow.notify("INCIDENT_EVENT_ADDED", planned.id)
        event, after = await db.add_event_touching_incident(
            uow.conn, tenant_id=uow.tenant_id, event=planned, entry=uow.take_audit()
        )
    ctx.loaders.one(QUERY_INCIDENT).clear(incident_id).prime(incident_id, after)
    return event


AUTO_RESOLVE_JOB = "auto_resolve_stale_incidents"
AUTO_RESOLVED_BY = "system_auto_resolve"


async def auto_resolve_stale_incidents(engine: AsyncEngine, *, now: datetime | None = None) -> int:
    """Resolve OPEN incidents idle for 900 s (§7); one short transaction per incident.

    Rows are claimed with FOR UPDATE SKIP LOCKED, so replicas share the work without doing any
    incident twice. ACKNOWLEDGED incidents are never touched. Returns how many were resolved.
    """
    resolved = 0
    while True:
        at = now or _now()
        async with engine.begin() as conn:
            claimed = await db.claim_stale_incident(
                conn, cutoff=at - timedelta(seconds=AUTO_RESOLVE_AFTER_SECONDS)
            )
            if claimed is None:
                return resolved
            tenant_id, before = claimed
            after = await db.update_incident_resolved(
                conn,
                tenant_id=tenant_id,
                incident_id=before.id,
                actor=AUTO_RESOLVED_BY,
                now=at,
                started_at=before.started_at,
                method="AUTO",
                notes=None,
                resolution_type=None,
                summary=None,
                postmortem_artifact_id=None,
            )
            event = await db.insert_event(
                conn,
                tenant_id=tenant_id,
                incident_id=before.id,
                event_type="AUTO_RESOLVED",
                description=(
                    f"Incident auto-resolved after {AUTO_RESOLVE_AFTER_SECONDS}s of inactivity"
                ),
                data={"resolved_by": "system", "reason": "inactivity_timeout"},
                now=at,
            )
            await audit.insert_audit(
                conn,
                tenant_id=tenant_id,
                actor=AUTO_RESOLVE_JOB,
                actor_role="SYSTEM",
                operation=AUTO_RESOLVE_JOB,
                entity_type="incidents",
                entity_id=before.id,
                before=as_json(before),
                after=as_json(after),
                request_id=None,
            )
            for kind, entity_id in (
                ("INCIDENT_RESOLVED", before.id),
                ("INCIDENT_EVENT_ADDED", event.id),
            ):
                await audit.notify(conn, tenant_id=tenant_id, kind=kind, entity_id=entity_id)
        resolved += 1
