"""Connections (API.md § Lists): nodes, edges with opaque cursors, pageInfo, totalCount."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import strawberry

from resolvers.pagination import ConnectionResult

__all__ = ["Connection", "Edge", "PageInfo", "connection"]

T = TypeVar("T")


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="True when the page was asked for with `after` (forward paging only)."
    )
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A node with the cursor that points just after it.")
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="One page of a list.")
class Connection(Generic[T]):
    nodes: list[T]
    edges: list[Edge[T]]
    page_info: PageInfo
    total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Rows matching the filter, over all pages; counted on demand.")
    async def total_count(self) -> int:
        return await self.total()


def connection(result: ConnectionResult[Any], convert: Callable[[Any], T]) -> Connection[T]:
    """Wrap a resolver page, converting each record once."""
    nodes = [convert(record) for _, record in result.edges]
    edges = [Edge(cursor=c, node=n) for (c, _), n in zip(result.edges, nodes, strict=True)]
    return Connection(
        nodes=nodes,
        edges=edges,
        page_info=PageInfo(
            has_next_page=result.has_next_page,
            has_previous_page=result.has_previous_page,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total=result.total,
    )
