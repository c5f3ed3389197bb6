"""Cheap plain fields on the resolver path (issue #8).

Most fields of a response are plain attributes of a record-backed object (`id`, `title`,
`createdAt`). Strawberry resolves each through three Python calls, and graphql-core builds a
ResolveInfo (15 fields) and walks complete_value's type checks for every one of them; for Q1
(~3,600 fields) that was the biggest share of the request's CPU.

`install_plain_resolvers` swaps the resolver of every plain Strawberry field (no resolver, no
field extension, no argument) for a `PlainAttr`, one getattr. `PlainExecutor` then answers a plain
field of scalar or enum type without a ResolveInfo: getattr, then the type's own output coercion,
exactly what complete_value does for a leaf. Anything unusual (null, a raised error, a non-leaf
type, middleware) goes through graphql-core's own `execute_field`, so values, errors and their
paths stay byte for byte the same.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLNonNull, GraphQLObjectType, is_leaf_type
from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

__all__ = ["PlainAttr", "PlainExecutor", "install_plain_resolvers"]

# Strawberry's resolver for a basic field (types/field.py via schema_converter.from_resolver).
_BASIC = "_get_basic_result"


class PlainAttr:
    """Resolver of a plain field: the source's attribute, nothing else.

    `leaf` is the field's scalar or enum type when the field is one (else None), `non_null`
    whether the field's type is non-null; PlainExecutor uses them to skip the ResolveInfo.
    """

    __slots__ = ("attr", "leaf", "non_null")

    def __init__(self, attr: str, leaf: Any, non_null: bool) -> None:
        self.attr = attr
        self.leaf = leaf
        self.non_null = non_null

    def __call__(self, source: Any, _info: Any, **_args: Any) -> Any:
        return getattr(source, self.attr)


def install_plain_resolvers(schema: strawberry.Schema) -> int:
    """Give every plain field of the built schema a PlainAttr resolver; return how many."""
    if schema.config.default_resolver is not getattr:
        return 0  # another default resolver may do more than getattr: keep Strawberry's
    count = 0
    for graphql_type in schema._schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name.startswith("__"):
            continue
        for field in graphql_type.fields.values():
            definition = (field.extensions or {}).get("strawberry-definition")
            resolve = field.resolve
            if (
                definition is None
                or not definition.is_basic_field
                or field.args
                or getattr(resolve, "__name__", None) != _BASIC
            ):
                continue
            non_null = isinstance(field.type, GraphQLNonNull)
            inner = field.type.of_type if non_null else field.type
            leaf = inner if is_leaf_type(inner) else None
            field.resolve = PlainAttr(definition.python_name, leaf, non_null)
            count += 1
    return count


_MISS = object()


def _is_error(value: Any) -> bool:
    return isinstance(value, BaseException)  # complete_value raises these: leave them to it


class PlainExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor with a fast path for plain scalar and enum fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        if manager is not None and not manager.middlewares:
            # Strawberry always passes a manager, empty unless an extension has a `resolve` hook;
            # graphql-core would ask the empty one for every field's resolver (it returns it as is).
            self.middleware_manager = None

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        field_def = self.schema.get_field(parent_type, node.name.value)
        plain = field_def.resolve if field_def is not None else None
        if (
            type(plain) is PlainAttr
            and plain.leaf is not None
            and self.middleware_manager is None
            and not node.arguments
        ):
            value = getattr(source, plain.attr, _MISS)
            if value is None:
                if not plain.non_null:
                    return None
            elif value is not _MISS and value is not Undefined and not _is_error(value):
                try:
                    coerced = plain.leaf.coerce_output_value(value)
                except Exception:  # the slow path below raises it where it belongs
                    coerced = None
                if coerced is not None and coerced is not Undefined:
                    return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
