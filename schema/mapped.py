"""Object types generated from the mapping (drivers/mapping.py), the one description.

`@mapped_type(INCIDENT, description=..., load=...)` on a class that declares only `record` and
the fields with Python logic generates:
- before those, a plain field for every attribute of the entity (`Entity.attributes`): type,
  nullability and description from the table (the column comment) or the derived field; the
  values are copied from the record by `from_record` (schema/base.py), so a new column reaches
  the type with no edit here;
- after them, a field per batch-loaded attribute (`Entity.loaded`), whose resolver reads the
  batch loader `load`, and a field per described `Relation` of the type (`RELATIONS`), whose
  resolver reads the relation's loader and whose child type is found in a registry of the
  mapped types when the schema is built.
A field the class declares itself replaces the generated one of the same name; a Python-logic
field or relation declared there takes its description from the mapping (`Entity.computed`,
`Relation.description`), which is then its only description.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import strawberry
from strawberry.annotation import StrawberryAnnotation
from strawberry.scalars import JSON

from drivers.mapping import RELATIONS, Attribute, Entity, Relation
from resolvers.context import Context
from resolvers.lists import nested_connection, nested_list, nested_one_now, prefetch_one
from schema import enums  # noqa: F401 - registers every enum an attribute may name
from schema.base import Info, from_record, selects
from schema.pagination import After, Connection, First, connection
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


# Every mapped Strawberry type by GraphQL name, filled by @mapped_type: the namespace in which
# generated relation fields name their child type, resolved when the schema is built.
_TYPES: dict[str, Any] = {"Connection": Connection}


# Generated to-one relations by parent type name: what a generated list prefetches.
_TO_ONE: dict[str, list[tuple[str, Relation[Any]]]] = {}


async def _later(pending: Awaitable[Any], finish: Callable[[Any], Any]) -> Any:
    return finish(await pending)


async def _prefetch_to_one(info: Info, child: str, rows: list[Any]) -> None:
    """Load each selected generated to-one field of the rows in one batch per relation.

    Those fields then answer synchronously (no awaitable per row for graphql-core); the
    batches run side by side, as the fields' own loads would.
    """
    wanted = [r for name, r in _TO_ONE.get(child, ()) if selects(info, name)]
    if rows and wanted:
        # Keys as lists: a generator would read `r` only when its coroutine starts.
        await asyncio.gather(
            *(
                prefetch_one(info.context, r, [getattr(row, r.parent_field) for row in rows])
                for r in wanted
            )
        )


def _relation_field(parent: str, name: str, relation: Relation[Any]) -> Any:
    """The field of a plain relation: its child rows through the relation's batch loader."""
    child = relation.target.name
    key = relation.parent_field

    def convert(record: Any) -> Any:
        return from_record(_TYPES[child], record)

    if relation.kind == "one":

        def finish(found: Any) -> Any:
            if found is not None:
                return convert(found)
            if relation.required:
                raise RuntimeError(f"{relation.on}: the required row is missing")
            return None

        def one(self: Any, info: Info) -> Any:
            # Synchronous when the row is loaded already (e.g. prefetched by the parent list);
            # otherwise a coroutine that graphql-core awaits.
            pending = nested_one_now(info.context, relation, getattr(self.record, key))
            if pending is None:
                return finish(None)
            if pending.done():
                return finish(pending.result())
            return _later(pending, finish)

        resolve: Callable[..., Any] = one
        annotation = child if relation.required else f"{child} | None"
        if relation.parent_where is None:  # else the loader may not be asked for every row
            _TO_ONE.setdefault(parent, []).append((name, relation))
    elif relation.kind == "list":

        async def many(self: Any, info: Info) -> Any:
            rows = await nested_list(info.context, relation, getattr(self.record, key))
            await _prefetch_to_one(info, child, rows)
            return [convert(r) for r in rows]

        resolve, annotation = many, f"list[{child}]"
    else:

        async def page(self: Any, info: Info, first: First = 20, after: After = None) -> Any:
            result = await nested_connection(
                info.context,
                relation,
                getattr(self.record, key),
                first=first,
                after=after,
                with_total=selects(info, "totalCount"),
            )
            return connection(result, convert)

        resolve, annotation = page, f"Connection[{child}]"
    resolve.__name__ = relation.attr
    # The child type is named in the registry, found when the schema is built (it may not be
    # decorated yet); `_name_children` sets it once Strawberry has processed the class.
    resolve.__annotations__ = {"info": Info, "return": Any}
    if relation.kind == "connection":
        resolve.__annotations__.update(first=First, after=After)
    resolved = strawberry.field(resolver=resolve, description=relation.description)
    _CHILDREN[resolved] = annotation
    return resolved


