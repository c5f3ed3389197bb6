"""Limit, breach, integrity and override types, and the limit queries (API.md)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, cast

import strawberry
from strawberry.scalars import JSON

from drivers.limits import LimitFilter as LimitFilterSpec
from drivers.records import (
    LimitBreachRecord,
    LimitIntegrityRecord,
    LimitOverrideRecord,
    LimitRecord,
)
from resolvers import limits as uc
from resolvers.runs import breach_run
from schema.base import Info, from_record, selects
from schema.enums import (
    BreachType,
    Enforcement,
    IntegrityStatus,
    LimitCategory,
    LimitConsequence,
    LimitScope,
    LimitStatus,
    OverrideStatus,
    ResetPeriod,
)
from schema.pagination import Connection, connection

if TYPE_CHECKING:
    from schema.incidents import Incident
    from schema.runs import Run

__all__ = [
    "Limit",
    "LimitBreach",
    "LimitFilter",
    "LimitIntegrity",
    "LimitOverride",
    "LimitQueries",
    "breach",
    "limit",
    "override",
]

_Incident = Annotated["Incident", strawberry.lazy("schema.incidents")]
_Run = Annotated["Run", strawberry.lazy("schema.runs")]


@strawberry.type(description="The integrity verdict kept for every limit.")
class LimitIntegrity:
    record: strawberry.Private[LimitIntegrityRecord]
    id: strawberry.ID
    limit_id: strawberry.ID
    integrity_status: IntegrityStatus
    integrity_score: Decimal
    computed_at: datetime


@strawberry.type(description="A recorded breach of a limit (append-only).")
class LimitBreach:
    record: strawberry.Private[LimitBreachRecord]
    id: strawberry.ID
    limit_id: strawberry.ID
    run_id: str | None
    incident_id: str | None
    breach_type: BreachType
    value_at_breach: Decimal | None
    limit_value: Decimal
    details: JSON | None
    breached_at: datetime
    recovered_at: datetime | None

    @strawberry.field(description="The limit that was breached.")
    def limit(self, info: Info) -> Limit:
        # Synchronous when the parent list prefetched the limits (Incident.breaches); otherwise
        # a coroutine that graphql-core awaits.
        pending = uc.breach_limit_now(info.context, self.record)
        if pending is None:
            return _breached_limit(None)
        if pending.done():
            return _breached_limit(pending.result())
        return cast("Limit", _await_breached_limit(pending))

    @strawberry.field(description="The incident this breach is linked to, if any.")
    async def incident(self, info: Info) -> _Incident | None:
        from schema.incidents import incident  # noqa: PLC0415 - cycle between the two modules

        record = await uc.breach_incident(info.context, self.record)
        return None if record is None else incident(record)

    @strawberry.field(description="The run this breach happened in, if any.")
    async def run(self, info: Info) -> _Run | None:
        from schema.runs import run  # noqa: PLC0415 - cycle between the two modules

        record = await breach_run(info.context, self.record)
        return None if record is None else run(record)


@strawberry.type(description="A temporary increase of a limit.")
class LimitOverride:
    record: strawberry.Private[LimitOverrideRecord]
    id: strawberry.ID
    limit_id: strawberry.ID
    original_value: Decimal
    override_value: Decimal
    status: OverrideStatus
    requested_at: datetime
    requested_by: str
    reason: str
    starts_at: datetime
    expires_at: datetime
    approved_at: datetime | None
    approved_by: str | None
    rejection_reason: str | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    effective_value: Decimal = strawberry.field(
        description="overrideValue while ACTIVE, else originalValue."
    )
    limit_name: str = strawberry.field(description="The name of the overridden limit.")

    @strawberry.field(description="The limit this override raises.")
    async def limit(self, info: Info) -> Limit:
        record = await uc.override_limit(info.context, self.record)
        if record is None:
            raise RuntimeError("an override always has its limit (FK, same tenant)")
        return limit(record)


@strawberry.type(description="A quantitative constraint: budget, rate or threshold.")
class Limit:
    record: strawberry.Private[LimitRecord]
    id: strawberry.ID
    name: str
    description: str | None
    limit_category: LimitCategory
    limit_type: str
    scope: LimitScope
    scope_id: str | None
    max_value: Decimal
    reset_period: ResetPeriod | None
    next_reset_at: datetime | None
    window_seconds: int | None
    measurement_window_seconds: int | None
    params: JSON
    enforcement: Enforcement
    consequence: LimitConsequence | None
    status: LimitStatus
    created_at: datetime
    updated_at: datetime
    effective_value: Decimal = strawberry.field(
        description="The ACTIVE override's value if there is one, else maxValue."
    )
    breach_count_30d: int = strawberry.field(description="Breaches in the last 30 days.")
    last_breached_at: datetime | None = strawberry.field(
        description="Latest breach in the last 30 days."
    )

    @strawberry.field(description="The limit's integrity row.")
    async def integrity(self, info: Info) -> LimitIntegrity:
        record = await uc.limit_integrity(info.context, self.record)
        if record is None:
            raise RuntimeError("every limit is created with its integrity row")
        return from_record(LimitIntegrity, record)

    @strawberry.field(description="Breach history, newest first.")
    async def breaches(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[LimitBreach]:
        page = await uc.limit_breaches(
            info.context,
            self.record,
            first=first,
            after=after,
            with_total=selects(info, "totalCount"),
        )
        return connection(page, breach)

    @strawberry.field(description="Overrides of this limit, newest request first.")
    async def overrides(
        self, info: Info, status: list[OverrideStatus] | None = None
    ) -> list[LimitOverride]:
        wanted = None if status is None else [str(s) for s in status]
        rows = await uc.limit_overrides(info.context, self.record, wanted)
        return [from_record(LimitOverride, o) for o in rows]

    @strawberry.field(description="The ACTIVE override, if any.")
    async def active_override(self, info: Info) -> LimitOverride | None:
        record = await uc.limit_active_override(info.context, self.record)
        return None if record is None else from_record(LimitOverride, record)


def limit(record: LimitRecord) -> Limit:
    """Convert a limit record."""
    return from_record(Limit, record)


def _breached_limit(record: LimitRecord | None) -> Limit:
    if record is None:
        raise RuntimeError("a breach always has its limit (FK, same tenant)")
    return limit(record)


async def _await_breached_limit(pending: Awaitable[LimitRecord | None]) -> Limit:
    return _breached_limit(await pending)


def breach(record: LimitBreachRecord) -> LimitBreach:
    """Convert a breach record."""
    return from_record(LimitBreach, record)


def override(record: LimitOverrideRecord) -> LimitOverride:
    """Convert an override record."""
    return from_record(LimitOverride, record)


@strawberry.input(description="Omitted category means BUDGET and omitted status ACTIVE.")
class LimitFilter:
    category: list[LimitCategory] | None = None
    status: list[LimitStatus] | None = None
    scope: list[LimitScope] | None = None
    enforcement: list[Enforcement] | None = None
    limit_type: str | None = strawberry.field(
        default=None, description="Exact type, or a prefix ending in `*` (e.g. TOKENS_*)."
    )
    created_after: datetime | None = None
    created_before: datetime | None = None

    def to_spec(self) -> LimitFilterSpec:
        def strs(
            values: list[LimitCategory]
            | list[LimitStatus]
            | list[LimitScope]
            | list[Enforcement]
            | None,
        ) -> tuple[str, ...] | None:
            return None if values is None else tuple(str(v) for v in values)

        return LimitFilterSpec(
            category=strs(self.category),
            status=strs(self.status),
            scope=strs(self.scope),
            enforcement=strs(self.enforcement),
            limit_type=self.limit_type,
            created_after=self.created_after,
            created_before=self.created_before,
        )


@strawberry.type
class LimitQueries:
    @strawberry.field(description="The tenant's limits, most recently breached first.")
    async def limits(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        filter: LimitFilter | None = None,
    ) -> Connection[Limit]:
        page = await uc.list_limits(
            info.context, first=first, after=after, filter=filter.to_spec() if filter else None
        )
        return connection(page, limit)

    @strawberry.field(description="One limit, or null if there is none with this id.")
    async def limit(self, info: Info, id: strawberry.ID) -> Limit | None:
        record = await uc.get_limit(info.context, str(id))
        return None if record is None else limit(record)
