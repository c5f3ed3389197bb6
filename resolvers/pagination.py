"""Connection arguments and results shared by every list (API.md § Lists)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from drivers.keyset import BadCursor, Ordering, decode_cursor, encode_cursor
from resolvers.errors import BadUserInput, QueryTooComplex

__all__ = ["MAX_PAGE", "ConnectionResult", "PageArgs", "page_args"]

MAX_PAGE = 100
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageArgs:
    first: int
    after: tuple[Any, ...] | None


def page_args(first: int, after: str | None, ordering: Ordering) -> PageArgs:
    """Check `first` (1..100) and decode `after` for this ordering."""
    if not 1 <= first <= MAX_PAGE:
        raise QueryTooComplex(f"first must be between 1 and {MAX_PAGE}, got {first}", field="first")
    if after is None:
        return PageArgs(first, None)
    try:
        return PageArgs(first, decode_cursor(ordering, after))
    except BadCursor as exc:
        raise BadUserInput(f"invalid cursor: {exc}", field="after") from exc


@dataclass(frozen=True, slots=True)
class ConnectionResult(Generic[T]):
    """One page of records with their ordering keys; `total` runs only if totalCount is selected.

    A row's cursor is encoded from its keys by `cursor` only when the response selects it.
    """

    edges: list[tuple[tuple[Any, ...], T]]
    has_next_page: bool
    has_previous_page: bool
    total: Callable[[], Awaitable[int]]
    ordering: Ordering
    # The count, when it was loaded together with the page (the caller asked for totalCount):
    # the schema then answers totalCount without an awaitable.
    known_total: int | None = None

    def cursor(self, keys: tuple[Any, ...]) -> str:
        """The opaque cursor of the row with these ordering key values."""
        return encode_cursor(self.ordering, keys)
