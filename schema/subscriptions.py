"""The Subscription root: live incident and breaker changes over graphql-transport-ws (API.md).

The hub hands every subscriber of an event the same record object; `_same` turns it into the same
GraphQL object for all of them, so the gateway can execute an event once for all subscribers of
an equal operation (gateway/fanout.py keys its shared results on that object's identity).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Annotated, TypeVar

import strawberry
from cachetools import LRUCache

from resolvers import subscriptions as uc
from schema.base import Info, from_record
from schema.breakers import CircuitBreaker, breaker
from schema.enums import Severity
from schema.incidents import Incident, IncidentEvent, incident

if TYPE_CHECKING:
    from drivers.records import IncidentRecord

__all__ = [
    "BreakerSubscriptions",
    "IncidentChange",
    "IncidentChangeKind",
    "IncidentSubscriptions",
]

R = TypeVar("R")
T = TypeVar("T")
_SAME_CAPACITY = 64  # recent records; a record evicted early only costs one more execution
_same_objects: LRUCache[tuple[int, str], tuple[object, object]] = LRUCache(maxsize=_SAME_CAPACITY)


def _same(record: R, tag: str, build: Callable[[R], T]) -> T:
    """One GraphQL object per (record object, tag): equal events stay identical objects."""
    key = (id(record), tag)
    known = _same_objects.get(key)
    if known is not None and known[0] is record:
        return known[1]  # type: ignore[return-value]
    built = build(record)
    _same_objects[key] = (record, built)  # holds the record: its id is not reused meanwhile
    return built


@strawberry.enum(description="What happened to the incident.")
class IncidentChangeKind(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    ESCALATED = "ESCALATED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"
    RESYNC = "RESYNC"


@strawberry.type(description="One committed change of an incident, with the incident as it is now.")
class IncidentChange:
    kind: IncidentChangeKind = strawberry.field(description="What happened.")
    incident: Incident | None = strawberry.field(
        description="The incident as read right after the change committed (a later change "
        "may already show); null only for kind RESYNC."
    )
    incident_id: strawberry.ID | None = strawberry.field(
        description="Same as incident.id; null only for kind RESYNC."
    )
    changed_at: datetime = strawberry.field(
        description="The incident's updatedAt (RESYNC: when the change listener came back)."
    )


def _incident_change(kind: str, record: IncidentRecord | uc.Resync) -> IncidentChange:
    if isinstance(record, uc.Resync):
        return IncidentChange(
            kind=IncidentChangeKind.RESYNC, incident=None, incident_id=None, changed_at=record.at
        )
    return IncidentChange(
        kind=IncidentChangeKind(kind),
        incident=incident(record),
        incident_id=strawberry.ID(record.id),
        changed_at=record.updated_at,
    )


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
            yield _same(record, kind, partial(_incident_change, kind))

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
            yield _same(record, "event", partial(from_record, IncidentEvent))


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
            yield _same(record, "breaker", breaker)
