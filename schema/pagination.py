"""Connections (API.md § Lists): nodes, edges with opaque cursors, pageInfo, totalCount."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar, cast

import strawberry

from resolvers.pagination import ConnectionResult

__all__ = ["After", "Connection", "Edge", "First", "PageInfo", "connection"]

T = TypeVar("T")

# The paging arguments of every connection field (API.md § Lists).
First = Annotated[int, strawberry.argument(description="How many rows to return, 1..100.")]
After = Annotated[
    str | None,
    strawberry.argument(description="Opaque cursor (endCursor of the previous page)."),
]


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more rows follow this page.")
    has_previous_page: bool = strawberry.field(
        description="True when the page was asked for with `after` (forward paging only)."
    )
    start_cursor: str | None = strawberry.field(description="Cursor of the first row of the page.")
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last row: pass it as `after` for the next page."
    )


@strawberry.type(description="A node with the cursor that points just after it.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque cursor of this row.")
    node: T = strawberry.field(description="The row.")


@strawberry.type(description="One page of a list.")
class Connection(Generic[T]):
    def _edges(self) -> list[Edge[T]]:
        # Built (and each cursor encoded) only when selected: most clients read `nodes`.
        cursor = self.result.cursor
        return [
            Edge(cursor=cursor(k), node=n)
            for (k, _), n in zip(self.result.edges, self.nodes, strict=True)
        ]

    nodes: list[T] = strawberry.field(description="The rows of this page.")
    edges: list[Edge[T]] = strawberry.field(
        resolver=_edges, description="The rows of this page with their cursors."
    )
    page_info: PageInfo = strawberry.field(description="Where this page sits in the list.")
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
