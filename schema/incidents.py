"""Incident types, inputs, and the incident queries and mutations (API.md)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from drivers.mapping import INCIDENT, INCIDENT_EVENT, INT32_MAX, INT32_MIN, ROOT_LISTS
from drivers.records import IncidentEventRecord, IncidentRecord
from resolvers import incidents as uc
from resolvers.lists import root_list
from schema.base import Info, from_record
from schema.enums import (
    IncidentTopic,
    ResolutionMethod,
)
from schema.filters import PAGE_SIZES, FilterInput, order_enum
from schema.mapped import mapped_type
from schema.pagination import After, Connection, First, connection
from schema.scalars import Long

if TYPE_CHECKING:
    from schema.scopes import ExecutionScope

__all__ = [
    "Incident",
    "IncidentEvent",
    "IncidentFilter",
    "IncidentMutations",
    "IncidentQueries",
    "ResolveIncidentInput",
]

_ExecutionScope = Annotated["ExecutionScope", strawberry.lazy("schema.scopes")]


@mapped_type(INCIDENT_EVENT, description="One entry of an incident's append-only timeline.")
class IncidentEvent:
    record: strawberry.Private[IncidentEventRecord]


def _resolution_ms(incident: IncidentRecord) -> int | None:
    """ResolvedAt - createdAt in whole milliseconds (§1.18), None while unresolved."""
    if incident.resolved_at is None:
        return None
    return int((incident.resolved_at - incident.created_at).total_seconds() * 1000)


@mapped_type(
    INCIDENT,
    description="Something went wrong for a tenant; the unit of response.",
    load=uc.incident_derived,
)
class Incident:
    """Python-logic fields only; their descriptions and SQL twins: INCIDENT_COMPUTED.

    Columns, the batch-loaded fields (through `load`) and the relations are generated from
    drivers/mapping.py; executionScopes stays here for its role check.
    """

    record: strawberry.Private[IncidentRecord]

    @strawberry.field
    def first_seen_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field
    def topic(self) -> IncidentTopic:
        return IncidentTopic.RESOLVED if self.record.status == "RESOLVED" else IncidentTopic.ACTIVE

    @strawberry.field
    def time_to_resolution_millis(self) -> Long | None:
        millis = _resolution_ms(self.record)
        return None if millis is None else Long(millis)

    @strawberry.field(
        deprecation_reason=(
            "Int overflows after ~24.8 days: null beyond 2147483647 ms. "
            "Use timeToResolutionMillis (Long)."
        ),
    )
    def time_to_resolution_ms(self) -> int | None:
        millis = _resolution_ms(self.record)
        return millis if millis is not None and INT32_MIN <= millis <= INT32_MAX else None

    @strawberry.field
    async def execution_scopes(self, info: Info) -> list[_ExecutionScope]:
        from resolvers.scopes import incident_scopes  # noqa: PLC0415 - controls-owned module
        from schema.scopes import execution_scope  # noqa: PLC0415 - cycle between the modules

        return [execution_scope(s) for s in await incident_scopes(info.context, self.record.id)]


def incident(record: IncidentRecord) -> Incident:
    """Convert an incident record."""
    return from_record(Incident, record)


@strawberry.input(description="Every given field narrows the list (AND); lists match any value.")
class IncidentFilter(FilterInput, root="incidents"):
    pass


@strawberry.input(
    description="How an incident was resolved; MANUAL_CLOSURE goes through closeIncident."
)
class ResolveIncidentInput:
    method: ResolutionMethod = strawberry.field(
        default=ResolutionMethod.MANUAL, description="AUTO, MANUAL or ROLLBACK (default MANUAL)."
    )
    notes: str | None = strawberry.field(
        default=None, description="Resolution notes; they end the RESOLVED event's text."
    )
    resolution_type: str | None = strawberry.field(
        default=None, description="Free-text resolution type, at most 50 characters."
    )
    summary: str | None = strawberry.field(default=None, description="Resolution summary.")
    postmortem_artifact_id: str | None = strawberry.field(
        default=None, description="Id of the postmortem document, if one exists."
    )


IncidentOrder = order_enum("incidents")
_DEFAULT_ORDER = IncidentOrder[ROOT_LISTS[("Query", "incidents")].default_order]


@strawberry.type
class IncidentQueries:
    @strawberry.field(description="The tenant's incidents, one keyset page at a time.")
    async def incidents(
        self,
        info: Info,
        first: First = PAGE_SIZES["incidents"],
        after: After = None,
        filter: Annotated[
            IncidentFilter | None,
            strawberry.argument(description="Narrow the list; every given field must match."),
        ] = None,
        order_by: Annotated[
            Enum,
            strawberry.argument(
                description="Row order (default newest first).", graphql_type=IncidentOrder
            ),
        ] = _DEFAULT_ORDER,
    ) -> Connection[Incident]:
        page = await root_list(
            info.context,
            "incidents",
            first=first,
            after=after,
            filter=filter.values() if filter else None,
            order=order_by.value,
        )
        return connection(page, incident)

    @strawberry.field(description="One incident, or null if there is none with this id.")
    async def incident(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="Incident id; another tenant's id reads as null."),
        ],
    ) -> Incident | None:
        record = await uc.get_incident(info.context, str(id))
        return None if record is None else incident(record)

    @strawberry.field(
        description="The tenant's incidents with this recurrenceSignature, newest first (at most "
        "50)."
    )
    async def recurrence_group(
        self,
        info: Info,
        signature: Annotated[
            str, strawberry.argument(description="The recurrenceSignature to match exactly.")
        ],
    ) -> list[Incident]:
        return [incident(r) for r in await uc.recurrence_group(info.context, signature)]


@strawberry.type
class IncidentMutations:
    @strawberry.mutation(description="OPEN -> ACKNOWLEDGED. [OPERATOR]")
    async def acknowledge_incident(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The OPEN incident to acknowledge.")
        ],
        note: Annotated[
            str | None,
            strawberry.argument(
                description="Optional note for the ACKNOWLEDGED event, at most 2000 characters."
            ),
        ] = None,
    ) -> Incident:
        return incident(await uc.acknowledge_incident(info.context, str(id), note))

    @strawberry.mutation(
        description="Give the incident a postmortem artifact id (pm- + 16 hex) unless it has "
        "one. [OPERATOR]"
    )
    async def create_postmortem_stub(
        self,
        info: Info,
        incident_id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The incident that gets a postmortem artifact id."),
        ],
    ) -> Incident:
        return incident(await uc.create_postmortem_stub(info.context, str(incident_id)))

    @strawberry.mutation(description="OPEN or ACKNOWLEDGED -> RESOLVED. [OPERATOR]")
    async def resolve_incident(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The OPEN or ACKNOWLEDGED incident to resolve."),
        ],
        input: Annotated[
            ResolveIncidentInput, strawberry.argument(description="How it was resolved.")
        ],
    ) -> Incident:
        data = uc.ResolveInput(
            method=str(input.method),
            notes=input.notes,
            resolution_type=input.resolution_type,
            summary=input.summary,
            postmortem_artifact_id=input.postmortem_artifact_id,
        )
        return incident(await uc.resolve_incident(info.context, str(id), data))
