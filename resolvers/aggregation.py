"""Incident aggregation (DOMAIN.md §3.10): one incident per (tenant, trigger type, 300 s window).

`aggregate` is the get-or-create rule on the caller's unit of work, shared by
`ingestIncidentSignal` and the policy-violation path (§3.14). Signals of one key are serialized
by a transaction-scoped advisory lock, so concurrent signals never create two incidents; the
tenant's creation path takes a second lock so the 20-per-hour cap holds under concurrency too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from drivers import aggregation as agg
from drivers import incidents as db
from drivers.mapping import QUERY_INCIDENT
from drivers.records import IncidentEventRecord, IncidentRecord
from drivers.rules import incidents as rules
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.unit_of_work import UnitOfWork, as_json, unit_of_work
from resolvers.validation import check_length

__all__ = ["AggregationOutcome", "Signal", "aggregate", "ingest_incident_signal", "notify_outcome"]

# numeric(10,4): cost deltas must stay below a million cents.
MAX_COST_DELTA_CENTS = Decimal(1_000_000)
MAX_METADATA_BYTES = 16_384


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """One incident signal; source_type/category are set by the governance paths."""

    trigger_type: str
    trigger_value: str | None = None
    call_id: str | None = None
    cost_delta_cents: Decimal = Decimal(0)
    auto_action: str | None = None
    metadata: Any = None  # a JSON object once checked
    source_type: str = "KILLSWITCH"
    category: str | None = None


@dataclass(slots=True, kw_only=True)
class AggregationOutcome:
    incident: IncidentRecord
    before: IncidentRecord | None
    created: bool = False
    escalated: bool = False
    overflow: bool = False
    events: list[IncidentEventRecord] = field(default_factory=list)


def check_signal(signal: Signal) -> None:
    """Refuse signals the aggregator may not take (BAD_USER_INPUT naming the field)."""
    if signal.trigger_type == "RATE_LIMIT_OVERFLOW":
        raise BadUserInput(
            "RATE_LIMIT_OVERFLOW incidents are made by the aggregator and cannot be ingested",
            field="triggerType",
        )
    check_length("triggerValue", signal.trigger_value, 1000)
    check_length("callId", signal.call_id, 256, minimum=1)
    if not Decimal(0) <= signal.cost_delta_cents < MAX_COST_DELTA_CENTS:
        raise BadUserInput(
            "costDeltaCents must be at least 0 and below 1000000", field="costDeltaCents"
        )
    if signal.metadata is not None:
        if not isinstance(signal.metadata, dict):
            raise BadUserInput("metadata must be a JSON object", field="metadata")
        if len(orjson.dumps(signal.metadata)) > MAX_METADATA_BYTES:
            raise BadUserInput(
                f"metadata must be at most {MAX_METADATA_BYTES} bytes", field="metadata"
            )


async def _event(  # noqa: PLR0917 - a private helper with one call shape
    uow: UnitOfWork,
    incident_id: str,
    event_type: str,
    text: str,
    data: dict[str, Any],
    now: datetime,
) -> IncidentEventRecord:
    return await db.insert_event(
        uow.conn,
        tenant_id=uow.tenant_id,
        incident_id=incident_id,
        event_type=event_type,
        description=text,
        data=data,
        now=now,
    )


async def _merge(
    uow: UnitOfWork, current: IncidentRecord, signal: Signal, now: datetime
) -> AggregationOutcome:
    ids = list(current.related_call_ids or [])
    if signal.call_id and signal.call_id not in ids and len(ids) < rules.MAX_RELATED_CALL_IDS:
        ids.append(signal.call_id)
    values: dict[str, Any] = {
        "related_call_ids": ids,
        "calls_affected": len(ids),
        "cost_delta_cents": current.cost_delta_cents + signal.cost_delta_cents,
        "updated_at": now,
    }
    new_severity = rules.escalation(current.severity, len(ids))
    if new_severity is not None:
        values.update(
            severity=str(new_severity), escalated=True, escalated_at=now, escalated_to=new_severity
        )
    after = await agg.update_aggregated_incident(
        uow.conn, tenant_id=uow.tenant_id, incident_id=current.id, values=values
    )
    outcome = AggregationOutcome(incident=after, before=current, escalated=new_severity is not None)
    if new_severity is not None:
        outcome.events.append(
            await _event(
                uow,
                current.id,
                "SEVERITY_ESCALATED",
                f"Severity escalated from {current.severity} to {new_severity}",
                {
                    "old_severity": current.severity,
                    "new_severity": str(new_severity),
                    "calls_affected": len(ids),
                },
                now,
            )
        )
    return outcome


async def _create(
    uow: UnitOfWork, values: dict[str, Any], data: dict[str, Any], now: datetime
) -> tuple[IncidentRecord, IncidentEventRecord]:
    incident = await db.insert_incident(
        uow.conn,
        tenant_id=uow.tenant_id,
        values={
            "status": "OPEN",
            "cause_type": "SYSTEM",
            "started_at": now,
            "created_at": now,
            "updated_at": now,
            **values,
        },
    )
    event = await _event(
        uow, incident.id, "INCIDENT_CREATED", f"Incident created: {incident.title}", data, now
    )
    return incident, event


async def _overflow(uow: UnitOfWork, signal: Signal, now: datetime) -> AggregationOutcome:
    current = await agg.fetch_overflow_incident(uow.conn, tenant_id=uow.tenant_id, now=now)
    if current is not None:
        after = await agg.update_aggregated_incident(
            uow.conn,
            tenant_id=uow.tenant_id,
            incident_id=current.id,
            values={"calls_affected": current.calls_affected + 1, "updated_at": now},
        )
        return AggregationOutcome(incident=after, before=current, overflow=True)
    incident, event = await _create(
        uow,
        {
            "title": rules.OVERFLOW_TITLE,
            "severity": "HIGH",
            "trigger_type": "RATE_LIMIT_OVERFLOW",
            "trigger_value": rules.OVERFLOW_TRIGGER_VALUE,
            "source_type": "KILLSWITCH",
            "calls_affected": 1,
            "auto_action": "AGGREGATE",
        },
        {
            "trigger_value": rules.OVERFLOW_TRIGGER_VALUE,
            "dropped_trigger_type": signal.trigger_type,
        },
        now,
    )
    return AggregationOutcome(incident=incident, before=None, overflow=True, events=[event])


async def aggregate(
    uow: UnitOfWork, signal: Signal, *, now: datetime | None = None
) -> AggregationOutcome:
    """Merge the signal into its window's open incident, or create one, or overflow (§3.10)."""
    now = now or datetime.now(UTC)
    start = rules.window_start(now)
    tenant = uow.tenant_id
    await agg.lock_aggregation_key(
        uow.conn, tenant_id=tenant, trigger_type=signal.trigger_type, window_start=start
    )
    current = await agg.fetch_open_in_window(
        uow.conn, tenant_id=tenant, trigger_type=signal.trigger_type, window_start=start
    )
    if current is not None:
        return await _merge(uow, current, signal, now)
    await agg.lock_tenant_creation(uow.conn, tenant_id=tenant)
    created = await agg.count_created_last_hour(uow.conn, tenant_id=tenant, now=now)
    if created >= rules.MAX_INCIDENTS_PER_HOUR:
        return await _overflow(uow, signal, now)
    ids = [signal.call_id] if signal.call_id else []
    incident, event = await _create(
        uow,
        {
            "title": rules.title_for(signal.trigger_type, signal.trigger_value),
            "severity": str(rules.initial_severity(signal.trigger_type)),
            "trigger_type": signal.trigger_type,
            "trigger_value": signal.trigger_value,
            "category": signal.category,
            "source_type": signal.source_type,
            "related_call_ids": ids,
            "calls_affected": len(ids),
            "cost_delta_cents": signal.cost_delta_cents,
            "auto_action": signal.auto_action,
        },
        {"trigger_value": signal.trigger_value, **(signal.metadata or {})},
        now,
    )
    return AggregationOutcome(incident=incident, before=None, created=True, events=[event])


def notify_outcome(uow: UnitOfWork, outcome: AggregationOutcome) -> None:
    """Queue the change notifications an aggregation outcome calls for."""
    incident_id = outcome.incident.id
    if outcome.before is None:
        uow.notify("INCIDENT_CREATED", incident_id)
    elif outcome.escalated:
        uow.notify("INCIDENT_ESCALATED", incident_id)
    else:
        uow.notify("INCIDENT_UPDATED", incident_id)
    for event in outcome.events:
        uow.notify("INCIDENT_EVENT_ADDED", event.id)


async def ingest_incident_signal(ctx: Context, signal: Signal) -> AggregationOutcome:
    """Aggregate one INGEST signal in its own transaction, with its audit row."""
    check_signal(signal)
    async with unit_of_work(ctx, "ingestIncidentSignal") as uow:
        outcome = await aggregate(uow, signal)
        uow.audit(
            "incidents",
            outcome.incident.id,
            before=as_json(outcome.before),
            after=as_json(outcome.incident),
        )
        notify_outcome(uow, outcome)
    ctx.loaders.one(QUERY_INCIDENT).clear(outcome.incident.id).prime(
        outcome.incident.id, outcome.incident
    )
    return outcome
