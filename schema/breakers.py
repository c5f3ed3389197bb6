"""Circuit-breaker and alert-outbox types, queries and mutations (API.md, DOMAIN.md §3.7-3.8)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from drivers.mapping import BREAKER_INCIDENT, CIRCUIT_BREAKER
from drivers.records import BreakerIncidentRecord, CircuitBreakerRecord
from resolvers import alerts as alerts_uc
from resolvers import breakers as uc
from schema.base import Info, from_record
from schema.enums import BreakerState
from schema.mapped import mapped_type
from schema.pagination import After, Connection, First, connection

__all__ = [
    "AlertOutboxStats",
    "BreakerChange",
    "BreakerIncident",
    "BreakerMutations",
    "BreakerQueries",
    "CircuitBreaker",
]

_NAME = "Breaker name; the default breaker is costsim_v2."


@mapped_type(BREAKER_INCIDENT, description="One trip of a circuit breaker.")
class BreakerIncident:
    record: strawberry.Private[BreakerIncidentRecord]


def _incident(record: BreakerIncidentRecord) -> BreakerIncident:
    return from_record(BreakerIncident, record)


@mapped_type(
    CIRCUIT_BREAKER, description="A named circuit breaker of the tenant: CLOSED (on) or OPEN (off)."
)
class CircuitBreaker:
    record: strawberry.Private[CircuitBreakerRecord]

    @strawberry.field
    def state(self) -> BreakerState:
        return BreakerState.OPEN if self.record.disabled else BreakerState.CLOSED

    @strawberry.field
    def is_open(self) -> bool:
        return self.record.disabled

    @strawberry.field
    def reason(self) -> str | None:
        return self.record.disabled_reason

    @strawberry.field
    def incident_id(self) -> strawberry.ID | None:
        value = self.record.incident_id
        return None if value is None else strawberry.ID(value)

    @strawberry.field
    async def incidents(
        self,
        info: Info,
        first: First = 20,
        after: After = None,
        include_resolved: Annotated[
            bool, strawberry.argument(description="Also list resolved incidents.")
        ] = False,
    ) -> Connection[BreakerIncident]:
        page = await uc.breaker_incidents(
            info.context, self.record, first=first, after=after, include_resolved=include_resolved
        )
        return connection(page, _incident)


def breaker(record: CircuitBreakerRecord) -> CircuitBreaker:
    """Convert a breaker record."""
    return from_record(CircuitBreaker, record)


@strawberry.type(description="What a breaker mutation did.")
class BreakerChange:
    changed: bool = strawberry.field(description="Whether the breaker changed state.")
    breaker: CircuitBreaker = strawberry.field(description="The breaker after the mutation.")
    incident: BreakerIncident | None = strawberry.field(
        description="The incident this call opened or resolved; null when nothing changed."
    )


def _change(result: uc.BreakerChange) -> BreakerChange:
    return BreakerChange(
        changed=result.changed,
        breaker=breaker(result.breaker),
        incident=None if result.incident is None else _incident(result.incident),
    )


@strawberry.type(description="The Alertmanager outbox of the tenant.")
class AlertOutboxStats:
    pending: int = strawberry.field(description="Alerts waiting to be delivered.")
    sent: int = strawberry.field(description="Alerts delivered (or skipped: no Alertmanager).")
    failed: int = strawberry.field(description="Dead letters (attempts exhausted).")
    oldest_pending_at: datetime | None = strawberry.field(
        description="createdAt of the oldest PENDING alert."
    )


@strawberry.type
class BreakerQueries:
    @strawberry.field(description="One breaker's state; a breaker never written reads CLOSED.")
    async def circuit_breaker(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description=_NAME)] = "costsim_v2",
    ) -> CircuitBreaker:
        return breaker(await uc.get_circuit_breaker(info.context, name))

    @strawberry.field(description="Every breaker of the tenant, by name (costsim_v2 always).")
    async def circuit_breakers(self, info: Info) -> list[CircuitBreaker]:
        return [breaker(r) for r in await uc.list_circuit_breakers(info.context)]

    @strawberry.field(description="Alert outbox counts per status.")
    async def alert_outbox_stats(self, info: Info) -> AlertOutboxStats:
        stats = await alerts_uc.alert_outbox_stats(info.context)
        return AlertOutboxStats(
            pending=stats.pending,
            sent=stats.sent,
            failed=stats.failed,
            oldest_pending_at=stats.oldest_pending_at,
        )


@strawberry.type
class BreakerMutations:
    @strawberry.mutation(
        description="Report a drift score (0..1); 3 in a row above 0.2 trip the breaker. [INGEST]"
    )
    async def report_breaker_drift(
        self,
        info: Info,
        drift_score: Annotated[
            float, strawberry.argument(description="Drift score between 0 and 1.")
        ],
        name: Annotated[str, strawberry.argument(description=_NAME)] = "costsim_v2",
        sample_count: Annotated[
            int | None, strawberry.argument(description="Samples behind the score.")
        ] = 1,
        details: Annotated[
            JSON | None, strawberry.argument(description="Free-form context.")
        ] = None,
    ) -> BreakerChange:
        result = await uc.report_breaker_drift(
            info.context,
            name=name,
            drift_score=drift_score,
            sample_count=sample_count,
            details=details,
        )
        return _change(result)

    @strawberry.mutation(description="Report schema errors; 5 in one report trip it. [INGEST]")
    async def report_breaker_schema_errors(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description=_NAME)] = "costsim_v2",
        error_count: Annotated[
            int | None, strawberry.argument(description="Schema errors seen.")
        ] = 1,
        details: Annotated[
            JSON | None, strawberry.argument(description="Free-form context.")
        ] = None,
    ) -> BreakerChange:
        result = await uc.report_breaker_schema_errors(
            info.context, name=name, error_count=error_count, details=details
        )
        return _change(result)

    @strawberry.mutation(description="Open the breaker by hand (P2). [ADMIN]")
    async def disable_circuit_breaker(
        self,
        info: Info,
        reason: Annotated[
            str, strawberry.argument(description="Why; the same reason again is a no-op.")
        ],
        name: Annotated[str, strawberry.argument(description=_NAME)] = "costsim_v2",
        until: Annotated[
            datetime | None,
            strawberry.argument(description="Recover at this time; default now + 24 h."),
        ] = None,
    ) -> BreakerChange:
        result = await uc.disable_circuit_breaker(
            info.context, name=name, reason=reason, until=until
        )
        return _change(result)

    @strawberry.mutation(description="Close the breaker and resolve its incident. [ADMIN]")
    async def enable_circuit_breaker(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description=_NAME)] = "costsim_v2",
        reason: Annotated[str | None, strawberry.argument(description="Why.")] = None,
    ) -> BreakerChange:
        result = await uc.enable_circuit_breaker(info.context, name=name, reason=reason)
        return _change(result)

    @strawberry.mutation(
        description="Put dead-letter alerts back in the queue with 3 more attempts. [ADMIN]"
    )
    async def retry_failed_alerts(self, info: Info) -> int:
        return await alerts_uc.retry_failed_alerts(info.context)
