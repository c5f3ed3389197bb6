"""Which operation of a document runs, and what its root fields are."""

from __future__ import annotations

from collections.abc import Mapping

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.types import ExecutionContext

from resolvers.errors import BadUserInput

__all__ = ["fragments_of", "pick_operation", "requested_operation_name", "root_fields"]


def requested_operation_name(ctx: ExecutionContext) -> str | None:
    """The operationName the client sent.

    Strawberry's `ExecutionContext.operation_name` falls back to the document's FIRST operation
    when none was sent, which silently ran the first of several (issue #13 item 8).
    """
    name = getattr(ctx, "_provided_operation_name", ctx.operation_name)
    return name if isinstance(name, str) else None


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def pick_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    """The operation to run (GraphQL spec GetOperation); BAD_USER_INPUT when there is none."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        if len(operations) == 1:
            return operations[0]
        raise BadUserInput(
            "Must provide operation name if query contains multiple operations.",
            field="operationName",
        )
    for operation in operations:
        if operation.name is not None and operation.name.value == name:
            return operation
    raise BadUserInput(f"Unknown operation named '{name}'.", field="operationName")


def root_fields(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    """The operation's root field nodes in document order, through fragments (each once)."""
    fields: list[FieldNode] = []
    seen: set[str] = set()

    def collect(selection_set: SelectionSetNode) -> None:
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                fields.append(sel)
            elif isinstance(sel, InlineFragmentNode):
                collect(sel.selection_set)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
                seen.add(sel.name.value)
                fragment = fragments.get(sel.name.value)
                if fragment is not None:
                    collect(fragment.selection_set)

    collect(operation.selection_set)
    return fields
