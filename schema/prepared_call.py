"""A prepared mutation's root field called directly, without graphql-core's executor (issue #16).

For a planned mutation of the common shape (one root field, its arguments of plain input types,
a payload of plain scalar and enum fields; no fragments, directives or field extensions)
`DirectCall` does what graphql-core and Strawberry would do, with the work that depends only
on the document done once: the argument converters (Strawberry's convert_arguments, resolved
per type at plan time), the resolver's parameters, the payload's leaf coercions. The executor
object is still built (variable coercion, the ResolveInfo, error handling are its own), but
the root field's resolver is called here and the payload is read attribute by attribute.

Whatever is unusual at run time goes back to graphql-core: a resolver error is located and
nulled by the executor's handle_field_error, and a payload that is not plainly complete (a
null in a non-null field, a value the scalar refuses, a wrong object type) is completed by the
executor's complete_value, so answers and errors are the same bytes as the executor's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING
from typing import Any

import strawberry
from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLNonNull,
    GraphQLObjectType,
    OperationDefinitionNode,
)
from graphql.execution.collect_fields import FieldDetails
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined
from strawberry.execution import optimized_is_awaitable
from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

from schema.fastpath import PlainAttr

__all__ = ["DirectCall", "direct_call"]

Convert = Callable[[Any], Any]
Payload = tuple[tuple[str, str | None, Any, bool], ...]  # key, attribute, leaf type, non-null
_MISS = object()


def _identity(value: Any) -> Any:
    return value


def _leaf(type_: Any, registry: Any) -> bool:
    """Strawberry's _is_leaf_type: a scalar or enum, whose value is passed on as coerced."""
    if isinstance(type_, LazyType):
        return _leaf(type_.resolve_type(), registry)
    return (
        is_scalar(type_, registry)
        or isinstance(type_, StrawberryEnumDefinition)
        or has_enum_definition(type_)
    )


def _converter(type_: Any, schema: strawberry.Schema) -> Convert | None:  # noqa: PLR0911 - one per kind
    """convert_argument for `type_`, resolved once; None where this module does not follow it.

    Not followed: Maybe, GlobalID, inputs with their own from_input, non-input objects.
    """
    registry = schema.schema_converter.scalar_registry
    if isinstance(type_, StrawberryMaybe) or type_ is GlobalID:
        return None
    if isinstance(type_, StrawberryOptional):
        return _converter(type_.of_type, schema)
    if isinstance(type_, LazyType):
        return _converter(type_.resolve_type(), schema)
    if isinstance(type_, StrawberryList):
        item = type_.of_type
        if _leaf(item, registry) or (
            isinstance(item, StrawberryOptional) and _leaf(item.of_type, registry)
        ):
            if item is GlobalID or getattr(item, "of_type", None) is GlobalID:
                return None
            return _nullable(list)  # copied: graphql-core shares a default between requests
        inner = _converter(item, schema)
        if inner is None:
            return None
        return _nullable(lambda values: [inner(value) for value in values])
    if _leaf(type_, registry):
        return _nullable(_identity)
    if has_object_definition(type_):
        definition = type_.__strawberry_definition__
        if definition.from_input is not None or not definition.is_input:
            return None
        fields = []
        for field in definition.fields:
            convert = _converter(field.resolve_type(type_definition=definition), schema)
            if convert is None:
                return None
            fields.append(
                (schema.config.name_converter.from_field(field), field.python_name, convert)
            )
        implicit = tuple(
            field.python_name
            for field in definition.fields
            if field.default_value is MISSING and field.default_factory is MISSING
        )
        cls = type_

        def build(value: Any) -> Any:
            kwargs: dict[str, Any] = dict.fromkeys(implicit)
            for graphql_name, python_name, convert in fields:
                if graphql_name in value:
                    kwargs[python_name] = convert(value[graphql_name])
            return cls(**kwargs)

        return _nullable(build)
    return None


def _nullable(convert: Convert) -> Convert:
    """convert_argument's checks before any type: None and UNSET are passed on."""

    def checked(value: Any) -> Any:
        if value is None or value is UNSET:
            return value
        return convert(value)

    return checked


