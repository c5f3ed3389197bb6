"""Shared schema plumbing: the typed Info and record → GraphQL type conversion."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode

from resolvers.context import Context

__all__ = ["Info", "from_record", "selects"]

Info = strawberry.Info[Context, None]
T = TypeVar("T")

# Per GraphQL type: how to copy a record's fields onto it, built on first use.
_COPIERS: dict[type[Any], Callable[[Any], Any]] = {}


def _copier(cls: type[Any], record: Any) -> Callable[[Any], Any]:
    wanted = {f.name for f in dataclasses.fields(cls)}
    have = {f.name for f in dataclasses.fields(record)}
    names = tuple(sorted((wanted & have) - {"record"}))
    get = operator.attrgetter(*names) if len(names) > 1 else None
    # Fields the record lacks keep their defaults. A plain default is a class attribute, so the
    # object can skip the generated __init__ (keyword parsing per row showed in profiles) and
    # take its values in one dict; a type with a default_factory or no default goes the slow way.
    fast = all(
        f.name in names or f.name == "record" or hasattr(cls, f.name)
        for f in dataclasses.fields(cls)
        if f.init
    )
    new = object.__new__

    def slow(record: Any) -> Any:
        return cls(record=record, **{n: getattr(record, n) for n in names})

    def quick(record: Any) -> Any:
        obj = new(cls)
        values = dict(zip(names, get(record), strict=True)) if get else {}
        values["record"] = record
        obj.__dict__.update(values)
        return obj

    return quick if fast and get is not None else slow


def from_record(cls: type[T], record: Any) -> T:
    """Build a GraphQL object from a record: same-named fields copied, the record kept private.

    Each type declares `record: strawberry.Private[...]` so nested resolvers see the full row.
    """
    copy = _COPIERS.get(cls)
    if copy is None:
        copy = _COPIERS[cls] = _copier(cls, record)
    return copy(record)  # type: ignore[no-any-return]


def selects(info: Info, name: str) -> bool:
    """Whether this field's selection asks for the child field `name` (fragments included).

    Lets a resolver load, together with its own rows, what a child would otherwise await one
    parent at a time. A child skipped by @skip/@include still counts: one batch too many at worst.
    """
    raw = info._raw_info
    pending: list[SelectionSetNode | None] = [node.selection_set for node in raw.field_nodes]
    spread: set[str] = set()
    while pending:
        selection_set = pending.pop()
        if selection_set is None:
            continue
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value == name:
                    return True
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = raw.fragments.get(selection.name.value)
                if fragment is not None and selection.name.value not in spread:
                    spread.add(selection.name.value)
                    pending.append(fragment.selection_set)
    return False
