"""Dispatch query operations to the compiled read path (ARCHITECTURE.md § Reads).

Runs in `on_execute`, i.e. after parsing, validation and the QueryLimits checks (which already
answer `first` out of range and over-complex documents). When the whole operation compiles, the
result's data is PostgreSQL's JSON text wrapped in an `orjson.Fragment`, so the gateway writes
it out without decoding it; otherwise execution continues on the resolver path untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import (
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
    Undefined,
    parse,
    type_from_ast,
    validate,
)
from sqlalchemy.engine import Dialect
from strawberry.extensions import SchemaExtension

from resolvers.compiled import run_compiled, warm_plan
from resolvers.context import Context
from schema.selection import build_selection

__all__ = ["CompiledReads", "warm_plans"]

# A stand-in value per built-in scalar: a plan depends on which arguments are null, not on values.
_SAMPLES: dict[str, Any] = {
    GraphQLBoolean.name: False,
    GraphQLFloat.name: 0.0,
    GraphQLID.name: "0",
    GraphQLInt.name: 1,
    GraphQLString.name: "",
}


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
            root = build_selection(
                ctx.schema._schema, ctx.graphql_document, ctx.operation_name, ctx.variables
            )
            if root is not None:
                body = await run_compiled(context, root)
                if body is not None:
                    ctx.result = GraphQLExecutionResult(
                        data=orjson.Fragment(body),  # type: ignore[arg-type]
                        errors=None,
                    )
        yield


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
            root = build_selection(graphql_schema, document, name, variables)
            if root is not None and warm_plan(root, dialect):
                compiled += 1
    return compiled
