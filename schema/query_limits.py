"""Refuse hostile operations before they run (ARCHITECTURE.md "Hostile queries").

Checked once the document is valid and the variables are known, before any resolver: depth,
aliases, every `first` in 1..100, and an estimated cost where each field costs 1 times the page
sizes of the lists around it. Token count is capped in the parser itself.

Introspection counts like any other field (issue #13 item 13: 120 aliased `__schema` walks held
the event loop for seconds). Its lists are estimated by the schema's real sizes (number of
types, average fields per type, ...), so the estimate follows the work; an operation may hold at
most one `__schema`; and `ofType` chains add no depth, because their length is bounded by the
schema's type wrappers, not by the query. GraphiQL's introspection query passes the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from weakref import WeakKeyDictionary

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
    VariableNode,
    get_named_type,
    value_from_ast,
)
from strawberry.extensions import SchemaExtension

from resolvers.errors import GatewayError
from schema.operation import fragments_of, pick_operation, requested_operation_name

__all__ = ["INTROSPECTION_ROOTS", "Introspection", "Limits", "QueryLimits", "measure"]

DEFAULT_PAGE = 20
LIST_ESTIMATE = 10  # rows assumed for an unpaged nested list
MAX_FIRST = 100
MAX_SCHEMA_FIELDS = 1  # `__schema` selections per operation

Introspection = Literal["on", "admin", "off"]
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
_META_FIELDS: Mapping[str, GraphQLField] = {
    "__schema": SchemaMetaFieldDef,
    "__type": TypeMetaFieldDef,
    "__typename": TypeNameMetaFieldDef,
}


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_tokens: int
    max_cost: int
    # Who may introspect (INTROSPECTION): everyone, ADMIN only, or nobody (schema/preflight.py).
    introspection: Introspection = "on"


def _wrappers(type_: Any) -> int:
    """How many List/NonNull wrappers a type has ([X!]! has 3)."""
    count = 0
    while isinstance(type_, GraphQLList | GraphQLNonNull):
        type_, count = type_.of_type, count + 1
    return count


def _typed(types: list[Any], schema: GraphQLSchema) -> Iterator[Any]:
    """The type of every field, argument and input field of the schema."""
    for t in types:
        for f in getattr(t, "fields", {}).values():
            yield f.type
            yield from (a.type for a in getattr(f, "args", {}).values())
    for d in schema.directives:
        yield from (a.type for a in d.args.values())


def _ceil_ratio(total: int, count: int) -> int:
    return max(1, math.ceil(total / max(1, count)))


_SIZES: WeakKeyDictionary[GraphQLSchema, dict[tuple[str, str], int]] = WeakKeyDictionary()


def _introspection_sizes(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
    """Rows per parent for each introspection list: the schema's real sizes, averaged."""
    sizes = _SIZES.get(schema)
    if sizes is None:
        types = list(schema.type_map.values())
        with_fields = [t for t in types if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)]
        fields = [f for t in with_fields for f in t.fields.values()]
        n = len(types)
        sizes = {
            ("__Schema", "types"): n,
            ("__Schema", "directives"): len(schema.directives),
            ("__Type", "fields"): _ceil_ratio(len(fields), n),
            ("__Type", "inputFields"): _ceil_ratio(
                sum(len(t.fields) for t in types if isinstance(t, GraphQLInputObjectType)), n
            ),
            ("__Type", "enumValues"): _ceil_ratio(
                sum(len(getattr(t, "values", ())) for t in types), n
            ),
            ("__Type", "interfaces"): _ceil_ratio(sum(len(t.interfaces) for t in with_fields), n),
            ("__Type", "possibleTypes"): 1,
            ("__Type", "ofType"): max(map(_wrappers, _typed(types, schema)), default=0),
            ("__Field", "args"): _ceil_ratio(sum(len(f.args) for f in fields), len(fields)),
            ("__Directive", "args"): _ceil_ratio(
                sum(len(d.args) for d in schema.directives), len(schema.directives)
            ),
        }
        _SIZES[schema] = sizes
    return sizes


class TooComplex(Exception):
    pass