class DirectCall:
    """The root field of a planned mutation, ready to call; built by `direct_call`."""

    def __init__(
        self,
        *,
        node: FieldNode,
        field_def: Any,
        root_type: GraphQLObjectType,
        field: StrawberryField,
        arguments: tuple[tuple[str, str, Convert], ...],
        payload: Payload,
        info_class: Any,
    ) -> None:
        self.node = node
        self.field_def = field_def
        self.root_type = root_type
        self.field = field
        self.arguments = arguments  # (GraphQL name, Python name, converter)
        self.payload = payload  # (response key, attribute or None for __typename, leaf, non-null)
        self.info_class = info_class
        self.key = node.alias.value if node.alias else node.name.value
        resolver = field.base_resolver
        assert resolver is not None  # noqa: S101 - direct_call checked it
        self.resolver = resolver
        self.self_source = resolver.self_parameter is not None
        info_parameter = resolver.info_parameter
        self.info_name = info_parameter.name if info_parameter is not None else None
        return_type = field_def.type
        self.return_type = return_type
        self.object_type: GraphQLObjectType = (
            return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        )

    async def run(self, executor: Any) -> ExecutionResult:
        """Call the resolver and complete its payload; the executor handles what is unusual."""
        path = Path(None, self.key, self.root_type.name)
        details = [FieldDetails(self.node, None)]
        raw_info = executor.build_resolve_info(self.field_def, [self.node], self.root_type, path)
        data: dict[str, Any] | None
        try:
            try:
                args = get_argument_values(
                    self.field_def,
                    self.node,
                    executor.variable_values,
                    None,
                    executor.hide_suggestions,
                )
                value = await self._call(executor.root_value, raw_info, args)
                completed = self._complete(value, raw_info)
                if completed is _MISS:
                    completed = executor.complete_value(
                        self.return_type, details, raw_info, path, value, None
                    )
                    if optimized_is_awaitable(completed):
                        completed = await completed
            except Exception as raw_error:
                executor.handle_field_error(raw_error, self.return_type, details, path)
                completed = None
            data = {self.key: completed}
        except GraphQLError as error:  # a non-null root field failed: no data (execute_operation)
            executor.collected_errors.add(error, None)
            data = None
        return ExecutionResult(data, executor.collected_errors.errors or None)

    async def _call(self, source: Any, raw_info: Any, args: dict[str, Any]) -> Any:
        """Strawberry's resolver wrapper without extensions: convert arguments, call, await."""
        kwargs: dict[str, Any] = {}
        for graphql_name, python_name, convert in self.arguments:
            if graphql_name in args:
                kwargs[python_name] = convert(args[graphql_name])
        if self.info_name is not None:
            kwargs[self.info_name] = self.info_class(_raw_info=raw_info, _field=self.field)
        result = self.resolver(source, **kwargs) if self.self_source else self.resolver(**kwargs)
        if optimized_is_awaitable(result):
            result = await result
        return result

    def _complete(self, value: Any, raw_info: Any) -> Any:  # noqa: PLR0911 - one per oddity
        """The payload as complete_object_value gives it, or _MISS where the executor must."""
        if value is None or isinstance(value, BaseException):
            return _MISS
        object_type = self.object_type
        if (
            object_type.is_type_of is not None
            and object_type.is_type_of(value, raw_info) is not True
        ):
            return _MISS
        out: dict[str, Any] = {}
        for key, attr, leaf, non_null in self.payload:
            if attr is None:
                out[key] = object_type.name
                continue
            item = getattr(value, attr, _MISS)
            if item is None:
                if non_null:
                    return _MISS
                out[key] = None
                continue
            if item is _MISS or item is Undefined or isinstance(item, BaseException):
                return _MISS
            try:
                coerced = leaf.coerce_output_value(item)
            except Exception:
                return _MISS
            if coerced is None or coerced is Undefined:
                return _MISS
            out[key] = coerced
        return out


def direct_call(  # noqa: PLR0911 - one per shape it declines
    schema: strawberry.Schema, operation: OperationDefinitionNode, has_fragments: bool
) -> DirectCall | None:
    """The DirectCall for a planned mutation of the plain shape, else None (the executor runs)."""
    selections = operation.selection_set.selections
    if has_fragments or operation.directives or len(selections) != 1:
        return None
    node = selections[0]
    if not isinstance(node, FieldNode) or node.directives or node.selection_set is None:
        return None
    root_type = schema._schema.mutation_type
    field_def = root_type.fields.get(node.name.value) if root_type is not None else None
    if root_type is None or field_def is None:
        return None
    field = (field_def.extensions or {}).get("strawberry-definition")
    if (
        not isinstance(field, StrawberryField)
        or field.base_resolver is None
        or field.extensions
        or field.base_resolver.parent_parameter is not None
        or field.base_resolver.root_parameter is not None
        or schema.schema_converter._get_field_exception_handlers(field)
    ):
        return None
    arguments = []
    for argument in field.arguments:
        convert = _converter(argument.type, schema)
        if convert is None:
            return None
        name = schema.config.name_converter.from_argument(argument)
        arguments.append((name, argument.python_name, convert))
    payload = _payload(node, field_def.type)
    if payload is None:
        return None
    return DirectCall(
        node=node,
        field_def=field_def,
        root_type=root_type,
        field=field,
        arguments=tuple(arguments),
        payload=payload,
        info_class=schema.config.info_class,
    )


def _payload(node: FieldNode, return_type: Any) -> Payload | None:
    """The payload's fields when each is a plain leaf (PlainAttr) or __typename, else None."""
    object_type = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    if not isinstance(object_type, GraphQLObjectType) or node.selection_set is None:
        return None
    payload: list[tuple[str, str | None, Any, bool]] = []
    for selection in node.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives or selection.arguments:
            return None
        key = selection.alias.value if selection.alias else selection.name.value
        if selection.name.value == "__typename":
            payload.append((key, None, None, True))
            continue
        field_def = object_type.fields.get(selection.name.value)
        resolve = field_def.resolve if field_def is not None else None
        if type(resolve) is not PlainAttr or resolve.leaf is None or selection.selection_set:
            return None
        payload.append((key, resolve.attr, resolve.leaf, resolve.non_null))
    if len({key for key, *_ in payload}) != len(payload):
        return None  # a key selected twice: graphql-core merges them; leave it to it
    return tuple(payload)
