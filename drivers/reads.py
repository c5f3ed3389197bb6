"""Generic batch reads built from the mapping: one SQL statement per batch, tenant-filtered.

Each function takes the caller's connection and returns records grouped by the key the batch was
asked for, so a DataLoader can answer every parent of one level with a single statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers.errors import map_db_errors
from drivers.keyset import Ordering
from drivers.mapping import Entity, Relation

__all__ = [
    "Page",
    "count_by_keys",
    "count_where",
    "fetch_by_keys",
    "fetch_page",
    "fetch_window_by_keys",
]

# A page: (ordering key values, record) pairs, at most `first` of them, and whether more rows
# follow. The key values are turned into cursors only if the response asks for them
# (keyset.encode_cursor): most pages select nodes only, and encoding every row was measurable.
Page = tuple[list[tuple[tuple[Any, ...], Any]], bool]
R = TypeVar("R")


def _base(entity: Entity[Any], tenant_id: str, *extra: ColumnElement[Any]) -> Select[Any]:
    return select(*extra, *entity.columns).where(entity.tenant_filter(tenant_id))


def _record(entity: Entity[R], row: Sequence[Any], skip: int) -> R:
    return entity.record(*row[skip:])


async def fetch_by_keys(
    conn: AsyncConnection,
    relation: Relation[R],
    *,
    tenant_id: str,
    keys: Sequence[Any],
) -> dict[Any, list[R]]:
    """Fetch the children of many parents in relation order, grouped by parent key."""
    entity = relation.target
    stmt = _base(entity, tenant_id, relation.child_key.label("_k")).where(
        relation.child_key.in_(list(keys))
    )
    if relation.where is not None:
        stmt = stmt.where(relation.where)
    if relation.ordering is not None:
        stmt = stmt.order_by(*relation.ordering.order_by())
    grouped: dict[Any, list[R]] = defaultdict(list)
    with map_db_errors():
        result = await conn.execute(stmt)
    for row in result:
        grouped[row[0]].append(_record(entity, row, 1))
    return grouped


async def fetch_window_by_keys(
    conn: AsyncConnection,
    relation: Relation[R],
    *,
    tenant_id: str,
    keys: Sequence[Any],
    first: int,
    after: tuple[Any, ...] | None,
) -> dict[Any, tuple[list[tuple[tuple[Any, ...], R]], bool]]:
    """Fetch one page of children for every parent in ONE statement (ROW_NUMBER per parent)."""
    ordering = relation.ordering
    if ordering is None:
        raise ValueError("a connection relation needs an ordering")
    entity = relation.target
    n_keys = len(ordering.keys)
    rank = (
        func.row_number()
        .over(partition_by=relation.child_key, order_by=ordering.order_by())
        .label("_rn")
    )
    inner = _base(
        entity,
        tenant_id,
        relation.child_key.label("_k"),
        *(k.expr.label(f"_o{i}") for i, k in enumerate(ordering.keys)),
        rank,
    ).where(relation.child_key.in_(list(keys)))
    if relation.where is not None:
        inner = inner.where(relation.where)
    if after is not None:
        inner = inner.where(ordering.after(after))
    sub = inner.subquery()
    stmt = select(sub).where(sub.c._rn <= first + 1).order_by(sub.c._k, sub.c._rn)
    grouped: dict[Any, list[tuple[tuple[Any, ...], R]]] = defaultdict(list)
    more: set[Any] = set()
    with map_db_errors():
        result = await conn.execute(stmt)
    for row in result:
        key = row[0]
        if row[1 + n_keys] > first:
            more.add(key)
            continue
        grouped[key].append((tuple(row[1 : 1 + n_keys]), _record(entity, row, 2 + n_keys)))
    return {key: (grouped.get(key, []), key in more) for key in keys}


async def count_by_keys(
    conn: AsyncConnection,
    relation: Relation[Any],
    *,
    tenant_id: str,
    keys: Sequence[Any],
) -> dict[Any, int]:
    """Count the children of many parents in one statement."""
    table = relation.target.table
    stmt = (
        select(relation.child_key, func.count())
        .where(table.c.tenant_id == tenant_id, relation.child_key.in_(list(keys)))
        .group_by(relation.child_key)
    )
    if relation.where is not None:
        stmt = stmt.where(relation.where)
    with map_db_errors():
        result = await conn.execute(stmt)
    counts = {row[0]: int(row[1]) for row in result}
    return {key: counts.get(key, 0) for key in keys}


async def fetch_page(
    conn: AsyncConnection,
    entity: Entity[Any],
    *,
    tenant_id: str,
    where: Sequence[ColumnElement[bool]],
    ordering: Ordering,
    first: int,
    after: tuple[Any, ...] | None,
) -> Page:
    """Fetch one page of a root list: `first` rows after the cursor, plus whether more follow."""
    n_keys = len(ordering.keys)
    stmt = _base(entity, tenant_id, *(k.expr.label(f"_o{i}") for i, k in enumerate(ordering.keys)))
    stmt = stmt.where(*where)
    if after is not None:
        stmt = stmt.where(ordering.after(after))
    stmt = stmt.order_by(*ordering.order_by()).limit(first + 1)
    with map_db_errors():
        rows = (await conn.execute(stmt)).all()
    page = [(tuple(row[:n_keys]), _record(entity, row, n_keys)) for row in rows[:first]]
    return page, len(rows) > first


async def count_where(
    conn: AsyncConnection,
    entity: Entity[Any],
    *,
    tenant_id: str,
    where: Sequence[ColumnElement[bool]],
) -> int:
    """Count the rows of a root list (totalCount), ignoring pagination."""
    stmt = (
        select(func.count())
        .select_from(entity.table)
        .where(entity.tenant_filter(tenant_id), *where)
    )
    with map_db_errors():
        return int((await conn.execute(stmt)).scalar_one())
