"""Reads shared by every domain: root connections and nested fields through the loaders."""

from __future__ import annotations

import asyncio
from asyncio import Future
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, literal

from drivers import reads
from drivers.keyset import Ordering
from drivers.mapping import ROOT_LISTS, ArgFilter, Entity, Relation
from resolvers.auth import require_role
from resolvers.context import Context
from resolvers.errors import translate_errors
from resolvers.pagination import ConnectionResult, page_args

__all__ = [
    "nested_connection",
    "nested_list",
    "nested_one",
    "nested_one_now",
    "prefetch_one",
    "root_connection",
    "root_list",
    "root_one",
]

R = TypeVar("R")


async def root_connection(
    ctx: Context,
    entity: Entity[Any],
    *,
    where: Sequence[ColumnElement[bool]],
    ordering: Ordering,
    first: int,
    after: str | None,
) -> ConnectionResult[Any]:
    """One page of a root list for the caller's tenant; totalCount is counted on demand."""
    principal = require_role(ctx)
    args = page_args(first, after, ordering)
    engine = ctx.db.reads
    with translate_errors():
        async with engine.connect() as conn:
            edges, has_next = await reads.fetch_page(
                conn,
                entity,
                tenant_id=principal.tenant_id,
                where=where,
                ordering=ordering,
                first=args.first,
                after=args.after,
            )

    async def total() -> int:
        with translate_errors():
            async with engine.connect() as conn:
                return await reads.count_where(
                    conn, entity, tenant_id=principal.tenant_id, where=where
                )

    return ConnectionResult(edges, has_next, args.after is not None, total, ordering)


async def root_list(
    ctx: Context,
    field: str,
    *,
    first: int,
    after: str | None,
    filter: Mapping[str, Any] | None = None,
    args: Mapping[str, Any] | None = None,
    order: str | None = None,
) -> ConnectionResult[Any]:
    """One page of the root list `Query.<field>` as drivers/mapping.py ROOT_LISTS describes it.

    `filter` holds the filter object's fields, `args` the top-level filter arguments (Python
    names); the compiled path builds the same clauses from the same description.
    """
    spec = ROOT_LISTS[("Query", field)]
    given = filter or {}
    values = args or {}

    def param(flt: ArgFilter, key: str, sub: str | None) -> ColumnElement[Any]:
        value = values[key] if sub is None else given[sub]
        return literal(flt.prepare(value), flt.param_type)

    return await root_connection(
        ctx,
        spec.entity,
        where=spec.where(given, values, param),
        ordering=spec.ordering(order),
        first=first,
        after=after,
    )


async def root_one(ctx: Context, relation: Relation[R], key: str) -> R | None:
    """A root point lookup (`incident(id)`); another tenant's id reads as missing."""
    require_role(ctx)
    return await ctx.loaders.one(relation).load(key)


async def nested_one(ctx: Context, relation: Relation[R], key: Any) -> R | None:
    """A to-one nested field; a null foreign key skips the loader."""
    if key is None:
        return None
    return await ctx.loaders.one(relation).load(key)


async def nested_list(ctx: Context, relation: Relation[R], key: Any) -> list[R]:
    """A plain nested list, in the relation's order."""
    return list(await ctx.loaders.many(relation).load(key))


async def nested_connection(
    ctx: Context,
    relation: Relation[R],
    key: Any,
    *,
    first: int,
    after: str | None,
    with_total: bool = False,
) -> ConnectionResult[R]:
    """One page of a nested connection; every parent of the level shares one statement.

    With `with_total` (totalCount is selected) the count's batch is queued in the same tick as
    the page's, so both statements run side by side and totalCount needs no awaitable later.
    A failed count is not raised here: `total` hands its error to the totalCount field.
    """
    if relation.ordering is None:
        raise ValueError(f"{relation.on} is not a connection")
    args = page_args(first, after, relation.ordering)
    window = ctx.loaders.window(relation, args.first, args.after).load(key)
    counted = ctx.loaders.count(relation).load(key) if with_total else None
    edges, has_next = await window
    known: int | None = None
    if counted is not None:
        await asyncio.wait((counted,))
        if counted.exception() is None:
            known = int(counted.result())

    async def total() -> int:
        return int(await (counted or ctx.loaders.count(relation).load(key)))

    return ConnectionResult(
        edges, has_next, args.after is not None, total, relation.ordering, known
    )


def nested_one_now(ctx: Context, relation: Relation[R], key: Any) -> Future[R | None] | None:
    """The to-one loader's future for `key` (None for a null key), without awaiting it.

    Done already when `prefetch_one` loaded the key, so a field can answer synchronously.
    """
    if key is None:
        return None
    return ctx.loaders.one(relation).load(key)


async def prefetch_one(ctx: Context, relation: Relation[Any], keys: Iterable[Any]) -> None:
    """Load the to-one records of many keys in one batch (errors wait for the fields)."""
    wanted = [k for k in keys if k is not None]
    if wanted:
        loader = ctx.loaders.one(relation)
        await asyncio.wait([loader.load(k) for k in wanted])
