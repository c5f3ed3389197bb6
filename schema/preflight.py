"""What every operation must pass before either read path or any resolver runs (issue #13).

In this order, once the document is valid: exactly one operation is chosen (a document with
several and no operationName is an error, GraphQL spec GetOperation); introspection is allowed
by the INTROSPECTION policy; the caller holds the role of every root mutation field (before any
input rule can answer); and no input value is one PostgreSQL cannot store (schema/input_guard).
A refusal is the whole answer: `data` is null and nothing executes, on the resolver path, the
compiled path and (since a refused operation never compiles) the repeated-read shortcut.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationType,
)
from strawberry.extensions import SchemaExtension

from resolvers.auth import Role
from resolvers.context import Context
from resolvers.errors import Forbidden, GatewayError, Unauthenticated
from resolvers.roles import authorize_mutation
from schema.input_guard import check_document, check_variables
from schema.operation import (
    fragments_of,
    pick_operation,
    requested_operation_name,
    root_fields,
)
from schema.query_limits import INTROSPECTION_ROOTS, Introspection, Limits

__all__ = ["Preflight"]


class _AtField(Exception):
    """A refusal that belongs to one root field: it keeps that field's path, as before."""

    def __init__(self, error: GatewayError, node: FieldNode) -> None:
        super().__init__(error.message)
        self.error = error
        self.node = node


def _check_introspection(policy: Introspection, ctx: object, roots: set[str]) -> None:
    if policy == "on" or not roots & INTROSPECTION_ROOTS:
        return
    principal = getattr(ctx, "principal", None)
    if policy == "admin" and principal is not None and principal.role is Role.ADMIN:
        return
    who = "nobody" if policy == "off" else "only ADMIN"
    raise Forbidden(f"introspection is disabled here ({who} may introspect)")


class Preflight(SchemaExtension):
    def __init__(self, *, limits: Limits) -> None:
        self.limits = limits

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None and ctx.result is None and not ctx.pre_execution_errors:
            try:
                self._check(document)
            except GatewayError as exc:
                error = GraphQLError(exc.message, extensions=exc.extensions)
                ctx.result = ExecutionResult(data=None, errors=[error])
            except _AtField as refused:
                key = (refused.node.alias or refused.node.name).value
                error = GraphQLError(
                    refused.error.message,
                    nodes=[refused.node],
                    path=[key],
                    extensions=refused.error.extensions,
                )
                ctx.result = ExecutionResult(data=None, errors=[error])
        yield

    def _check(self, document: DocumentNode) -> None:
        ctx = self.execution_context
        operation = pick_operation(document, requested_operation_name(ctx))
        roots = root_fields(operation, fragments_of(document))
        _check_introspection(self.limits.introspection, ctx.context, {f.name.value for f in roots})
        if operation.operation is OperationType.MUTATION:
            for node in roots:
                if node.name.value == "__typename":
                    continue
                try:
                    if not isinstance(ctx.context, Context):
                        raise Unauthenticated("a valid bearer token is required")
                    authorize_mutation(ctx.context, node.name.value)
                except GatewayError as exc:
                    raise _AtField(exc, node) from exc
        check_document(document)
        check_variables(ctx.variables)
