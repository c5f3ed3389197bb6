"""The Subscription root: live incident and breaker changes over graphql-transport-ws (API.md)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from resolvers import subscriptions as uc
from schema.base import Info, from_record
from schema.breakers import CircuitBreaker, breaker
from schema.enums import Severity
from schema.incidents import Incident, IncidentEvent, incident

__all__ = [
    "BreakerSubscriptions",
    "IncidentChange",
    "IncidentChangeKind",
    "IncidentSubscriptions",
]


@strawberry.enum(description="What happened to the incident.")
class IncidentChangeKind(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    ESCALATED = "ESCALATED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


@strawberry.type(description="One committed change of an incident, with the incident as it is now.")
class IncidentChange:
    kind: IncidentChangeKind = strawberry.field(description="What happened.")
    incident: Incident = strawberry.field(
        description="The incident as read right after the change committed (a later change "
        "may already show)."
    )
    incident_id: strawberry.ID = strawberry.field(description="Same as incident.id.")
    changed_at: datetime = strawberry.field(description="The incident's updatedAt.")


@strawberry.type
class IncidentSubscriptions:
    @strawberry.subscription(
        description="Every committed change of the tenant's incidents, optionally only some "
        "severities. [VIEWER]"
    )
    async def incident_changed(
        self,
        info: Info,
        severity: Annotated[
            list[Severity] | None,
            strawberry.argument(description="Only these severities (all when omitted)."),
        ] = None,
    ) -> AsyncGenerator[IncidentChange, None]:
        severities = None if severity is None else tuple(str(s) for s in severity)
        async for kind, record in uc.incident_changes(info.context, severities):
            yield IncidentChange(
                kind=IncidentChangeKind(kind),
                incident=incident(record),
                incident_id=strawberry.ID(record.id),
                changed_at=record.updated_at,
            )

    @strawberry.subscription(
        description="Every timeline event committed for one incident. [VIEWER]"
    )
    async def incident_event_added(
        self,
        info: Info,
        incident_id: Annotated[
            strawberry.ID, strawberry.argument(description="The incident to follow.")
        ],
    ) -> AsyncGenerator[IncidentEvent, None]:
        async for record in uc.incident_events_added(info.context, str(incident_id)):
            yield from_record(IncidentEvent, record)


@strawberry.type
class BreakerSubscriptions:
    @strawberry.subscription(
        description="A circuit breaker's current state first, then every committed change "
        "(every breaker of the tenant when no name is given). [VIEWER]"
    )
    async def circuit_breaker_changed(
        self,
        info: Info,
        name: Annotated[
            str | None,
            strawberry.argument(description="The breaker to follow; all when omitted."),
        ] = None,
    ) -> AsyncGenerator[CircuitBreaker, None]:
        async for record in uc.breaker_changes(info.context, name):
            yield breaker(record)
