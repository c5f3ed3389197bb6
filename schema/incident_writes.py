"""Incident writes beyond acknowledge/resolve: closure, timeline notes, signal ingestion."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from resolvers import aggregation as agg
from resolvers import incidents as uc
from schema.base import Info, from_record
from schema.enums import AutoAction, IncidentEventType, IncidentTriggerType
from schema.incidents import Incident, IncidentEvent, incident

__all__ = [
    "IncidentEventInput",
    "IncidentSignalInput",
    "IncidentSignalResult",
    "IncidentWriteMutations",
]


@strawberry.input(description="An operator's timeline entry.")
class IncidentEventInput:
    event_type: IncidentEventType = strawberry.field(
        description="NOTE, CALL_FAILED, THRESHOLD_CROSSED, FREEZE_TRIGGERED or EVIDENCE_CAPTURED."
    )
    description: str = strawberry.field(description="1..2000 characters.")
    data: JSON | None = strawberry.field(default=None, description="A JSON object, ≤ 16 KiB.")


@strawberry.input(description="One signal for the incident aggregator (DOMAIN.md §3.10).")
class IncidentSignalInput:
    trigger_type: IncidentTriggerType = strawberry.field(
        description="Any trigger type except RATE_LIMIT_OVERFLOW."
    )
    trigger_value: str | None = strawberry.field(
        default=None, description="Free text (≤ 1000 chars); part of the title."
    )
    call_id: str | None = strawberry.field(
        default=None, description="The affected call or run id (≤ 256 chars)."
    )
    cost_delta_cents: Decimal = strawberry.field(
        default=Decimal(0), description="Cost to add to the incident, 0 ≤ x < 1000000."
    )
    auto_action: AutoAction | None = strawberry.field(
        default=None, description="Action taken automatically, if any."
    )
    metadata: JSON | None = strawberry.field(
        default=None, description="A JSON object copied into the INCIDENT_CREATED event."
    )


@strawberry.type(description="What the aggregator did with a signal.")
class IncidentSignalResult:
    incident: Incident = strawberry.field(description="The incident the signal landed in.")
    created: bool = strawberry.field(description="True when a new incident was opened.")
    escalated: bool = strawberry.field(description="True when the severity went up.")
    overflow: bool = strawberry.field(
        description="True when the tenant's hourly cap folded the signal into the overflow "
        "incident (the signal itself was dropped)."
    )


@strawberry.type
class IncidentWriteMutations:
    @strawberry.mutation(
        description="Manual closure (false positive, duplicate): RESOLVED with MANUAL_CLOSURE. "
        "[OPERATOR]"
    )
    async def close_incident(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The OPEN or ACKNOWLEDGED incident to close."),
        ],
        reason: Annotated[
            str, strawberry.argument(description="Why it is closed, 1..10000 chars.")
        ],
    ) -> Incident:
        return incident(await uc.close_incident(info.context, str(id), reason))

    @strawberry.mutation(description="Add an operator's entry to the timeline. [OPERATOR]")
    async def add_incident_event(
        self,
        info: Info,
        incident_id: Annotated[
            strawberry.ID, strawberry.argument(description="The incident to add the event to.")
        ],
        input: Annotated[
            IncidentEventInput,
            strawberry.argument(
                description="The event; operators may add the non-lifecycle event types only."
            ),
        ],
    ) -> IncidentEvent:
        data = uc.EventInput(
            event_type=str(input.event_type), description=input.description, data=input.data
        )
        record = await uc.add_incident_event(info.context, str(incident_id), data)
        return from_record(IncidentEvent, record)

    @strawberry.mutation(description="Report a signal to the incident aggregator. [INGEST]")
    async def ingest_incident_signal(
        self,
        info: Info,
        input: Annotated[
            IncidentSignalInput,
            strawberry.argument(description="The signal to aggregate into an incident."),
        ],
    ) -> IncidentSignalResult:
        signal = agg.Signal(
            trigger_type=str(input.trigger_type),
            trigger_value=input.trigger_value,
            call_id=input.call_id,
            cost_delta_cents=input.cost_delta_cents,
            auto_action=None if input.auto_action is None else str(input.auto_action),
            metadata=input.metadata,
        )
        outcome = await agg.ingest_incident_signal(info.context, signal)
        return IncidentSignalResult(
            incident=incident(outcome.incident),
            created=outcome.created,
            escalated=outcome.escalated,
            overflow=outcome.overflow,
        )
