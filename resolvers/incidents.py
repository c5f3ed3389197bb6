"""Incident use cases: lists, point reads, nested fields and lifecycle mutations (§3.11)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from drivers import incidents as db
from drivers.mapping import INCIDENT, incident_orderings
from drivers.records import IncidentEventRecord, IncidentRecord, LessonRecord, LimitBreachRecord
from resolvers.auth import Role
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict
from resolvers.lists import nested_connection, nested_list, root_connection, root_one
from resolvers.pagination import ConnectionResult
from resolvers.unit_of_work import as_json, unit_of_work
from resolvers.validation import check_length

__all__ = [
    "ResolveInput",
    "acknowledge_incident",
    "get_incident",
    "incident_breaches",
    "incident_events",
    "incident_lessons",
    "list_incidents",
    "resolve_incident",
]

RESOLVE_METHODS = ("AUTO", "MANUAL", "ROLLBACK")


async def list_incidents(
    ctx: Context,
    *,
    first: int,
    after: str | None,
    filter: db.IncidentFilter | None,
    order_by: str,
) -> ConnectionResult[IncidentRecord]:
    """List the tenant's incidents, filtered and ordered, one keyset page at a time."""
    where = db.incident_filter_clauses(filter) if filter else []
    return await root_connection(
        ctx,
        INCIDENT,
        where=where,
        ordering=incident_orderings[order_by],
        first=first,
        after=after,
    )


async def get_incident(ctx: Context, incident_id: str) -> IncidentRecord | None:
    """One incident of the tenant, or None (also for another tenant's id)."""
    record: IncidentRecord | None = await root_one(ctx, "incident", incident_id)
    return record


async def incident_events(
    ctx: Context, incident: IncidentRecord, *, first: int, after: str | None
) -> ConnectionResult[IncidentEventRecord]:
    """The incident's timeline, newest first."""
    return await nested_connection(ctx, "Incident", "events", incident.id, first=first, after=after)


async def incident_breaches(ctx: Context, incident: IncidentRecord) -> list[LimitBreachRecord]:
    """Limit breaches linked to the incident, newest first."""
    return await nested_list(ctx, "Incident", "breaches", incident.id)


async def incident_lessons(ctx: Context, incident: IncidentRecord) -> list[LessonRecord]:
    """Lessons learned from the incident, newest first."""
    return await nested_list(ctx, "Incident", "lessons", incident.id)


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
    async with unit_of_work(ctx, "acknowledgeIncident", Role.OPERATOR) as uow:
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
    ctx.loaders.one("Query", "incident").clear(incident_id).prime(incident_id, after)
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
    async with unit_of_work(ctx, "resolveIncident", Role.OPERATOR) as uow:
        before = await db.fetch_incident_for_update(
            uow.conn, tenant_id=uow.tenant_id, incident_id=incident_id
        )
        if before.status not in ("OPEN", "ACKNOWLEDGED"):
            raise _illegal("resolve", before)
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
        suffix = f": {data.notes}" if data.notes else ""
        event = await db.insert_event(
            uow.conn,
            tenant_id=uow.tenant_id,
            incident_id=incident_id,
            event_type="RESOLVED",
            description=f"Incident resolved by {actor} ({data.method}){suffix}",
            data={"resolution_method": data.method, "notes": data.notes},
            now=now,
        )
        uow.audit("incidents", incident_id, before=as_json(before), after=as_json(after))
        uow.notify("INCIDENT_RESOLVED", incident_id)
        uow.notify("INCIDENT_EVENT_ADDED", event.id)
    ctx.loaders.one("Query", "incident").clear(incident_id).prime(incident_id, after)
    return after