@dataclass(slots=True)
class _Walk:
    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    depth: int = 0
    aliases: int = 0
    cost: int = 0
    schemas: int = 0
    wrappers: int = 0  # `ofType` levels around the current field
    sizes: dict[tuple[str, str], int] = field(init=False)

    def __post_init__(self) -> None:
        self.sizes = _introspection_sizes(self.schema)

    def selection(
        self,
        node: SelectionSetNode,
        parent: GraphQLObjectType,
        level: int,
        mult: int,
        seen: frozenset[str],
    ) -> None:
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                self.field(sel, parent, level, mult, seen)
            elif isinstance(sel, InlineFragmentNode):
                target = parent
                if sel.type_condition is not None:
                    named = self.schema.get_type(sel.type_condition.name.value)
                    target = named if isinstance(named, GraphQLObjectType) else parent
                self.selection(sel.selection_set, target, level, mult, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                frag = self.fragments.get(name)
                if frag is None or name in seen:
                    continue
                named = self.schema.get_type(frag.type_condition.name.value)
                target = named if isinstance(named, GraphQLObjectType) else parent
                self.selection(frag.selection_set, target, level, mult, seen | {name})

    def field(
        self,
        node: FieldNode,
        parent: GraphQLObjectType,
        level: int,
        mult: int,
        seen: frozenset[str],
    ) -> None:
        name = node.name.value
        if node.alias is not None:
            self.aliases += 1
        self.cost += mult
        if name == "__schema":
            self.schemas += 1
        wrapper_chain = name == "ofType" and parent.name == "__Type"
        if not wrapper_chain:
            self.depth = max(self.depth, level)
        elif self.wrappers >= self.sizes[("__Type", "ofType")]:
            return  # deeper than any type of the schema is wrapped: null, nothing resolves below
        definition = parent.fields.get(name) or _META_FIELDS.get(name)
        if definition is None or node.selection_set is None:
            return
        child_mult = mult
        first = self._first(node, definition.args)
        if first is not None:
            child_mult = mult * first
        elif _is_list(definition.type) and not parent.name.endswith("Connection"):
            # A connection's nodes/edges are already counted by its `first`.
            child_mult = mult * self.sizes.get((parent.name, name), LIST_ESTIMATE)
        target = get_named_type(definition.type)
        if isinstance(target, GraphQLObjectType):
            child_level = level if wrapper_chain else level + 1
            self.wrappers += wrapper_chain
            self.selection(node.selection_set, target, child_level, child_mult, seen)
            self.wrappers -= wrapper_chain

    def _first(self, node: FieldNode, args: Mapping[str, Any]) -> int | None:
        if "first" not in args:
            return None
        default = args["first"].default_value
        # A field's own default (lessons: 50) counts, not the generic 20.
        value: Any = default if isinstance(default, int) else DEFAULT_PAGE
        for arg in node.arguments or ():
            if arg.name.value == "first":
                if isinstance(arg.value, VariableNode):
                    value = self.variables.get(arg.value.name.value, value)
                else:
                    value = value_from_ast(arg.value, args["first"].type)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # graphql-core coerces 100.0 to 100, so count it as 100
        if not isinstance(value, int) or isinstance(value, bool):
            # Not an Int at all: variable coercion refuses it (BAD_USER_INPUT) before any resolver.
            return DEFAULT_PAGE
        if not 1 <= value <= MAX_FIRST:
            raise TooComplex(f"first must be between 1 and {MAX_FIRST}, got {value}")
        return value


def _is_list(type_: Any) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def measure(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    limits: Limits,
) -> str | None:
    """Return why the operation is too complex, or None if it may run."""
    root = schema.get_root_type(operation.operation)
    if root is None:
        return None
    walk = _Walk(schema, fragments, variables)
    try:
        walk.selection(operation.selection_set, root, 1, 1, frozenset())
    except TooComplex as exc:
        return str(exc)
    over = (
        (walk.schemas, MAX_SCHEMA_FIELDS, "{} __schema selections exceed {}"),
        (walk.depth, limits.max_depth, "query depth {} exceeds {}"),
        (walk.aliases, limits.max_aliases, "{} aliases exceed {}"),
        (walk.cost, limits.max_cost, "estimated cost {} exceeds {}"),
    )
    for value, limit, message in over:
        if value > limit:
            return message.format(value, limit)
    return None


class QueryLimits(SchemaExtension):
    def __init__(self, *, limits: Limits) -> None:
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None and ctx.result is None:
            try:
                operation: OperationDefinitionNode | None = pick_operation(
                    document, requested_operation_name(ctx)
                )
            except GatewayError:
                operation = None  # schema/preflight.py answers it
            if operation is not None:
                reason = measure(
                    ctx.schema._schema,
                    operation,
                    fragments_of(document),
                    ctx.variables or {},
                    self.limits,
                )
                if reason is not None:
                    ctx.result = GraphQLExecutionResult(
                        data=None,
                        errors=[GraphQLError(reason, extensions={"code": "QUERY_TOO_COMPLEX"})],
                    )
        yield
