"""Limit use cases: the `limits` list, point reads and nested fields (DOMAIN.md §3.1)."""

from __future__ import annotations

from drivers.mapping import (
    LIMIT_OVERRIDES,
    QUERY_LIMIT,
)
from drivers.records import (
    LimitOverrideRecord,
    LimitRecord,
)
from resolvers.context import Context
from resolvers.lists import (
    nested_list,
    root_one,
)

__all__ = [
    "get_limit",
    "limit_overrides",
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
