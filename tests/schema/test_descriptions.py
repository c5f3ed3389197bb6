"""Every public schema element carries a description (issue #15 item 8)."""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
)

from schema import Limits, build_schema

_BUILTIN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}


def undescribed(schema: GraphQLSchema) -> list[str]:
    """Schema coordinates of every type, field, argument, input field and enum value without one."""
    missing: list[str] = []

    def check(coordinate: str, description: str | None) -> None:
        if not (description or "").strip():
            missing.append(coordinate)

    for name, t in sorted(schema.type_map.items()):
        if name.startswith("__") or name in _BUILTIN_SCALARS:
            continue
        check(name, t.description)
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType):
            for fname, field in t.fields.items():
                check(f"{name}.{fname}", field.description)
                for aname, arg in field.args.items():
                    check(f"{name}.{fname}({aname}:)", arg.description)
        elif isinstance(t, GraphQLInputObjectType):
            for fname, field in t.fields.items():
                check(f"{name}.{fname}", field.description)
        elif isinstance(t, GraphQLEnumType):
            for vname, value in t.values.items():
                check(f"{name}.{vname}", value.description)
        elif isinstance(t, GraphQLScalarType | GraphQLUnionType):
            pass
    return missing


def test_every_public_schema_element_has_a_description() -> None:
    schema = build_schema(
        Limits(max_depth=10, max_aliases=30, max_tokens=2000, max_cost=50_000)
    )._schema
    missing = undescribed(schema)
    assert missing == [], f"{len(missing)} schema elements without a description:\n" + "\n".join(
        missing
    )
