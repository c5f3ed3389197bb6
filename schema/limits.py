"""Limit, breach, integrity and override types, and the limit queries (API.md)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Annotated, cast

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
from resolvers.runs import breach_run
from schema.base import Info, from_record, selects
from schema.enums import (
    OverrideStatus,
)
from schema.filters import PAGE_SIZES, FilterInput
from schema.mapped import mapped_type
from schema.pagination import After, Connection, First, connection

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


@mapped_type(LIMIT_INTEGRITY, description="The integrity verdict kept for every limit.")
class LimitIntegrity:
    record: strawberry.Private[LimitIntegrityRecord]


@mapped_type(LIMIT_BREACH, description="A recorded breach of a limit (append-only).")
class LimitBreach:
    record: strawberry.Private[LimitBreachRecord]

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


@mapped_type(LIMIT_OVERRIDE, description="A temporary increase of a limit.")
class LimitOverride:
    record: strawberry.Private[LimitOverrideRecord]

    @strawberry.field(description="The limit this override raises.")
    async def limit(self, info: Info) -> Limit:
        record = await uc.override_limit(info.context, self.record)
        if record is None:
            raise RuntimeError("an override always has its limit (FK, same tenant)")
        return limit(record)


@mapped_type(LIMIT, description="A quantitative constraint: budget, rate or threshold.")
class Limit:
    record: strawberry.Private[LimitRecord]

    @strawberry.field(description="The limit's integrity row.")
    async def integrity(self, info: Info) -> LimitIntegrity:
        record = await uc.limit_integrity(info.context, self.record)
        if record is None:
            raise RuntimeError("every limit is created with its integrity row")
        return from_record(LimitIntegrity, record)

    @strawberry.field(description="Breach history, newest first.")
    async def breaches(
        self, info: Info, first: First = 20, after: After = None
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
