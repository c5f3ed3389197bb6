"""Which fields the compiled read path serves: every Query field and every field reachable.

Each field is tried in the smallest operation that reaches it: a root field alone (stand-in
arguments), a nested field under the shortest path of compiling fields from a root. The
expected sets are explicit, so any change in coverage (a field newly compiled, a new field that
does not compile) shows up here and must be written down (README.md § Compiled reads).
"""

from __future__ import annotations

from collections import deque

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
    get_named_type,
    is_leaf_type,
    parse,
)
from sqlalchemy.dialects import postgresql

from drivers.compiler import NotCompilable, compile_operation
from schema.selection import build_selection
from tests.compiled.queries import SCHEMA

_DIALECT = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
_SAMPLES = {"ID": '"x"', "String": '"x"', "Int": "1", "Float": "1.0", "Boolean": "false"}

# Fields the compiled path does not serve, with the reason in README.md § Compiled reads.
NOT_COMPILED = {
    # analytics computed in Python (docs/decisions.md § Compiled roots)
    "Query.incidentCostImpact",
    "Query.incidentTrend",
    "Query.incidentDistribution",
    "Query.incidentCostTrend",
    "Query.incidentPatterns",
    "Query.incidentRecurrence",
    "Query.incidentLearnings",
    "Query.categoryLearnings",
    "Query.recurrenceGroup",
    # merged and validated in Python
    "Query.effectiveThresholds",
    "Query.alertOutboxStats",
    # a Python evaluation per run
    "Run.policyEvaluation",
    "Run.thresholdEvaluation",
}


def _arg_value(type_: object) -> str | None:
    named = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(named, GraphQLList):
        inner = _arg_value(named.of_type)
        return None if inner is None else f"[{inner}]"
    if isinstance(named, GraphQLEnumType):
        return str(next(iter(named.values)))
    if isinstance(named, GraphQLScalarType):
        return _SAMPLES.get(named.name, '"x"')
    if isinstance(named, GraphQLInputObjectType):
        parts = [
            f"{n}: {_arg_value(f.type)}"
            for n, f in named.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        ]
        return "{" + ", ".join(parts) + "}"
    return None


def _call(name: str, field: GraphQLField) -> str:
    required = [
        f"{n}: {_arg_value(a.type)}"
        for n, a in field.args.items()
        if isinstance(a.type, GraphQLNonNull) and a.default_value is Undefined
    ]
    return f"{name}({', '.join(required)})" if required else name


def _compiles(path: list[str], leaf: str) -> bool:
    text = leaf
    for step in reversed(path):
        text = f"{step} {{ {text} }}"
    document = parse("{ " + text + " }")
    selection = build_selection(SCHEMA, document, None, {})
    if selection is None or not selection.fields:
        return False
    try:
        plan = compile_operation(selection.fields, _DIALECT)
    except NotCompilable:
        return False
    return bool(plan.roots) and plan.roots[0] != "__typename"


def _walk() -> tuple[set[str], set[str], set[str]]:
    """Fields (as Type.field) that compile, that do not, and those below the latter."""
    query = SCHEMA.query_type
    assert query is not None
    compiled: set[str] = set()
    missing: set[str] = set()
    carriers: dict[str, list[str]] = {}  # object type -> shortest compiling path to it
    queue: deque[tuple[GraphQLObjectType, list[str]]] = deque()
    for name, field in query.fields.items():
        named = get_named_type(field.type)
        call = _call(name, field)
        ok = _compiles([], call) if is_leaf_type(named) else _compiles([call], "__typename")
        (compiled if ok else missing).add(f"Query.{name}")
        if ok and isinstance(named, GraphQLObjectType) and named.name not in carriers:
            carriers[named.name] = [call]
            queue.append((named, [call]))
    seen: set[str] = set()
    under: set[str] = set()
    while queue:
        type_, path = queue.popleft()
        if type_.name in seen:
            continue
        seen.add(type_.name)
        for name, field in type_.fields.items():
            named = get_named_type(field.type)
            call = _call(name, field)
            if is_leaf_type(named):
                ok = _compiles(path, call)
            else:
                ok = _compiles([*path, call], "__typename")
            (compiled if ok else missing).add(f"{type_.name}.{name}")
            if ok and isinstance(named, GraphQLObjectType) and named.name not in carriers:
                carriers[named.name] = [*path, call]
                queue.append((named, [*path, call]))
    # Types reachable only through fields that do not compile: none of their fields compile.
    pending = [
        get_named_type(SCHEMA.get_type(f.split(".")[0]).fields[f.split(".")[1]].type)  # type: ignore[union-attr]
        for f in missing
    ]
    while pending:
        named = pending.pop()
        if not isinstance(named, GraphQLObjectType) or named.name in seen:
            continue
        seen.add(named.name)
        for name, field in named.fields.items():
            under.add(f"{named.name}.{name}")
            pending.append(get_named_type(field.type))
    return compiled, missing, under


def test_every_reachable_field_is_compiled_or_listed():
    # when
    compiled, missing, under = _walk()
    # then: exactly the listed fields miss; below them nothing compiles (their types are
    # reached only through them); every other reachable field compiles
    assert missing == NOT_COMPILED
    assert under.isdisjoint(compiled)
    assert len(under) == 103
    assert len(compiled) == 406
    assert {
        "Query.circuitBreaker",
        "Query.circuitBreakers",
        "Query.lessonStats",
        "Query.executionScopes",
        "Query.budgetHalts",
        "BreakerIncident.driftScore",
        "ThresholdSignal.currentValue",
        "CircuitBreaker.incidents",
        "Incident.executionScopes",
        "ExecutionScope.attemptsRemaining",
    } <= compiled
