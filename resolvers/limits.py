"""Limit use cases: the `limits` list, point reads and nested fields (DOMAIN.md §3.1)."""

from __future__ import annotations

from collections.abc import Iterable

from drivers.mapping import (
    LIMIT_BREACH_LIMIT,
    LIMIT_OVERRIDES,
    QUERY_LIMIT,
)
from drivers.records import (
    LimitBreachRecord,
    LimitOverrideRecord,
    LimitRecord,
)
from resolvers.context import Context
from resolvers.lists import (
    nested_list,
    nested_one,
    prefetch_one,
    root_one,
)

__all__ = [
    "breach_limit",
    "get_limit",
    "limit_overrides",
    "prefetch_breach_limits",
]


async def get_limit(ctx: Context, limit_id: str) -> LimitRecord | None:
    """One limit of the tenant, or None (also for another tenant's id)."""
    return await root_one(ctx, QUERY_LIMIT, limit_id)


async def limit_overrides(
    ctx: Context, limit: LimitRecord, status: list[str] | None
) -> list[LimitOverrideRecord]:
    """The limit's overrides, newest request first, optionally only some statuses."""
    rows = await nested_list(ctx, LIMIT_OVERRIDES, limit.id)
    if status is None:
        return rows
    wanted = set(status)
    return [o for o in rows if o.status in wanted]


async def breach_limit(ctx: Context, breach: LimitBreachRecord) -> LimitRecord | None:
    """The limit a breach belongs to."""
    return await nested_one(ctx, LIMIT_BREACH_LIMIT, breach.limit_id)


async def prefetch_breach_limits(ctx: Context, breaches: Iterable[LimitBreachRecord]) -> None:
    """Load the limits of many breaches in one batch, so each breach's `limit` is ready."""
    await prefetch_one(ctx, LIMIT_BREACH_LIMIT, (b.limit_id for b in breaches))
