"""Object types generated from the mapping: one GraphQL field per attribute of an entity.

`@mapped_type(INCIDENT, description=...)` on a class that declares only `record` and the fields
with Python logic (resolvers, relations) adds, before those, a plain field for every attribute of
the entity (drivers/mapping.py `Entity.attributes`): its type, nullability and description come
from the table (the column comment) or the derived field. A field the class declares itself
replaces the generated one of the same name. The values are copied from the record by
`from_record` (schema/base.py), so a new column reaches the type with no edit here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import strawberry
from strawberry.scalars import JSON

from drivers.mapping import Attribute, Entity
from schema import enums  # noqa: F401 - registers every enum an attribute may name
from schema.scalars import Long

__all__ = ["mapped_type"]

T = TypeVar("T")

_SCALARS: dict[str, Any] = {
    "ID": strawberry.ID,
    "String": str,
    "Int": int,
    "Long": Long,
    "Float": float,
    "Boolean": bool,
    "Decimal": Decimal,
    "DateTime": datetime,
    "JSON": JSON,
}


def _annotation(attribute: Attribute) -> Any:
    scalar = attribute.scalar
    python: Any = _SCALARS[scalar] if isinstance(scalar, str) else scalar
    if attribute.many:
        python = list[python]
    return python | None if attribute.nullable else python


def mapped_type(entity: Entity[Any], *, description: str) -> Callable[[type[T]], type[T]]:
    """Make `cls` the Strawberry type of `entity`, its plain fields generated first."""

    def wrap(cls: type[T]) -> type[T]:
        own: dict[str, Any] = dict(inspect.get_annotations(cls))
        declared = set(own) | {k for k, v in vars(cls).items() if hasattr(v, "base_resolver")}
        annotations: dict[str, Any] = {"record": own.pop("record")}
        for attribute in entity.attributes:
            if attribute.name in declared:
                continue
            if not attribute.description:
                raise TypeError(f"{entity.table.name}.{attribute.name} needs a column comment")
            annotations[attribute.name] = _annotation(attribute)
            setattr(cls, attribute.name, strawberry.field(description=attribute.description))
        annotations.update(own)
        cls.__annotations__ = annotations
        return strawberry.type(cls, name=entity.name, description=description)

    return wrap
