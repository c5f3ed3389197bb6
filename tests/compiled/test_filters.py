"""Root-list filters are described once (drivers/mapping.py ROOT_LISTS) and compile on every value.

Every filter field and filtering argument of every root list is sent set, null and omitted; each
request must be served compiled and give the resolver path's response. The values come from the
seeded rows through the mapping's own columns, so a filter added to the mapping is exercised here
with no other edit.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import orjson
from graphql import GraphQLInputObjectType, get_named_type
from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers.mapping import ROOT_LISTS, ArgFilter
from tests.compiled.queries import SCHEMA
from tests.compiled.test_differential import PATH, both
from tests.factories_compiler import seed
from tests.helpers import token

ROOT = Path(__file__).resolve().parents[2]
SELECTION = "{ totalCount nodes { id } pageInfo { hasNextPage endCursor } }"

# The README's console operation, as the bench's Q5 keeps it (one copy of the text).
README_CONSOLE = (ROOT / "bench" / "queries" / "q5_readme_console.graphql").read_text()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


async def _sample(engine: AsyncEngine, root: str, flt: ArgFilter) -> list[Any]:
    """Set values for one filter, taken from tenant t1's rows (each matches some row)."""
    if flt.op == "choice":
        return list(flt.choices)
    spec = ROOT_LISTS[("Query", root)]
    table = spec.entity.table
    column = flt.column
    # Rows the list's other defaults keep (limits: ACTIVE BUDGET unless told otherwise).
    defaults = [
        f.where(literal(list(f.default), f.param_type))
        for f in spec.filters.values()
        if f.default is not None and f is not flt
    ]
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(column)
            .where(table.c.tenant_id == "t1", column.is_not(None), *defaults)
            .order_by(column.desc() if flt.op != "gte" else column.asc())
            .limit(1)
        )
        found = rows.scalar_one()
    value = _json(found)
    if flt.many:
        return [[value]]
    if flt.op == "pattern":
        return [value, value[:3] + "*"]
    return [value]


def _arg_type(root: str, arg: str) -> str:
    return str(SCHEMA.query_type.fields[root].args[arg].type)  # type: ignore[union-attr]


async def _cases(engine: AsyncEngine) -> list[tuple[str, str, str, dict[str, Any], bool]]:
    """(root, field, query, variables, set) for every filter field: set, null and omitted."""
    cases = []
    for (_, root), spec in ROOT_LISTS.items():
        for name, flt in spec.filters.items():
            gql = _camel(name)
            ftype = _arg_type(root, "filter")
            query = f"query($f: {ftype}) {{ {root}(first: 5, filter: $f) {SELECTION} }}"
            for value in await _sample(engine, root, flt):
                cases.append((root, name, query, {"f": {gql: value}}, True))
            literal_null = f"{{ {root}(first: 5, filter: {{ {gql}: null }}) {SELECTION} }}"
            cases.append((root, name, literal_null, {}, False))
            cases.append((root, name, query, {"f": {gql: None}}, False))
            cases.append((root, name, query, {"f": {}}, False))
        for name, flt in spec.arg_filters.items():
            gql = _camel(name)
            query = (
                f"query($v: {_arg_type(root, gql)}) {{ {root}(first: 5, {gql}: $v) {SELECTION} }}"
            )
            for value in await _sample(engine, root, flt):
                cases.append((root, name, query, {"v": value}, True))
            cases.append(
                (root, name, f"{{ {root}(first: 5, {gql}: null) {SELECTION} }}", {}, False)
            )
            cases.append((root, name, f"{{ {root}(first: 5) {SELECTION} }}", {}, False))
    return cases


def _matches_a_row(root: str, name: str) -> bool:
    """Whether the sampled value of this filter is sure to match a row (`lt` excludes it)."""
    spec = ROOT_LISTS[("Query", root)]
    flt = spec.filters.get(name) or spec.arg_filters[name]
    return flt.op not in ("lt", "choice")


