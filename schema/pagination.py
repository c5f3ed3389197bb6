"""Connections (API.md § Lists): nodes, edges with opaque cursors, pageInfo, totalCount."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, cast

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
    def _edges(self) -> list[Edge[T]]:
        # Built (and each cursor encoded) only when selected: most clients read `nodes`.
        cursor = self.result.cursor
        return [
            Edge(cursor=cursor(k), node=n)
            for (k, _), n in zip(self.result.edges, self.nodes, strict=True)
        ]

    nodes: list[T]
    edges: list[Edge[T]] = strawberry.field(resolver=_edges)
    page_info: PageInfo
    total: strawberry.Private[Callable[[], Awaitable[int]]]
    result: strawberry.Private[ConnectionResult[Any]]

    @strawberry.field(description="Rows matching the filter, over all pages; counted on demand.")
    def total_count(self) -> int:
        # Synchronous when the count came with the page (no awaitable for graphql-core to
        # track); otherwise the count's coroutine, which graphql-core awaits.
        known = self.result.known_total
        if known is not None:
            return known
        return cast("int", self.total())


def connection(result: ConnectionResult[Any], convert: Callable[[Any], T]) -> Connection[T]:
    """Wrap a resolver page, converting each record once; edges and cursors come on demand."""
    edges = result.edges
    return Connection(
        nodes=[convert(record) for _, record in edges],
        page_info=PageInfo(
            has_next_page=result.has_next_page,
            has_previous_page=result.has_previous_page,
            start_cursor=result.cursor(edges[0][0]) if edges else None,
            end_cursor=result.cursor(edges[-1][0]) if edges else None,
        ),
        total=result.total,
        result=result,
    )
