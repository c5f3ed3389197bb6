"""Operations planned per root field: mapped roots compile, the others resolve, in one answer.

The resolver path (`client`) is the reference; `compiled_client` answers the mapped roots with
one statement and runs only the remaining roots through GraphQL. Answers must be identical,
keys in selection order, with GraphQL's per-root error semantics.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from prometheus_client import REGISTRY

from tests.compiled.test_differential import both
from tests.factories_compiler import seed
from tests.helpers import token

MIXED = """query Mixed($first: Int!) {
  a: lessons(first: $first) { totalCount nodes { id title } }
  metrics: effectiveThresholds(agentId: "a") { maxTokens failureSignal }
  ...More
  __typename
}
fragment More on Query {
  limits { nodes { id name } }
  __type(name: "Incident") { name }
  viewer { tenantId }
}"""


def _roots(path: str) -> float:
    return REGISTRY.get_sample_value("gateway_graphql_root_fields_total", {"path": path}) or 0.0


def _ordered(text: str) -> list[str]:
    return list(json.loads(text)["data"])


async def _post(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token('t1')}"},
    )


async def test_mapped_roots_compile_beside_resolver_roots_in_selection_order(
    client, compiled_client, engine, count_statements
):
    # given
    await seed(engine)
    compiled_before, resolver_before = _roots("compiled"), _roots("resolver")
    # when
    path, want, got = await both(client, compiled_client, MIXED, {"first": 3})
    # then: identical data, keys in selection order, every root answered
    assert path == "mixed"
    assert got == want
    assert "errors" not in got
    keys = ["a", "metrics", "limits", "__type", "viewer", "__typename"]
    response = await _post(compiled_client, MIXED, {"first": 3})
    assert _ordered(response.text) == keys
    assert len(response.json()["data"]["a"]["nodes"]) == 3
    assert got["data"]["__type"] == {"name": "Incident"}
    # lessons, limits, viewer and __typename compiled, effectiveThresholds and __type resolved:
    # twice on compiled_client (the second request is the remembered repeat), and all six
    # once on the resolver path's client (same process, same registry)
    assert _roots("compiled") - compiled_before == 8
    assert _roots("resolver") - resolver_before == 2 + 2 + 6
    exposed = (await compiled_client.get("/metrics")).text
    assert 'gateway_graphql_root_fields_total{path="compiled"}' in exposed
    assert 'gateway_graphql_root_fields_total{path="resolver"}' in exposed
    assert 'gateway_graphql_operations_total{path="mixed"}' in exposed


async def test_mixed_answers_use_one_compiled_statement(compiled_client, engine, count_statements):
    # given
    await seed(engine)
    await _post(compiled_client, "{ incidents(first: 1) { totalCount } }", {})
    count_statements.reset()
    # when
    response = await _post(
        compiled_client,
        "{ incidents(first: 5) { totalCount nodes { id } } alertOutboxStats { pending } }",
        {},
    )
    # then: one JSON statement for the mapped root (the resolver root reads on its own)
    assert response.headers["x-gateway-read-path"] == "mixed"
    compiled = [s for s in count_statements.statements if "json_build_object" in s]
    assert len(compiled) == 1, count_statements.statements
    assert response.json()["data"]["incidents"]["totalCount"] == 14


async def test_a_failing_resolver_root_nulls_only_itself(client, compiled_client, engine):
    # given: a bad cursor in a nested connection sends `incident` to the resolver path, whose
    # error nulls that (nullable) root only; `incidents` stays compiled
    data = await seed(engine)
    incident_id = data.incidents["t1"][0]["id"]
    query = """query($id: ID!) {
      incidents(first: 2) { totalCount nodes { id } }
      incident(id: $id) { id events(after: "garbage") { totalCount } }
      viewer { role }
    }"""
    # when
    path, want, got = await both(client, compiled_client, query, {"id": incident_id})
    # then
    assert path == "mixed"
    assert got == want
    assert got["data"]["incident"] is None
    assert got["data"]["incidents"]["totalCount"] == 14
    assert [e["path"] for e in got["errors"]] == [["incident", "events"]]
    assert got["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_failing_non_null_resolver_root_nulls_the_data(client, compiled_client, engine):
    # given: incidentLearnings is non-null; an unknown incident is NOT_FOUND
    await seed(engine)
    query = """{
      lessons(first: 2) { totalCount }
      incidentLearnings(incidentId: "no-such-incident") { incidentId }
    }"""
    # when
    path, want, got = await both(client, compiled_client, query, None)
    # then: data is null as on the resolver path, the error keeps its root's path
    assert got == want
    assert got["data"] is None
    assert [e["path"] for e in got["errors"]] == [["incidentLearnings"]]
    assert got["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert path == "resolver"  # a null data carries no compiled root


async def test_a_repeated_mixed_operation_reuses_its_bound_plan(
    client, compiled_client, engine, count_statements
):
    # given
    data = await seed(engine)
    query = """query($id: ID!) {
      incident(id: $id) { id title }
      alertOutboxStats { pending }
    }"""
    first = await _post(compiled_client, query, {"id": data.incidents["t1"][2]["id"]})
    count_statements.reset()
    # when: the same request again, then by another tenant's caller
    second = await _post(compiled_client, query, {"id": data.incidents["t1"][2]["id"]})
    other = await compiled_client.post(
        "/graphql",
        json={"query": query, "variables": {"id": data.incidents["t1"][2]["id"]}},
        headers={"authorization": f"Bearer {token('t2')}"},
    )
    # then: the same answer; the tenant is the caller's (t2 cannot see t1's incident)
    assert second.headers["x-gateway-read-path"] == "mixed"
    assert second.content == first.content
    assert first.json()["data"]["incident"]["id"] == data.incidents["t1"][2]["id"]
    assert other.json()["data"]["incident"] is None
    compiled = [s for s in count_statements.statements if "json_build_object" in s]
    assert len(compiled) == 2


async def test_variable_defaults_do_not_block_compilation(client, compiled_client, engine):
    # given: every argument comes from a variable's default
    await seed(engine)
    query = """query Defaults(
      $filter: LimitFilter = {status: [ACTIVE, DISABLED]}, $first: Int = 3,
      $order: IncidentOrder = SEVERITY_DESC, $status: [OverrideStatus!] = [ACTIVE, PENDING]
    ) {
      limits(filter: $filter, first: $first) { totalCount nodes { id status } }
      incidents(orderBy: $order, first: $first) { nodes { id severity } }
      overrides(status: $status) { totalCount }
    }"""
    # when
    path, want, got = await both(client, compiled_client, query, None)
    # then
    assert path == "compiled"
    assert got == want
    assert len(got["data"]["incidents"]["nodes"]) == 3
    assert {n["status"] for n in got["data"]["limits"]["nodes"]} <= {"ACTIVE", "DISABLED"}