async def test_every_filter_compiles_set_null_and_omitted(client, compiled_client, engine):
    # given
    await seed(engine)
    cases = await _cases(engine)
    fields = {(root, name) for root, name, *_ in cases}
    # then: every filter of the mapping has cases, and the inputs carry exactly those fields
    for (_, root), spec in ROOT_LISTS.items():
        assert {(root, n) for n in (*spec.filters, *spec.arg_filters)} <= fields
        if spec.filters:
            named = get_named_type(SCHEMA.query_type.fields[root].args["filter"].type)  # type: ignore[union-attr]
            assert isinstance(named, GraphQLInputObjectType)
            assert list(named.fields) == [_camel(n) for n in spec.filters]
        if spec.order_arg is not None:
            order = SCHEMA.query_type.fields[root].args[_camel(spec.order_arg)]  # type: ignore[union-attr]
            assert set(get_named_type(order.type).values) == set(spec.orderings)
            assert order.default_value.value == spec.default_order
    unfiltered: dict[str, int] = {}
    for root, name, query, variables, is_set in cases:
        # when
        path, want, got = await both(client, compiled_client, query, variables)
        # then
        assert path == "compiled", (query, variables)
        assert got == want, (query, variables)
        assert b'"errors"' not in got, got
        total = orjson.loads(got)["data"][root]["totalCount"]
        if not is_set:
            unfiltered.setdefault(root, total)
            assert total == unfiltered[root], (root, name, "null or omitted narrows nothing")
        elif _matches_a_row(root, name):
            assert total >= 1, (root, name, variables)
    assert len(cases) > 100


async def test_limits_defaults_apply_when_null_or_omitted(client, compiled_client, engine):
    # given: DOMAIN.md §3.1, an omitted or null category is BUDGET, status ACTIVE
    data = await seed(engine)
    query = "query($f: LimitFilter) { limits(first: 100, filter: $f) { nodes { id } } }"
    active_budget = {
        r["id"]
        for r in data.limits["t1"]
        if r["limit_category"] == "BUDGET" and r["status"] == "ACTIVE"
    }
    everything = {
        "category": ["BUDGET", "RATE", "THRESHOLD"],
        "status": ["ACTIVE", "DISABLED"],
    }
    for variables, want_ids in (
        ({}, active_budget),
        ({"f": {"category": None, "status": None}}, active_budget),
        ({"f": everything}, {r["id"] for r in data.limits["t1"]}),
    ):
        # when
        path, want, got = await both(client, compiled_client, query, variables)
        # then
        assert path == "compiled"
        assert got == want
        assert {n["id"] for n in orjson.loads(got)["data"]["limits"]["nodes"]} == want_ids


async def test_topic_filter_and_variable_defaults_compile(client, compiled_client, engine):
    # given: the issue's case, `topic: null`, and a filter given by a variable's default
    await seed(engine)
    queries: list[tuple[str, dict[str, Any]]] = [
        ("{ incidents(filter: {topic: null}) { totalCount } }", {}),
        ("{ incidents(filter: {}) { totalCount } }", {}),
        (
            "query($f: IncidentFilter = {status: [OPEN], topic: ACTIVE}) "
            "{ incidents(filter: $f) { totalCount nodes { status topic } } }",
            {},
        ),
        (
            "query($t: IncidentListTopic = RESOLVED) "
            "{ incidents(filter: {topic: $t}) { totalCount nodes { status topic } } }",
            {},
        ),
    ]
    totals = []
    for query, variables in queries:
        # when
        path, want, got = await both(client, compiled_client, query, variables)
        # then
        assert path == "compiled", query
        assert got == want
        totals.append(orjson.loads(got)["data"]["incidents"]["totalCount"])
    assert totals[0] == totals[1] > totals[2] > 0
    assert totals[3] > 0


async def test_readme_console_query_compiles_with_the_resolver_paths_bytes(
    client: httpx.AsyncClient, compiled_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # given
    await seed(engine)
    headers = {"authorization": f"Bearer {token('t1')}"}
    body = {"query": README_CONSOLE}
    # when
    resolver = await client.post("/graphql", json=body, headers=headers)
    compiled = await compiled_client.post("/graphql", json=body, headers=headers)
    # then
    assert resolver.headers[PATH] == "resolver"
    assert compiled.headers[PATH] == "compiled"
    assert resolver.status_code == compiled.status_code == 200
    # The same bytes (issue 14 item 4).
    assert compiled.content == resolver.content
    data = compiled.json()["data"]
    assert data["viewer"]["tenantId"] == "t1"
    nodes = data["incidents"]["nodes"]
    assert nodes and {n["status"] for n in nodes} <= {"OPEN", "ACKNOWLEDGED"}
    ranks = ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
    severities = [ranks.index(n["severity"]) for n in nodes]
    assert severities == sorted(severities, reverse=True)
