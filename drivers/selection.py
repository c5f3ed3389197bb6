"""The neutral selection tree the compiled read path works on (ARCHITECTURE.md § Reads).

schema/selection.py builds it from a validated GraphQL operation; below schema/ nothing sees the
GraphQL AST. Fields are already merged (fragments, repeated keys), `@skip`/`@include` applied and
arguments coerced to plain Python values keyed by their Python names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Field", "flatten", "shape"]


@dataclass(frozen=True, slots=True)
class Field:
    key: str  # response key: the alias, else the field name
    name: str  # GraphQL field name (`__typename` included)
    attr: str  # Python attribute name, i.e. the record field / mapping name
    type_name: str  # named GraphQL type of the field's value (object, scalar or enum name)
    leaf: bool  # scalar or enum
    enum: bool  # an enum value
    resolver: bool  # computed by a Python resolver rather than read from the record
    args: Mapping[str, Any]
    fields: tuple[Field, ...]


def _arg_shape(value: Any) -> Any:
    """What of an argument value changes the SQL: null-ness, and which input fields are set."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return tuple(sorted((k, _arg_shape(v)) for k, v in value.items()))
    return True


def shape(fields: tuple[Field, ...], keep: frozenset[str] = frozenset()) -> tuple[Any, ...]:
    """A hashable key of everything that shapes the SQL.

    Argument values count only for `keep` arguments (an ordering changes the ORDER BY).
    """
    return tuple(
        (
            f.key,
            f.name,
            f.type_name,
            tuple(sorted((k, v if k in keep else _arg_shape(v)) for k, v in f.args.items())),
            shape(f.fields, keep),
        )
        for f in fields
    )


def flatten(fields: tuple[Field, ...]) -> Iterator[Field]:
    """Every field in pre-order; the compiler numbers fields in this order."""
    for f in fields:
        yield f
        yield from flatten(f.fields)
