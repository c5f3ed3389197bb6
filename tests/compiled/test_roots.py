"""The roots compiled since issue 14, against the resolver path: identical answers, number text too.

circuitBreaker/circuitBreakers (with the unwritten default breaker and due TTL recoveries),
lessonStats, executionScopes, budgetHalts, and Float fields. Responses are compared after
parsing with every number kept as its text, so `1.0` against `1` or `1e-7` against `1e-07` is
a difference (whitespace between tokens is not: issue 14 item 4 settles that separately).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from graphql import GraphQLObjectType, get_named_type, is_leaf_type
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from drivers import tables as t
from tests.compiled.queries import SCHEMA
from tests.compiled.test_differential import both
from tests.factories_breaker import expire_breaker
from tests.factories_compiler import BASE, Seeded, seed
from tests.factories_roots import seed_roots
from tests.helpers import token

PATH = "x-gateway-read-path"


def _lexemes(text: str) -> Any:
    """Parsed JSON with numbers as their text."""
    return json.loads(text, parse_float=lambda s: f"f:{s}", parse_int=lambda s: f"i:{s}")


async def _both(
    resolver: httpx.AsyncClient,
    compiled: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    tenant: str = "t1",
) -> tuple[str, Any, Any]:
    """test_differential.both, with each body parsed into lexemes (numbers kept as text)."""
    path, a, b = await both(resolver, compiled, query, variables, tenant)
    return path, _lexemes(a.decode()), _lexemes(b.decode())


def _leaves(type_name: str) -> list[str]:
    t_ = SCHEMA.type_map[type_name]
    assert isinstance(t_, GraphQLObjectType)
    return sorted(
        n for n, f in t_.fields.items() if is_leaf_type(get_named_type(f.type)) and not f.args
    )


@st.composite
def _pick(draw: st.DrawFn, type_name: str) -> str:
    picked = draw(
        st.lists(st.sampled_from(_leaves(type_name)), min_size=1, max_size=8, unique=True)
    )
    if draw(st.integers(0, 5)) == 0:
        picked.append("__typename")
    if draw(st.integers(0, 4)) == 0:
        picked.append(f"again: {picked[0]}")
    return " ".join(picked)


@st.composite
def _breaker(draw: st.DrawFn) -> str:
    parts = [draw(_pick("CircuitBreaker"))]
    if draw(st.booleans()):
        parts.append(f"currentIncident {{ {draw(_pick('BreakerIncident'))} }}")
    if draw(st.booleans()):
        args = []
        if draw(st.booleans()):
            args.append(f"first: {draw(st.sampled_from([1, 2, 5, 20]))}")
        flag = draw(st.sampled_from([None, "true", "false"]))
        if flag is not None:
            args.append(f"includeResolved: {flag}")
        head = f"incidents({', '.join(args)})" if args else "incidents"
        inner = draw(
            st.lists(
                st.sampled_from(
                    [
                        f"nodes {{ {draw(_pick('BreakerIncident'))} }}",
                        "totalCount",
                        "pageInfo { hasNextPage endCursor }",
                        "edges { cursor }",
                    ]
                ),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
        parts.append(f"{head} {{ {' '.join(inner)} }}")
    return "{ " + " ".join(parts) + " }"


@st.composite
def _root(draw: st.DrawFn, data: Seeded, n: int) -> str:
    kind = draw(
        st.sampled_from(
            [
                "circuitBreaker",
                "circuitBreakers",
                "lessonStats",
                "executionScopes",
                "budgetHalts",
                "thresholdSignals",
                "lessons",
                "incidentMetrics",
                "alertOutboxStats",
                "effectiveThresholds",
            ]
        )
    )
    key = f"r{n}: "
    if kind == "circuitBreaker":
        name = draw(st.sampled_from([None, "costsim_v2", "alpha", "Zeta", "beta", "never"]))
        args = "" if name is None else f'(name: "{name}")'
        return f"{key}circuitBreaker{args} " + draw(_breaker())
    if kind == "circuitBreakers":
        return f"{key}circuitBreakers " + draw(_breaker())
    if kind == "lessonStats":
        parts = draw(
            st.lists(
                st.sampled_from(
                    [
                        "total",
                        "byType { lessonType count }",
                        "byStatus { count status __typename }",
                        "__typename",
                    ]
                ),
                min_size=1,
                max_size=4,
                unique=True,
            )
        )
        return f"{key}lessonStats {{ {' '.join(parts)} }}"
    if kind == "executionScopes":
        incident = draw(
            st.sampled_from(
                [*(i["id"] for i in data.incidents["t1"][:4]), data.incidents["t2"][0]["id"], "x"]
            )
        )
        return (
            f'{key}executionScopes(incidentId: "{incident}") {{ {draw(_pick("ExecutionScope"))} }}'
        )
    if kind == "budgetHalts":
        first = draw(st.sampled_from([None, 1, 2, 3, 100]))
        args = "" if first is None else f"(first: {first})"
        return f"{key}budgetHalts{args} {{ {draw(_pick('BudgetHalt'))} }}"
    if kind == "thresholdSignals":
        first = draw(st.sampled_from([5, 20, 100]))
        return f"{key}thresholdSignals(first: {first}) {{ nodes {{ {draw(_pick('ThresholdSignal'))} }} }}"
    if kind == "lessons":
        return f"{key}lessons(first: 3) {{ totalCount nodes {{ id title }} }}"
    if kind == "alertOutboxStats":
        return f"{key}alertOutboxStats {{ {draw(_pick('AlertOutboxStats'))} }}"
    if kind == "effectiveThresholds":
        return f"{key}effectiveThresholds {{ maxTokens maxCostUsd }}"
    days = draw(st.sampled_from([None, 1, 3, 30, 365]))
    args = "" if days is None else f"(windowDays: {days})"
    picked = draw(
        st.lists(
            st.sampled_from(
                [
                    "windowDays",
                    "open",
                    "acknowledged",
                    "active",
                    "resolved",
                    "total",
                    "averageResolutionMs",
                    "medianResolutionMs",
                    "bySeverity { severity count }",
                    "__typename",
                ]
            ),
            min_size=1,
            max_size=6,
            unique=True,
        )
    )
    return f"{key}incidentMetrics{args} {{ {' '.join(picked)} }}"


async def test_generated_queries_over_the_new_roots_are_identical(client, compiled_client, engine):
    # given
    data = await seed(engine)
    await seed_roots(engine, data)
    cases: list[tuple[str, str]] = []

    @settings(
        max_examples=160,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        roots=st.lists(st.integers(0, 10), min_size=1, max_size=3).flatmap(
            lambda ns: st.tuples(*(_root(data, i) for i in range(len(ns))))
        ),
        tenant=st.sampled_from(["t1", "t1", "t1", "t2"]),
    )
    def collect(roots: tuple[str, ...], tenant: str) -> None:
        cases.append(("{ " + " ".join(roots) + " }", tenant))

    collect()
    served: dict[str, int] = {"compiled": 0, "mixed": 0, "resolver": 0}
    mismatches = []
    # when
    for query, tenant in cases:
        path, want, got = await _both(client, compiled_client, query, None, tenant)
        served[path] += 1
        if got != want:
            mismatches.append((query, tenant, want, got))
        if path == "resolver":
            # only an operation of resolver roots alone (effectiveThresholds) stays there
            assert set(re.findall(r"\br\d+: (\w+)", query)) == {"effectiveThresholds"}, query
    # then
    assert not mismatches, (len(mismatches), mismatches[:2])
    assert served["compiled"] >= 100 and served["mixed"] >= 8, served


async def test_float_fields_print_as_the_resolver_path(client, compiled_client, engine):
    # given: drift scores and signal values of every layout
    data = await seed(engine)
    await seed_roots(engine, data)
    query = """{
      circuitBreakers { name incidents(first: 50, includeResolved: true) { nodes { driftScore } } }
      thresholdSignals(first: 100) { nodes { currentValue thresholdValue percentage } }
    }"""
    # when
    path, want, got = await _both(client, compiled_client, query)
    # then
    assert path == "compiled"
    assert got == want
    scores = [
        n["driftScore"] for b in got["data"]["circuitBreakers"] for n in b["incidents"]["nodes"]
    ]
    assert {
        "f:1e-7",
        "f:1.0",
        "f:1e+16",
        "f:0.00001",
        "f:-0.0",
        "f:5e-324",
        "f:1000000000000000.0",
    } <= set(scores)
    assert None in scores


async def test_breakers_list_the_default_one_and_sort_as_the_resolver_path(
    client, compiled_client, engine
):
    # given
    data = await seed(engine)
    await seed_roots(engine, data)
    query = "{ circuitBreakers { id name state isOpen consecutiveFailures openedAt } }"
    # when
    path1, want1, got1 = await _both(client, compiled_client, query, tenant="t1")
    path2, want2, got2 = await _both(client, compiled_client, query, tenant="t2")
    single = '{ circuitBreaker(name: "never") { id name state incidents { totalCount } } }'
    path3, want3, got3 = await _both(client, compiled_client, single, tenant="t1")
    # then
    assert (path1, path2, path3) == ("compiled", "compiled", "compiled")
    assert (got1, got2, got3) == (want1, want2, want3)
    assert [b["name"] for b in got1["data"]["circuitBreakers"]] == [
        b["name"] for b in want1["data"]["circuitBreakers"]
    ]
    assert [b["name"] for b in got2["data"]["circuitBreakers"]] == ["costsim_v2"]
    assert got2["data"]["circuitBreakers"][0]["id"] is None
    assert got3["data"]["circuitBreaker"] == {
        "id": None,
        "name": "never",
        "state": "CLOSED",
        "incidents": {"totalCount": "i:0"},
    }


async def test_a_due_breaker_recovers_before_the_compiled_read(client, compiled_client, engine):
    # given: t1's default breaker is OPEN and its TTL has passed
    data = await seed(engine)
    await seed_roots(engine, data)
    await expire_breaker(engine, BASE - timedelta(minutes=1))
    query = """{ circuitBreaker { name state isOpen reason disabledUntil currentIncident { id } }
      lessons(first: 1) { totalCount } }"""
    # when
    compiled = await compiled_client.post(
        "/graphql", json={"query": query}, headers={"authorization": f"Bearer {token('t1')}"}
    )
    # then: recovered first (one audit row), answered CLOSED, compiled
    assert compiled.headers[PATH] == "compiled"
    breaker = compiled.json()["data"]["circuitBreaker"]
    assert breaker == {
        "name": "costsim_v2",
        "state": "CLOSED",
        "isOpen": False,
        "reason": None,
        "disabledUntil": None,
        "currentIncident": None,
    }
    async with engine.connect() as conn:
        audits = (
            await conn.execute(
                select(t.audit_log.c.operation).where(
                    t.audit_log.c.tenant_id == "t1", t.audit_log.c.entity_type == "circuit_breakers"
                )
            )
        ).all()
    assert [a.operation for a in audits] == ["circuitBreaker"]
    # and the resolver path now reads the same
    _, want, got = await _both(client, compiled_client, query)
    assert got == want


async def test_scopes_halts_and_stats_compile(client, compiled_client, engine):
    # given
    data = await seed(engine)
    await seed_roots(engine, data)
    incident = data.incidents["t1"][0]["id"]
    query = f"""{{
      executionScopes(incidentId: "{incident}") {{ id maxCostUsd attemptsRemaining targetAgents executions }}
      foreign: executionScopes(incidentId: "{data.incidents["t2"][0]["id"]}") {{ id }}
      budgetHalts {{ runId consumedCents limitCents totalSteps completedSteps stepCostCents completedAt }}
      two: budgetHalts(first: 2) {{ consumedCents }}
      lessonStats {{ total byType {{ lessonType count }} byStatus {{ status count }} }}
    }}"""
    # when
    path, want, got = await _both(client, compiled_client, query)
    # then
    assert path == "compiled"
    assert got == want
    answer = got["data"]
    assert len(answer["executionScopes"]) == 3 and answer["foreign"] == []
    assert [h["consumedCents"] for h in answer["budgetHalts"]] == ["i:7", "i:500", "i:12"]
    assert [h["consumedCents"] for h in answer["two"]] == ["i:7"]  # the newest two, one parsable
    assert [c["lessonType"] for c in answer["lessonStats"]["byType"]] == [
        "FAILURE",
        "NEAR_THRESHOLD",
        "CRITICAL_SUCCESS",
    ]


async def test_incident_metrics_compile_with_the_resolver_numbers(client, compiled_client, engine):
    # given: resolved incidents with fractional resolution times (avg and median are floats)
    data = await seed(engine)
    await seed_roots(engine, data)
    numbers = """open acknowledged active resolved total averageResolutionMs medianResolutionMs
      bySeverity { severity count __typename } windowDays"""
    query = (
        f"{{ incidentMetrics {{ {numbers} }} week: incidentMetrics(windowDays: 7) {{ total }} }}"
    )
    # when
    path, want, got = await _both(client, compiled_client, query)
    window = await compiled_client.post(
        "/graphql",
        json={"query": "{ incidentMetrics(windowDays: 2) { windowStart windowEnd } }"},
        headers={"authorization": f"Bearer {token('t1')}"},
    )
    # then
    assert path == "compiled"
    assert got == want
    metrics = got["data"]["incidentMetrics"]
    assert metrics["averageResolutionMs"] is not None and metrics["averageResolutionMs"].startswith(
        "f:"
    )
    assert [c["severity"] for c in metrics["bySeverity"]] == ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    assert window.headers[PATH] == "compiled"
    span = window.json()["data"]["incidentMetrics"]
    start, end = (datetime.fromisoformat(span[k]) for k in ("windowStart", "windowEnd"))
    assert end - start == timedelta(days=2)
    assert abs((datetime.now(UTC) - end).total_seconds()) < 60


async def test_an_out_of_range_window_is_the_resolver_paths_error(client, compiled_client, engine):
    # given
    await seed(engine)
    query = "{ lessons(first: 1) { totalCount } incidentMetrics(windowDays: 0) { total } }"
    # when
    _, want, got = await _both(client, compiled_client, query)
    # then: incidentMetrics is non-null, so its BAD_USER_INPUT nulls the data on both paths
    assert got == want
    assert got["data"] is None
    assert got["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert got["errors"][0]["path"] == ["incidentMetrics"]
