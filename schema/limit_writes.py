"""Limit and breach mutations, and the `limitBreaches` list (API.md; DOMAIN.md §3.1-3.2)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from resolvers import breaches as breach_uc
from resolvers import limit_writes as uc
from resolvers.lists import root_list
from schema.base import Info
from schema.enums import (
    BreachType,
    Enforcement,
    LimitCategory,
    LimitConsequence,
    LimitScope,
    LimitStatus,
    ResetPeriod,
)
from schema.filters import PAGE_SIZES, FilterInput
from schema.limits import Limit, LimitBreach, breach, limit
from schema.pagination import Connection, connection

__all__ = [
    "BreachFilter",
    "BreachQueries",
    "CreateLimitInput",
    "LimitMutations",
    "RecordLimitBreachInput",
    "UpdateLimitInput",
]


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


@strawberry.input(
    description="A new limit; BUDGET needs resetPeriod, RATE windowSeconds, THRESHOLD params."
)
class CreateLimitInput:
    name: str = strawberry.field(description="1..256 characters.")
    limit_category: LimitCategory = strawberry.field(description="Immutable after create.")
    limit_type: str = strawberry.field(description="Free text, 1..32 characters; immutable.")
    max_value: Decimal = strawberry.field(description="Greater than 0.")
    description: str | None = strawberry.field(default=None, description="At most 1024 chars.")
    scope: LimitScope = strawberry.field(default=LimitScope.TENANT, description="What it covers.")
    scope_id: str | None = strawberry.field(
        default=None, description="Project, agent or provider id (required for those scopes)."
    )
    reset_period: ResetPeriod | None = strawberry.field(
        default=None, description="BUDGET only, required there."
    )
    next_reset_at: datetime | None = strawberry.field(default=None, description="BUDGET only.")
    window_seconds: int | None = strawberry.field(
        default=None, description="RATE only, required there; > 0."
    )
    measurement_window_seconds: int | None = strawberry.field(
        default=None, description="THRESHOLD only; > 0."
    )
    params: JSON | None = strawberry.field(
        default=None,
        description="THRESHOLD only: max_execution_time_ms, max_tokens, max_cost_usd, "
        "failure_signal.",
    )
    enforcement: Enforcement = strawberry.field(
        default=Enforcement.BLOCK, description="What happens on breach."
    )
    consequence: LimitConsequence | None = strawberry.field(
        default=None, description="Follow-up of a breach."
    )


@strawberry.input(description="Fields to change; omitted or null fields stay as they are.")
class UpdateLimitInput:
    name: str | None = strawberry.field(default=None, description="1..256 characters.")
    description: str | None = strawberry.field(default=None, description="At most 1024 chars.")
    max_value: Decimal | None = strawberry.field(default=None, description="Greater than 0.")
    enforcement: Enforcement | None = strawberry.field(default=None, description="On breach.")
    reset_period: ResetPeriod | None = strawberry.field(default=None, description="BUDGET only.")
    window_seconds: int | None = strawberry.field(default=None, description="RATE only; > 0.")
    params: JSON | None = strawberry.field(default=None, description="THRESHOLD only.")
    status: LimitStatus | None = strawberry.field(default=None, description="ACTIVE or DISABLED.")
    limit_category: LimitCategory | None = strawberry.field(
        default=None, description="Immutable: only the current value is accepted."
    )
    limit_type: str | None = strawberry.field(
        default=None, description="Immutable: only the current value is accepted."
    )


@strawberry.input(description="A breach reported by a machine client.")
class RecordLimitBreachInput:
    limit_id: strawberry.ID = strawberry.field(description="The breached limit (own tenant).")
    breach_type: BreachType = strawberry.field(description="Kind of breach.")
    value_at_breach: Decimal | None = strawberry.field(
        default=None, description="Measured value at the breach."
    )
    limit_value: Decimal | None = strawberry.field(
        default=None, description="The value exceeded; defaults to the limit's effective value."
    )
    run_id: str | None = strawberry.field(default=None, description="The run (own tenant).")
    incident_id: str | None = strawberry.field(
        default=None, description="The incident (own tenant)."
    )
    details: JSON | None = strawberry.field(default=None, description="Free-form details.")


@strawberry.input(description="Every given field narrows the list (AND).")
class BreachFilter(FilterInput, root="limitBreaches"):
    pass


@strawberry.type
class BreachQueries:
    @strawberry.field(description="The tenant's limit breaches, newest first.")
    async def limit_breaches(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size, 1..100.")] = PAGE_SIZES[
            "limitBreaches"
        ],
        after: Annotated[str | None, strawberry.argument(description="Cursor.")] = None,
        filter: Annotated[BreachFilter | None, strawberry.argument(description="Filters.")] = None,
    ) -> Connection[LimitBreach]:
        page = await root_list(
            info.context,
            "limitBreaches",
            first=first,
            after=after,
            filter=filter.values() if filter else None,
        )
        return connection(page, breach)


@strawberry.type
class LimitMutations:
    @strawberry.mutation(description="Create an ACTIVE limit with its integrity row. [ADMIN]")
    async def create_limit(
        self,
        info: Info,
        input: Annotated[CreateLimitInput, strawberry.argument(description="The new limit.")],
    ) -> Limit:
        data = uc.CreateLimitInput(
            name=input.name,
            limit_category=str(input.limit_category),
            limit_type=input.limit_type,
            max_value=input.max_value,
            description=input.description,
            scope=str(input.scope),
            scope_id=input.scope_id,
            reset_period=_opt(input.reset_period),
            next_reset_at=input.next_reset_at,
            window_seconds=input.window_seconds,
            measurement_window_seconds=input.measurement_window_seconds,
            params=input.params,
            enforcement=str(input.enforcement),
            consequence=_opt(input.consequence),
        )
        return limit(await uc.create_limit(info.context, data))

    @strawberry.mutation(description="Change a limit's mutable fields. [ADMIN]")
    async def update_limit(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The limit to change.")],
        input: Annotated[
            UpdateLimitInput,
            strawberry.argument(description="The fields to change; omitted ones keep their value."),
        ],
    ) -> Limit:
        data = uc.UpdateLimitInput(
            name=input.name,
            description=input.description,
            max_value=input.max_value,
            enforcement=_opt(input.enforcement),
            reset_period=_opt(input.reset_period),
            window_seconds=input.window_seconds,
            params=input.params,
            status=_opt(input.status),
            limit_category=_opt(input.limit_category),
            limit_type=input.limit_type,
        )
        return limit(await uc.update_limit(info.context, str(id), data))

    @strawberry.mutation(description="Soft delete: status DISABLED. [ADMIN]")
    async def disable_limit(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The limit to disable (soft delete).")
        ],
    ) -> Limit:
        return limit(await uc.disable_limit(info.context, str(id)))

    @strawberry.mutation(description="Record a limit breach (mandatory governance write). [INGEST]")
    async def record_limit_breach(
        self,
        info: Info,
        input: Annotated[
            RecordLimitBreachInput, strawberry.argument(description="The breach to record.")
        ],
    ) -> LimitBreach:
        data = breach_uc.RecordBreachInput(
            limit_id=str(input.limit_id),
            breach_type=str(input.breach_type),
            value_at_breach=input.value_at_breach,
            limit_value=input.limit_value,
            run_id=input.run_id,
            incident_id=input.incident_id,
            details=input.details,
        )
        return breach(await breach_uc.record_limit_breach(info.context, data))
