"""Limit, breach, integrity and override types, and the limit queries (API.md)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from drivers.mapping import LIMIT, LIMIT_BREACH, LIMIT_INTEGRITY, LIMIT_OVERRIDE
from drivers.records import (
    LimitBreachRecord,
    LimitIntegrityRecord,
    LimitOverrideRecord,
    LimitRecord,
)
from resolvers import limits as uc
from resolvers.lists import root_list
from schema.base import Info, from_record
from schema.enums import (
    OverrideStatus,
)
from schema.filters import PAGE_SIZES, FilterInput
from schema.mapped import mapped_type
from schema.pagination import After, Connection, First, connection

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


@mapped_type(LIMIT_INTEGRITY, description="The integrity verdict kept for every limit.")
class LimitIntegrity:
    record: strawberry.Private[LimitIntegrityRecord]


@mapped_type(LIMIT_BREACH, description="A recorded breach of a limit (append-only).")
class LimitBreach:
    record: strawberry.Private[LimitBreachRecord]


@mapped_type(LIMIT_OVERRIDE, description="A temporary increase of a limit.")
class LimitOverride:
    record: strawberry.Private[LimitOverrideRecord]


@mapped_type(LIMIT, description="A quantitative constraint: budget, rate or threshold.")
class Limit:
    record: strawberry.Private[LimitRecord]

    @strawberry.field
    async def overrides(
        self,
        info: Info,
        status: Annotated[
            list[OverrideStatus] | None,
            strawberry.argument(description="Only overrides in these statuses (all when omitted)."),
        ] = None,
    ) -> list[LimitOverride]:
        wanted = None if status is None else [str(s) for s in status]
        rows = await uc.limit_overrides(info.context, self.record, wanted)
        return [from_record(LimitOverride, o) for o in rows]


def limit(record: LimitRecord) -> Limit:
    """Convert a limit record."""
    return from_record(Limit, record)


def breach(record: LimitBreachRecord) -> LimitBreach:
    """Convert a breach record."""
    return from_record(LimitBreach, record)


def override(record: LimitOverrideRecord) -> LimitOverride:
    """Convert an override record."""
    return from_record(LimitOverride, record)


@strawberry.input(description="Omitted category means BUDGET and omitted status ACTIVE.")
class LimitFilter(FilterInput, root="limits"):
    pass


@strawberry.type
class LimitQueries:
    @strawberry.field(description="The tenant's limits, most recently breached first.")
    async def limits(
        self,
        info: Info,
        first: First = PAGE_SIZES["limits"],
        after: After = None,
        filter: Annotated[
            LimitFilter | None,
            strawberry.argument(description="Narrow the list (default: ACTIVE BUDGET limits)."),
        ] = None,
    ) -> Connection[Limit]:
        page = await root_list(
            info.context,
            "limits",
            first=first,
            after=after,
            filter=filter.values() if filter else None,
        )
        return connection(page, limit)

    @strawberry.field(description="One limit, or null if there is none with this id.")
    async def limit(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="Limit id; another tenant's id reads as null."),
        ],
    ) -> Limit | None:
        record = await uc.get_limit(info.context, str(id))
        return None if record is None else limit(record)
