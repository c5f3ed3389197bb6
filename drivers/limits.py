"""Limit reads (DOMAIN.md §1.1, §3.1): filters of the `limits` list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement

from drivers import tables as t

__all__ = ["LimitFilter", "limit_filter_clauses"]

_lim = t.limits


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitFilter:
    """Filters of the `limits` list; `limit_type` ending in `*` is a prefix match."""

    category: tuple[str, ...] | None = None
    status: tuple[str, ...] | None = None
    scope: tuple[str, ...] | None = None
    enforcement: tuple[str, ...] | None = None
    limit_type: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def limit_filter_clauses(f: LimitFilter) -> list[ColumnElement[bool]]:
    """Translate a filter into WHERE clauses (the tenant filter is added by the caller)."""
    clauses: list[ColumnElement[bool]] = []
    for column, values in (
        (_lim.c.limit_category, f.category),
        (_lim.c.status, f.status),
        (_lim.c.scope, f.scope),
        (_lim.c.enforcement, f.enforcement),
    ):
        if values is not None:
            clauses.append(column.in_(values))
    if f.limit_type is not None:
        if f.limit_type.endswith("*"):
            clauses.append(_lim.c.limit_type.startswith(f.limit_type[:-1], autoescape=True))
        else:
            clauses.append(_lim.c.limit_type == f.limit_type)
    if f.created_after is not None:
        clauses.append(_lim.c.created_at >= f.created_after)
    if f.created_before is not None:
        clauses.append(_lim.c.created_at < f.created_before)
    return clauses
