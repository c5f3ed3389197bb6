"""Limit use cases: the `limits` list, point reads and nested fields (DOMAIN.md §3.1)."""

from __future__ import annotations

from asyncio import Future
from collections.abc import Iterable

from drivers.mapping import (
    LIMIT_ACTIVE_OVERRIDE,
    LIMIT_BREACH_INCIDENT,
    LIMIT_BREACH_LIMIT,
    LIMIT_BREACHES,
    LIMIT_INTEGRITY_ROW,
    LIMIT_OVERRIDE_LIMIT,
    LIMIT_OVERRIDES,
    QUERY_LIMIT,
)
from drivers.records import (
    IncidentRecord,
    LimitBreachRecord,
    LimitIntegrityRecord,
    LimitOverrideRecord,
    LimitRecord,
)
from resolvers.context import Context
from resolvers.lists import (
    nested_connection,
    nested_list,
    nested_one,
    nested_one_now,
    prefetch_one,
    root_one,
)
from resolvers.pagination import ConnectionResult

__all__ = [
    "breach_incident",
    "breach_limit",
    "breach_limit_now",
    "get_limit",
    "limit_active_override",
    "limit_breaches",
    "limit_integrity",
    "limit_overrides",
    "override_limit",
    "prefetch_breach_limits",
]


async def get_limit(ctx: Context, limit_id: str) -> LimitRecord | None:
    """One limit of the tenant, or None (also for another tenant's id)."""
    return await root_one(ctx, QUERY_LIMIT, limit_id)


async def limit_breaches(
    ctx: Context,
    limit: LimitRecord,
    *,
    first: int,
    after: str | None,
    with_total: bool = False,
) -> ConnectionResult[LimitBreachRecord]:
    """The limit's breach history, newest first (with its count when totalCount is asked)."""
    return await nested_connection(
        ctx, LIMIT_BREACHES, limit.id, first=first, after=after, with_total=with_total
    )


async def limit_overrides(
    ctx: Context, limit: LimitRecord, status: list[str] | None
) -> list[LimitOverrideRecord]:
    """The limit's overrides, newest request first, optionally only some statuses."""
    rows = await nested_list(ctx, LIMIT_OVERRIDES, limit.id)
    if status is None:
        return rows
    wanted = set(status)
    return [o for o in rows if o.status in wanted]


async def limit_integrity(ctx: Context, limit: LimitRecord) -> LimitIntegrityRecord | None:
    """The limit's integrity row (exactly one exists for every ACTIVE limit)."""
    return await nested_one(ctx, LIMIT_INTEGRITY_ROW, limit.id)


async def limit_active_override(ctx: Context, limit: LimitRecord) -> LimitOverrideRecord | None:
    """The limit's ACTIVE override, if any."""
    return await nested_one(ctx, LIMIT_ACTIVE_OVERRIDE, limit.id)


async def breach_limit(ctx: Context, breach: LimitBreachRecord) -> LimitRecord | None:
    """The limit a breach belongs to."""
    return await nested_one(ctx, LIMIT_BREACH_LIMIT, breach.limit_id)


def breach_limit_now(ctx: Context, breach: LimitBreachRecord) -> Future[LimitRecord | None] | None:
    """The breach's limit as the loader's future, done once `prefetch_breach_limits` ran."""
    return nested_one_now(ctx, LIMIT_BREACH_LIMIT, breach.limit_id)


async def prefetch_breach_limits(ctx: Context, breaches: Iterable[LimitBreachRecord]) -> None:
    """Load the limits of many breaches in one batch, so each breach's `limit` is ready."""
    await prefetch_one(ctx, LIMIT_BREACH_LIMIT, (b.limit_id for b in breaches))


async def override_limit(ctx: Context, override: LimitOverrideRecord) -> LimitRecord | None:
    """The limit an override raises."""
    return await nested_one(ctx, LIMIT_OVERRIDE_LIMIT, override.limit_id)


async def breach_incident(ctx: Context, breach: LimitBreachRecord) -> IncidentRecord | None:
    """The incident a breach is linked to, if any."""
    return await nested_one(ctx, LIMIT_BREACH_INCIDENT, breach.incident_id)
