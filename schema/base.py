"""Shared schema plumbing: the typed Info and record → GraphQL type conversion."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import strawberry

from resolvers.context import Context

__all__ = ["Info", "from_record"]

Info = strawberry.Info[Context, None]
T = TypeVar("T")

_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def from_record(cls: type[T], record: Any) -> T:
    """Build a GraphQL object from a record: same-named fields copied, the record kept private.

    Each type declares `record: strawberry.Private[...]` so nested resolvers see the full row.
    """
    names = _FIELDS.get(cls)
    if names is None:
        wanted = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        have = {f.name for f in dataclasses.fields(record)}
        names = _FIELDS[cls] = tuple(sorted((wanted & have) - {"record"}))
    build: Any = cls
    return build(record=record, **{n: getattr(record, n) for n in names})  # type: ignore[no-any-return]
