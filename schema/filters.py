"""Filter input types generated from the mapping's root lists (drivers/mapping.py ROOT_LISTS).

A filter input is declared as `class IncidentFilter(FilterInput, root="incidents")` under
`@strawberry.input(description=...)`: its fields (names, types, nullability, null defaults and
descriptions) come from the root list's `filters`, so a filter is described once, in the
mapping, and both read paths and the GraphQL input see it with no other edit.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar

import strawberry

from drivers.mapping import ROOT_LISTS, ArgFilter, RootList

__all__ = ["PAGE_SIZES", "FilterInput", "argument_type", "filter_argument", "order_enum"]

# The default `first` of each root list, by field name (the mapping's `page_size`).
PAGE_SIZES: dict[str, int] = {name: spec.page_size for (_, name), spec in ROOT_LISTS.items()}


def argument_type(flt: ArgFilter) -> Any:
    """The GraphQL (Python) type of one filter value: a list for `in`, nullable always."""
    # str, datetime or an enum of drivers/enums.py (registered as GraphQL enum by schema/enums.py)
    one: Any = strawberry.ID if flt.graphql_id else flt.value
    return (list[one] if flt.many else one) | None


def filter_argument(root: str, name: str) -> Any:
    """`strawberry.argument` of a top-level filtering argument, described by the mapping.

    The argument's Python type stays in the resolver's signature (what mypy checks);
    tests/compiled/test_filters.py sends every such argument through both paths.
    """
    flt = ROOT_LISTS[("Query", root)].arg_filters[name]
    return strawberry.argument(description=flt.description)


def order_enum(root: str) -> type[Enum]:
    """The GraphQL enum of a root list's ordering argument, generated from the mapping.

    Its values are the root list's orderings (keys and `Ordering.description`), its name and
    description the root list's `order_enum`.
    """
    spec = ROOT_LISTS[("Query", root)]
    if spec.order_enum is None:
        raise TypeError(f"Query.{root} has no ordering enum")
    name, description = spec.order_enum
    enum = Enum(name, {value: value for value in spec.orderings}, module=__name__)  # type: ignore[misc]
    strawberry.enum(enum, description=description)
    for value in enum.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = spec.orderings[value.name].description
    return enum


class FilterInput:
    """Base of the generated filter inputs; `values()` hands the set fields to the resolvers."""

    root: ClassVar[RootList]

    def __init_subclass__(cls, *, root: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.root = ROOT_LISTS[("Query", root)]
        annotations: dict[str, Any] = {}
        for name, flt in cls.root.filters.items():
            annotations[name] = argument_type(flt)
            setattr(cls, name, strawberry.field(default=None, description=flt.description))
        cls.__annotations__ = annotations

    def values(self) -> dict[str, Any]:
        """Every filter field's value by Python name (None when null or omitted)."""
        return {name: getattr(self, name) for name in self.root.filters}
