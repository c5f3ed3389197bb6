"""Turn a validated query operation into the neutral selection tree (drivers/selection.py).

Fields are collected as GraphQL's CollectFields does: fragments and inline fragments inlined,
`@skip`/`@include` applied with the request's variables, repeated response keys merged.
Arguments are coerced by graphql-core and converted to plain values (enums to their value, input
objects to dicts keyed by Python name). A root field the tree cannot express (introspection,
abstract types) is left out of the tree and runs on the resolver path; an operation that is not
a query, or whose variables do not coerce, yields None.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
)
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
    get_directive_values,
    get_variable_values,
)
from graphql.utilities import get_operation_ast
from strawberry.utils.str_converters import to_camel_case

from drivers.selection import Field
from schema.operation import fragments_of

__all__ = ["RootSelection", "build_selection"]


class _Unsupported(Exception):
    pass


def _python_name(field: GraphQLInputField, name: str) -> str:
    definition = (field.extensions or {}).get("strawberry-definition")
    return str(getattr(definition, "python_name", None) or name)


def _neutral(value: Any, type_: Any = None) -> Any:
    """Plain values keyed by Python names: enums by value, input objects as dicts."""
    named = get_named_type(type_) if type_ is not None else None
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_neutral(v, named) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _neutral(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        if isinstance(named, GraphQLInputObjectType):
            return {
                _python_name(named.fields[k], k) if k in named.fields else k: _neutral(
                    v, named.fields[k].type if k in named.fields else None
                )
                for k, v in value.items()
            }
        return {k: _neutral(v) for k, v in value.items()}
    return value


class _Builder:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def _included(self, node: Any) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and include.get("if") is False)

    def _applies(self, type_name: str | None, parent: GraphQLObjectType) -> bool:
        if type_name is None or type_name == parent.name:
            return True
        raise _Unsupported(f"fragment on {type_name} inside {parent.name}")

    def collect(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLObjectType,
        into: dict[str, list[FieldNode]],
        seen: set[str],
    ) -> None:
        for sel in selection_set.selections:
            if not self._included(sel):
                continue
            if isinstance(sel, FieldNode):
                key = sel.alias.value if sel.alias else sel.name.value
                into.setdefault(key, []).append(sel)
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition.name.value if sel.type_condition else None
                if self._applies(cond, parent):
                    self.collect(sel.selection_set, parent, into, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                frag = self.fragments.get(name)
                if frag is None or name in seen:
                    continue
                seen.add(name)
                if self._applies(frag.type_condition.name.value, parent):
                    self.collect(frag.selection_set, parent, into, seen)

    def fields(self, nodes: list[SelectionSetNode], parent: GraphQLObjectType) -> tuple[Field, ...]:
        grouped: dict[str, list[FieldNode]] = {}
        for node in nodes:
            self.collect(node, parent, grouped, set())
        return tuple(self.field(key, group, parent) for key, group in grouped.items())

    def field(self, key: str, group: list[FieldNode], parent: GraphQLObjectType) -> Field:
        name = group[0].name.value
        if name == "__typename":
            return Field(key, name, name, "String", True, False, False, {}, ())
        if name.startswith("__"):
            raise _Unsupported("introspection")
        definition: GraphQLField = parent.fields[name]
        named = get_named_type(definition.type)
        strawberry_field = (definition.extensions or {}).get("strawberry-definition")
        attr = getattr(strawberry_field, "python_name", name)
        resolver = getattr(strawberry_field, "base_resolver", None) is not None
        arg_names = {
            a.graphql_name or to_camel_case(a.python_name): a.python_name
            for a in getattr(strawberry_field, "arguments", ())
        }
        raw = get_argument_values(definition, group[0], self.variables)
        args = {
            arg_names.get(k, k): _neutral(
                v, definition.args[k].type if k in definition.args else None
            )
            for k, v in raw.items()
        }
        if is_leaf_type(named):
            return Field(
                key,
                name,
                attr,
                named.name,
                True,
                isinstance(named, GraphQLEnumType),
                resolver,
                args,
                (),
            )
        if not isinstance(named, GraphQLObjectType):
            raise _Unsupported(f"abstract type {named}")
        children = self.fields([n.selection_set for n in group if n.selection_set], named)
        return Field(key, name, attr, named.name, False, False, resolver, args, children)


@dataclass(frozen=True, slots=True)
class RootSelection:
    """The operation's root fields: every response key, and the trees of those expressible."""

    operation: OperationDefinitionNode
    keys: tuple[str, ...]  # every root response key, in selection order
    fields: tuple[Field, ...]  # the roots the neutral tree expresses, in selection order
    nodes: Mapping[str, list[FieldNode]]  # each key's field nodes (merged by execution)


def build_selection(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> RootSelection | None:
    """The operation's root fields and their neutral trees; None: only the resolver path runs it."""
    operation = get_operation_ast(document, operation_name)
    if not isinstance(operation, OperationDefinitionNode):
        return None
    if operation.operation != OperationType.QUERY:
        return None
    coerced = get_variable_values(
        schema, operation.variable_definitions or (), dict(variables or {})
    )
    if isinstance(coerced, list):
        return None
    fragments = fragments_of(document)
    root = schema.query_type
    if root is None:
        return None
    builder = _Builder(schema, fragments, coerced)
    grouped: dict[str, list[FieldNode]] = {}
    builder.collect(operation.selection_set, root, grouped, set())
    fields = []
    for key, group in grouped.items():
        try:
            fields.append(builder.field(key, group, root))
        except (_Unsupported, KeyError):
            continue  # this root runs on the resolver path
    return RootSelection(operation, tuple(grouped), tuple(fields), grouped)
