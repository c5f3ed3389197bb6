"""Refuse input values PostgreSQL or our JSON encoder cannot store (issue #13 item 12).

One place for every argument, filter, id and JSON value, on both read paths and for mutations:
the literals of the document and the raw variables are checked before execution starts. A NUL
character (PostgreSQL text and jsonb refuse it), a lone surrogate (not UTF-8), an integer outside
64 bits (orjson cannot write it into jsonb), a non-finite float or a value nested deeper than
MAX_DEPTH levels is BAD_USER_INPUT naming where it sits: `filter.category[0]` for a literal
argument, `$input.data.n` for a variable.

Variables can be a megabyte of JSON, so they are first written with orjson (C, ~3 ms per MB),
which fails on exactly these integers, surrogates and depths; only a failure or an escaped NUL
in its output pays for the walk in Python that names the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
)

from resolvers.errors import BadUserInput

__all__ = ["MAX_DEPTH", "check_document", "check_variables"]

MAX_DEPTH = 250  # orjson refuses more than ~254 nested containers
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1  # orjson writes unsigned 64-bit integers too


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "must not contain a NUL character"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return "must be valid UTF-8 (it has a lone surrogate)"
    return None


def _scalar_problem(value: object) -> str | None:
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        return "holds an integer outside 64 bits"
    if isinstance(value, float) and not math.isfinite(value):
        return "holds a number that is not finite"
    return None


def _refuse(field: str, problem: str) -> BadUserInput:
    return BadUserInput(f"{field} {problem}", field=field)


# --- raw variables ---------------------------------------------------------------------------


def check_variables(variables: Mapping[str, Any] | None) -> None:
    """Raise BadUserInput naming the first unstorable value in the request's variables."""
    if not variables:
        return
    try:
        written = orjson.dumps(variables)
    except (TypeError, orjson.JSONEncodeError):
        written = None
    if written is not None and b"\\u0000" not in written:
        return  # the common case: nothing to refuse, and no walk in Python
    _walk_variables(variables)


def _walk_variables(variables: Mapping[str, Any]) -> None:
    stack: list[tuple[Any, str, int]] = [(v, f"${k}", 0) for k, v in list(variables.items())[::-1]]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _refuse(path, f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key in value:
                problem = _text_problem(str(key))
                if problem is not None:
                    raise _refuse(path, f"has a key that {problem.removeprefix('must ')}")
            stack.extend((v, f"{path}.{k}", depth + 1) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            items = list(enumerate(value))
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in reversed(items))
        else:
            problem = _scalar_problem(value)
            if problem is not None:
                raise _refuse(path, problem)


# --- literals in the document ----------------------------------------------------------------


def check_document(document: DocumentNode) -> None:
    """Raise BadUserInput naming the first unstorable literal argument or variable default.

    The document is bounded by the token limit, so a walk in Python is cheap here.
    """
    for value, path in _literals(document):
        _check_literal(value, path)


def _literals(document: DocumentNode) -> Iterator[tuple[ValueNode, str]]:
    selections: list[SelectionSetNode] = []
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for var in definition.variable_definitions or ():
                if var.default_value is not None:
                    yield var.default_value, f"${var.variable.name.value}"
            yield from _arguments(definition.directives)
            selections.append(definition.selection_set)
        elif isinstance(definition, FragmentDefinitionNode):
            yield from _arguments(definition.directives)
            selections.append(definition.selection_set)
    while selections:
        for sel in selections.pop().selections:
            yield from _arguments(sel.directives)
            if isinstance(sel, FieldNode):
                yield from _arguments(sel.arguments)
            if isinstance(sel, FieldNode | InlineFragmentNode) and sel.selection_set:
                selections.append(sel.selection_set)


def _arguments(
    nodes: tuple[ArgumentNode, ...] | tuple[DirectiveNode, ...] | None,
) -> Iterator[tuple[ValueNode, str]]:
    for node in nodes or ():
        if isinstance(node, DirectiveNode):
            yield from _arguments(node.arguments)
        else:
            yield node.value, node.name.value


def _number(node: IntValueNode | FloatValueNode) -> float | int:
    if isinstance(node, FloatValueNode):
        return float(node.value)  # inf when too large
    # Thousands of digits would make int() itself slow (and Python refuses over 4300).
    return int(node.value) if len(node.value) <= 21 else _INT_MAX + 1


def _check_literal(root: ValueNode, root_path: str) -> None:
    stack: list[tuple[ValueNode, str, int]] = [(root, root_path, 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _refuse(path, f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ObjectValueNode):
            stack.extend((f.value, f"{path}.{f.name.value}", depth + 1) for f in node.fields)
        elif isinstance(node, ListValueNode):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node.values))
        elif isinstance(node, StringValueNode):
            problem = _text_problem(node.value)
            if problem is not None:
                raise _refuse(path, problem)
        elif isinstance(node, IntValueNode | FloatValueNode):
            problem = _scalar_problem(_number(node))
            if problem is not None:
                raise _refuse(path, problem)
