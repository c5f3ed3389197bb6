"""Override queries and mutations (API.md; DOMAIN.md §3.3)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from resolvers import overrides as uc
from resolvers.lists import root_list
from schema.base import Info
from schema.enums import OverrideStatus
from schema.filters import PAGE_SIZES, filter_argument
from schema.limits import LimitOverride, override
from schema.pagination import Connection, connection

__all__ = ["OverrideMutations", "OverrideQueries", "RequestOverrideInput"]


@strawberry.input(description="A temporary increase of one limit.")
class RequestOverrideInput:
    limit_id: strawberry.ID = strawberry.field(description="The limit to raise (own tenant).")
    override_value: Decimal = strawberry.field(description="The raised value; > 0.")
    duration_hours: int = strawberry.field(description="1..168 hours.")
    reason: str = strawberry.field(description="Justification, 10..500 characters.")
    start_immediately: bool = strawberry.field(
        default=True, description="Start now and approve it yourself (ACTIVE at once)."
    )
    scheduled_start: datetime | None = strawberry.field(
        default=None, description="Required when startImmediately is false."
    )


@strawberry.type
class OverrideQueries:
    @strawberry.field(description="The tenant's overrides, newest request first.")
    async def overrides(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size, 1..100.")] = PAGE_SIZES[
            "overrides"
        ],
        after: Annotated[str | None, strawberry.argument(description="Cursor.")] = None,
        status: Annotated[
            list[OverrideStatus] | None, filter_argument("overrides", "status")
        ] = None,
    ) -> Connection[LimitOverride]:
        page = await root_list(
            info.context, "overrides", first=first, after=after, args={"status": status}
        )
        return connection(page, override)

    @strawberry.field(description="One override, or null if there is none with this id.")
    async def override(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Override id.")],
    ) -> LimitOverride | None:
        record = await uc.get_override(info.context, str(id))
        return None if record is None else override(record)


@strawberry.type
class OverrideMutations:
    @strawberry.mutation(description="Request an override; an immediate one is ACTIVE. [OPERATOR]")
    async def request_override(
        self,
        info: Info,
        input: Annotated[
            RequestOverrideInput, strawberry.argument(description="The override to request.")
        ],
    ) -> LimitOverride:
        data = uc.RequestOverrideInput(
            limit_id=str(input.limit_id),
            override_value=input.override_value,
            duration_hours=input.duration_hours,
            reason=input.reason,
            start_immediately=input.start_immediately,
            scheduled_start=input.scheduled_start,
        )
        return override(await uc.request_override(info.context, data))

    @strawberry.mutation(description="PENDING -> ACTIVE or APPROVED. [ADMIN]")
    async def approve_override(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The PENDING override to approve.")
        ],
        adjusted_value: Annotated[
            Decimal | None, strawberry.argument(description="Replaces overrideValue; > 0.")
        ] = None,
        adjusted_duration_hours: Annotated[
            int | None, strawberry.argument(description="1..168; recomputes expiresAt.")
        ] = None,
    ) -> LimitOverride:
        record = await uc.approve_override(
            info.context, str(id), adjusted_value, adjusted_duration_hours
        )
        return override(record)

    @strawberry.mutation(description="PENDING -> REJECTED. [ADMIN]")
    async def reject_override(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The PENDING override to reject.")
        ],
        reason: Annotated[str, strawberry.argument(description="Why, 1..500 characters.")],
    ) -> LimitOverride:
        return override(await uc.reject_override(info.context, str(id), reason))

    @strawberry.mutation(description="PENDING, APPROVED or ACTIVE -> CANCELLED. [OPERATOR]")
    async def cancel_override(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The PENDING, APPROVED or ACTIVE override to cancel."),
        ],
    ) -> LimitOverride:
        return override(await uc.cancel_override(info.context, str(id)))
