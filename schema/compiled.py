"""Dispatch query operations to the compiled read path, root field by root field.

Runs in `on_execute`, i.e. after parsing, validation and the QueryLimits checks (which already
answer `first` out of range and over-complex documents). The roots the mapping describes are
answered by one SQL statement (resolvers/compiled.py); when every root compiled, GraphQL does
not execute at all. Otherwise GraphQL executes a document of the remaining roots only, with
its usual per-root error semantics (a failing nullable root is null with its error; a failing
non-null root makes `data` null), and the answer is put together in selection order: each
compiled root is PostgreSQL's JSON text wrapped in an `orjson.Fragment`, which the gateway
writes out without decoding it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    parse,
    type_from_ast,
    validate,
)
from graphql import (
    ExecutionResult as GraphQLExecutionResult,
)
from sqlalchemy.engine import Dialect
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from resolvers.compiled import (
    CompiledRoots,
    PreparedRead,
    compile_roots,
    fetch_prepared,
    mixed_read,
    remember,
    warm_plan,
)
from resolvers.context import Context
from schema.selection import RootSelection, build_selection

__all__ = ["CompiledReads", "warm_plans"]

# A stand-in value per built-in scalar: a plan depends on which arguments are null, not on values.
_SAMPLES: dict[str, Any] = {
    GraphQLBoolean.name: False,
    GraphQLFloat.name: 0.0,
    GraphQLID.name: "0",
    GraphQLInt.name: 1,
    GraphQLString.name: "",
}


def _rest_document(
    document: DocumentNode, selection: RootSelection, keys: set[str]
) -> DocumentNode:
    """The operation reduced to the root fields `keys` (already collected: directives applied)."""
    op = selection.operation
    nodes = tuple(node for key in selection.keys if key in keys for node in selection.nodes[key])
    reduced = OperationDefinitionNode(
        operation=op.operation,
        name=op.name,
        variable_definitions=op.variable_definitions,
        directives=op.directives,
        selection_set=SelectionSetNode(selections=nodes),
    )
    fragments = tuple(d for d in document.definitions if isinstance(d, FragmentDefinitionNode))
    return DocumentNode(definitions=(reduced, *fragments))


class CompiledReads(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        context = ctx.context
        if (
            ctx.result is None
            and isinstance(context, Context)
            and context.compiled_reads
            and ctx.graphql_document is not None
            and not ctx.pre_execution_errors
        ):
            read = mixed_read(context)
            if read is not None:
                data = await fetch_prepared(context, read)
                if data is not None:
                    assert isinstance(read.rest, DocumentNode)  # noqa: S101 - built below
                    async for _ in _mixed(ctx, read.rest, read.keys, data):
                        yield
                    return
            else:
                selection = build_selection(
                    ctx.schema._schema, ctx.graphql_document, ctx.operation_name, ctx.variables
                )
                compiled = None
                if selection is not None and selection.fields:
                    compiled = await compile_roots(context, selection.fields)
                if selection is not None and compiled is not None:
                    rest = set(selection.keys) - set(compiled.data)
                    if not rest:
                        remember(context, PreparedRead(compiled.bound, selection.keys))
                        ctx.result = GraphQLExecutionResult(data=compiled.data, errors=None)
                    else:
                        document = _rest_document(ctx.graphql_document, selection, rest)
                        remember(context, PreparedRead(compiled.bound, selection.keys, document))
                        async for _ in _mixed(ctx, document, selection.keys, compiled.data):
                            yield
                        return
        yield


async def _mixed(
    ctx: ExecutionContext, rest: DocumentNode, keys: tuple[str, ...], compiled: CompiledRoots
) -> AsyncIterator[None]:
    """GraphQL executes the `rest` document; its roots and the compiled ones, in key order."""
    document = ctx.graphql_document
    ctx.graphql_document = rest
    try:
        yield
    finally:
        ctx.graphql_document = document
    result = ctx.result
    if isinstance(result, GraphQLExecutionResult) and result.data is not None:
        resolved = result.data
        result.data = {k: compiled[k] if k in compiled else resolved[k] for k in keys}


class _NoSample(Exception):
    pass


def _sample(type_: Any) -> Any:
    """A value for a required variable, or _NoSample (a custom scalar, a required input field)."""
    named = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(named, GraphQLEnumType):
        return next(iter(named.values))
    if isinstance(named, GraphQLInputObjectType):
        return {
            name: _sample(f.type)
            for name, f in named.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        }
    if getattr(named, "name", None) in _SAMPLES:
        return _SAMPLES[named.name]
    raise _NoSample(str(named))


def _sample_variables(schema: GraphQLSchema, op: OperationDefinitionNode) -> dict[str, Any]:
    """Required variables without a default get a stand-in; the others are left out (null)."""
    found = {}
    for definition in op.variable_definitions or ():
        type_ = type_from_ast(schema, definition.type)
        if isinstance(type_, GraphQLNonNull) and definition.default_value is None:
            found[definition.variable.name.value] = _sample(type_)
    return found


def warm_plans(schema: Any, documents: Iterable[str], dialect: Dialect) -> int:
    """Compile the plans of the documents' query operations before their first request.

    Plans depend on the selection's shape only (tenant and argument values are bound per
    request), so they can be built without a caller. An operation is warmed with its optional
    variables null and required ones given stand-ins; a document that does not validate, or a
    variable no stand-in fits, is left to compile on first use. Returns the plans compiled.
    """
    graphql_schema: GraphQLSchema = schema._schema
    compiled = 0
    for text in documents:
        try:
            document = parse(text)
        except GraphQLError:
            continue
        if validate(graphql_schema, document):
            continue
        for op in document.definitions:
            if not (
                isinstance(op, OperationDefinitionNode) and op.operation == OperationType.QUERY
            ):
                continue
            try:
                variables = _sample_variables(graphql_schema, op)
            except _NoSample:
                continue
            name = op.name.value if op.name else None
            selection = build_selection(graphql_schema, document, name, variables)
            if selection is not None and selection.fields and warm_plan(selection.fields, dialect):
                compiled += 1
    return compiled
