"""Prepared mutations: a mutation document is parsed, validated and checked once (issue #16).

The normal path (Strawberry's view and schema) parses, validates and runs six extension hooks
around every request; for a one-statement mutation that was most of the gateway's CPU. A
`WritePlan` keeps what does not depend on the request: the parsed and validated document, the
chosen operation, its root fields, and whether the query limits hold whatever the variables.
`run_plan` then does only what does: the caller's role for each root field, the input guard on
the variables (and the query limits when a `first` takes a variable), and graphql-core's
execution of the cached document with the schema's own resolvers, so the use cases, their unit
of work, the payload and every execution error are the normal path's. Its errors are logged and
coded by schema/errors.py, as ErrorCodes and the schema's process_errors do.

Whatever the plan would refuse before execution (a missing role, an unstorable value, variables
that do not coerce, an over-complex operation) is not answered here: `run_plan` returns None
before anything ran, and the normal path answers it, so refusals come from one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    ArgumentNode,
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    Node,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    parse,
    specified_rules,
)
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import validate_document

from resolvers.context import Context
from resolvers.errors import GatewayError
from resolvers.roles import authorize_mutation
from schema.errors import coded_error, log_errors
from schema.fastpath import PlainExecutor
from schema.input_guard import check_document, check_variables
from schema.operation import fragments_of, pick_operation, root_fields
from schema.prepared_call import DirectCall, direct_call
from schema.query_limits import Limits, measure

__all__ = ["WritePlan", "WritePlans", "run_plan"]

# Documents remembered per process (each key is a document text), and the largest one kept:
# mutation documents are small; a larger one, or a text without "mutation", is left to the view
# without parsing it here.
PLANS_MAX = 512
DOCUMENT_MAX = 16_384


@dataclass(frozen=True, slots=True)
class WritePlan:
    """A mutation operation that parsed, validated and passed every request-free check."""

    document: DocumentNode
    operation: OperationDefinitionNode
    operation_name: str | None
    fragments: Mapping[str, FragmentDefinitionNode]
    roots: tuple[str, ...]  # root fields whose role the caller must hold (Preflight's order)
    limits_need_variables: bool  # a `first` takes a variable: measure per request
    direct: DirectCall | None  # the root field called without the executor's walk, if plain


def _first_from_variable(node: Node) -> bool:
    """Whether any `first` argument below `node` takes a variable (query_limits reads it)."""
    if isinstance(node, ArgumentNode):
        return node.name.value == "first" and isinstance(node.value, VariableNode)
    for key in node.keys:
        value = getattr(node, key, None)
        children = value if isinstance(value, (list, tuple)) else (value,)
        for child in children:
            if isinstance(child, Node) and _first_from_variable(child):
                return True
    return False


class WritePlans:
    """The plans of the mutation documents seen so far, by (document, operation name).

    A text without "mutation" (every query) is not parsed here at all. A document that is no
    mutation, or that the normal path would refuse whatever the request, is remembered as None:
    the lookup then costs one dict access and the normal path runs.
    """

    def __init__(self, schema: strawberry.Schema, limits: Limits) -> None:
        self.schema = schema
        self.limits = limits
        self._plans: dict[tuple[str, str | None], WritePlan | None] = {}

    def get(self, query: str, operation_name: str | None) -> WritePlan | None:
        if "mutation" not in query or len(query) > DOCUMENT_MAX:
            return None  # no mutation, or one too large to keep: the view's, nothing cached
        key = (query, operation_name)
        try:
            return self._plans[key]
        except KeyError:
            pass
        plan = self._build(query, operation_name)
        if len(self._plans) >= PLANS_MAX:
            self._plans.pop(next(iter(self._plans)))  # the oldest: dicts keep insertion order
        self._plans[key] = plan
        return plan

    def _build(self, query: str, operation_name: str | None) -> WritePlan | None:
        """The plan, or None where the normal path must answer (any refusal it would give)."""
        try:
            document = parse(query, max_tokens=self.limits.max_tokens)
            operation = pick_operation(document, operation_name)
        except (GraphQLError, GatewayError):
            return None
        if operation.operation is not OperationType.MUTATION:
            return None  # before validating: a query is validated once, by the view
        if validate_document(self.schema._schema, document, tuple(specified_rules)):
            return None
        try:
            check_document(document)
        except GatewayError:
            return None
        fragments = fragments_of(document)
        if measure(self.schema._schema, operation, fragments, {}, self.limits) is not None:
            return None
        roots = tuple(
            node.name.value
            for node in root_fields(operation, fragments)
            if node.name.value != "__typename"
        )
        return WritePlan(
            document=document,
            operation=operation,
            operation_name=operation_name,
            fragments=fragments,
            roots=roots,
            limits_need_variables=_first_from_variable(document),
            direct=direct_call(self.schema, operation, bool(fragments)),
        )


async def run_plan(
    plans: WritePlans,
    plan: WritePlan,
    ctx: Context,
    variables: dict[str, Any] | None,
    extensions: dict[str, Any] | None,
) -> ExecutionResult | None:
    """Execute the planned mutation for this request; None if the normal path must answer.

    None comes before any resolver ran (see the module docstring). The result's errors are
    logged and coded as the normal path's are.
    """
    try:
        for name in plan.roots:
            authorize_mutation(ctx, name)
        check_variables(variables)
    except GatewayError:
        return None
    schema = plans.schema
    if plan.limits_need_variables and (
        measure(schema._schema, plan.operation, plan.fragments, variables or {}, plans.limits)
        is not None
    ):
        return None
    executor_class = schema.execution_context_class or PlainExecutor
    executor = executor_class.build(
        schema._schema,
        plan.document,
        None,
        ctx,
        variables,
        plan.operation_name,
        middleware=None,
        is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
        operation_extensions=extensions,
    )
    if isinstance(executor, list):
        return None  # variables that do not coerce: nothing ran
    result: Any = (
        await plan.direct.run(executor) if plan.direct is not None else executor.execute_operation()
    )
    if optimized_is_awaitable(result):
        result = await result
    if not isinstance(result, ExecutionResult):  # incremental delivery: not in this schema
        raise TypeError(f"unexpected execution result {type(result).__name__}")
    if result.errors:
        log_errors(result.errors, ctx)
        result.errors = [coded_error(error, ctx) for error in result.errors]
    return result
