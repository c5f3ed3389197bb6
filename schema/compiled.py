"""Dispatch query operations to the compiled read path (ARCHITECTURE.md § Reads).

Runs in `on_execute`, i.e. after parsing, validation and the QueryLimits checks (which already
answer `first` out of range and over-complex documents). When the whole operation compiles, the
result's data is PostgreSQL's JSON text wrapped in an `orjson.Fragment`, so the gateway writes
it out without decoding it; otherwise execution continues on the resolver path untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from resolvers.compiled import run_compiled
from resolvers.context import Context
from schema.selection import build_selection

__all__ = ["CompiledReads"]


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
