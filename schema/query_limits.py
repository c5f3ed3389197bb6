"""Refuse hostile operations before they run (ARCHITECTURE.md "Hostile queries").

Checked once the document is valid and the variables are known, before any resolver: depth,
aliases, every `first` in 1..100, and an estimated cost where each field costs 1 times the page
sizes of the lists around it. Token count is capped in the parser itself. Introspection fields
are not counted, so GraphiQL keeps working under tight limits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    value_from_ast,
)
from strawberry.extensions import SchemaExtension

__all__ = ["Limits", "QueryLimits", "measure"]

DEFAULT_PAGE = 20
LIST_ESTIMATE = 10  # rows assumed for an unpaged nested list
MAX_FIRST = 100


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_tokens: int
    max_cost: int


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
        if name.startswith("__"):
            return
        if node.alias is not None:
            self.aliases += 1
        self.depth = max(self.depth, level)
        self.cost += mult
        definition = parent.fields.get(name)
        if definition is None or node.selection_set is None:
            return
        child_mult = mult
        first = self._first(node, definition.args)
        if first is not None:
            child_mult = mult * first
        elif _is_list(definition.type) and not parent.name.endswith("Connection"):
            # A connection's nodes/edges are already counted by its `first`.
            child_mult = mult * LIST_ESTIMATE
        target = get_named_type(definition.type)
        if isinstance(target, GraphQLObjectType):
            self.selection(node.selection_set, target, level + 1, child_mult, seen)

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
    if walk.depth > limits.max_depth:
        return f"query depth {walk.depth} exceeds {limits.max_depth}"
    if walk.aliases > limits.max_aliases:
        return f"{walk.aliases} aliases exceed {limits.max_aliases}"
    if walk.cost > limits.max_cost:
        return f"estimated cost {walk.cost} exceeds {limits.max_cost}"
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
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            operation = next(
                (
                    op
                    for op in operations
                    if ctx.operation_name is None
                    or (op.name and op.name.value == ctx.operation_name)
                ),
                None,
            )
            if operation is not None:
                reason = measure(
                    ctx.schema._schema,
                    operation,
                    fragments,
                    ctx.variables or {},
                    self.limits,
                )
                if reason is not None:
                    ctx.result = GraphQLExecutionResult(
                        data=None,
                        errors=[GraphQLError(reason, extensions={"code": "QUERY_TOO_COMPLEX"})],
                    )
        yield