# Generated relation fields -> their return type, named in _TYPES (e.g. "Run | None").
_CHILDREN: dict[Any, str] = {}


def _name_children(cls: type[Any]) -> None:
    """Type the class's generated relation fields by name, resolved when the schema is built."""
    for f in cls.__strawberry_definition__.fields:
        annotation = _CHILDREN.pop(f, None)
        if annotation is not None:
            f.type_annotation = StrawberryAnnotation(annotation, namespace=_TYPES)


# The batch loader of an entity's `loaded` fields: (context, record) -> the loaded record.
Load = Callable[[Context, Any], Awaitable[Any]]


def _loaded_field(attribute: Attribute, load: Load) -> Any:
    """A field read from the entity's batch loader (one statement per request level)."""
    name = attribute.name

    async def resolve(self: Any, info: Info) -> Any:
        return getattr(await load(info.context, self.record), name)

    resolve.__name__ = name
    resolve.__annotations__ = {"info": Info, "return": _annotation(attribute)}
    return strawberry.field(resolver=resolve, description=attribute.description)


def _describe(entity: Entity[Any], cls: type[Any], name: str, description: str) -> None:
    """Give a Python-logic field the description the mapping holds for it."""
    resolver = vars(cls).get(name)
    if not hasattr(resolver, "base_resolver"):
        raise TypeError(f"{entity.name}.{name}: described in the mapping, needs its resolver here")
    if resolver.description is not None:
        raise TypeError(f"{entity.name}.{name}: described in the mapping, not here")
    resolver.description = description


def _move_last(cls: type[Any], names: list[str]) -> None:
    """Put these fields last, in this order (Strawberry keeps the class's field order)."""
    for name in names:
        value = vars(cls)[name]
        delattr(cls, name)
        setattr(cls, name, value)


def mapped_type(
    entity: Entity[Any], *, description: str, load: Load | None = None
) -> Callable[[type[T]], type[T]]:
    """Make `cls` the Strawberry type of `entity`, its plain fields generated first.

    Then come the class's own fields (Python logic; a `computed` one takes its description
    from the mapping), the entity's batch-loaded fields, read through `load`, and last its
    relations (drivers/mapping.py RELATIONS with a description, in their order): generated
    from the Relation unless the class declares one with Python logic.
    """

    def wrap(cls: type[T]) -> type[T]:
        own: dict[str, Any] = dict(inspect.get_annotations(cls))
        declared = set(own) | {k for k, v in vars(cls).items() if hasattr(v, "base_resolver")}
        annotations: dict[str, Any] = {"record": own.pop("record")}
        for name, derived in entity.computed.items():
            _describe(entity, cls, name, derived.description)
        relations = {
            field: r
            for (parent, field), r in RELATIONS.items()
            if parent == entity.name and r.description
        }
        loaded = [a for a in entity.attributes if a.loaded and a.name not in declared]
        if loaded and load is None:
            raise TypeError(f"{entity.name}: batch-loaded fields need `load`")
        for attribute in entity.attributes:
            if attribute.name in declared or attribute.loaded:
                continue
            if not attribute.description:
                raise TypeError(f"{entity.table.name}.{attribute.name} needs a column comment")
            annotations[attribute.name] = _annotation(attribute)
            setattr(cls, attribute.name, strawberry.field(description=attribute.description))
        annotations.update(own)
        cls.__annotations__ = annotations
        for attribute in loaded:
            setattr(cls, attribute.name, _loaded_field(attribute, load))  # type: ignore[arg-type]
        for field, relation in relations.items():
            if relation.attr in declared:
                _describe(entity, cls, relation.attr, relation.description)
            else:
                setattr(cls, relation.attr, _relation_field(entity.name, field, relation))
        _move_last(cls, [a.name for a in loaded] + [r.attr for r in relations.values()])
        typed = strawberry.type(cls, name=entity.name, description=description)
        _name_children(typed)
        _TYPES[entity.name] = typed
        return typed

    return wrap
