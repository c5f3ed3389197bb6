"""A compiled operation is exactly ONE SQL statement, for 5 rows as for 500."""

from __future__ import annotations

from datetime import timedelta

from drivers import tables as t
from tests.factories import (
    NOW,
    breach_row,
    event_row,
    incident_row,
    insert_rows,
    lesson_row,
    make_limits,
    override_row,
)
from tests.factories_incwrites import run_row, step_row, violation_row
from tests.helpers import token

CONSOLE = """query Console($first: Int!) {
  incidents(first: $first) {
    totalCount
    nodes {
      id title severity createdAt
      events(first: 20) { totalCount nodes { id eventType createdAt } pageInfo { hasNextPage } }
      breaches { id breachType limit { id name effectiveValue integrity { integrityStatus } } }
      lessons { id title }
    }
    pageInfo { hasNextPage endCursor }
  }
  limits(first: 100) { nodes { id breaches(first: 5) { nodes { id } } overrides { id status } } }
}"""


async def _seed(engine, n: int, tenant: str) -> None:
    [limit] = await make_limits(engine, 1, tenant)
    await insert_rows(engine, t.limit_overrides, [override_row(limit["id"], tenant)])
    incidents = [incident_row(tenant, created_at=NOW - timedelta(minutes=i)) for i in range(n)]
    await insert_rows(engine, t.incidents, incidents)
    await insert_rows(
        engine,
        t.incident_events,
        [event_row(inc["id"], tenant) for inc in incidents for _ in range(3)],
    )
    await insert_rows(
        engine,
        t.limit_breaches,
        [breach_row(limit["id"], tenant, incident_id=inc["id"]) for inc in incidents],
    )
    await insert_rows(
        engine, t.lessons_learned, [lesson_row(inc["id"], tenant) for inc in incidents]
    )


async def test_one_statement_per_compiled_operation(compiled_client, engine, count_statements):
    # given
    await _seed(engine, 5, "small")
    await _seed(engine, 500, "large")
    counts = {}
    for tenant, n in (("small", 5), ("large", 100)):
        count_statements.reset()
        # when
        response = await compiled_client.post(
            "/graphql",
            json={"query": CONSOLE, "variables": {"first": 100}},
            headers={"authorization": f"Bearer {token(tenant)}"},
        )
        # then
        assert response.headers["x-gateway-read-path"] == "compiled"
        body = response.json()
        assert "errors" not in body, body
        nodes = body["data"]["incidents"]["nodes"]
        assert len(nodes) == n
        assert all(len(x["events"]["nodes"]) == 3 and len(x["breaches"]) == 1 for x in nodes)
        counts[tenant] = count_statements.count
    assert counts == {"small": 1, "large": 1}


async def test_setting_off_serves_the_resolver_path(client):
    response = await client.post(
        "/graphql",
        json={"query": "{ incidents(first: 1) { totalCount } }"},
        headers={"authorization": f"Bearer {token()}"},
    )
    assert response.headers["x-gateway-read-path"] == "resolver"
    assert response.json() == {"data": {"incidents": {"totalCount": 0}}}


async def test_mutations_and_introspection_use_the_resolver_path(compiled_client):
    for query, path in (
        ("{ __schema { queryType { name } } }", "resolver"),
        # Introspection beside a mapped root: only the introspection root resolves.
        ('{ incidents(first: 1) { totalCount } __type(name: "Incident") { name } }', "mixed"),
        ('mutation { acknowledgeIncident(id: "nope") { id } }', "resolver"),
    ):
        response = await compiled_client.post(
            "/graphql", json={"query": query}, headers={"authorization": f"Bearer {token()}"}
        )
        assert response.headers["x-gateway-read-path"] == path, query


async def test_viewer_is_compiled(client, compiled_client):
    query = "{ viewer { tenantId actor role __typename } }"
    headers = {"authorization": f"Bearer {token('t9', 'OPERATOR', 'bob')}"}
    a = await client.post("/graphql", json={"query": query}, headers=headers)
    b = await compiled_client.post("/graphql", json={"query": query}, headers=headers)
    assert b.headers["x-gateway-read-path"] == "compiled"
    assert (
        a.json()
        == b.json()
        == {
            "data": {
                "viewer": {
                    "tenantId": "t9",
                    "actor": "bob",
                    "role": "OPERATOR",
                    "__typename": "Viewer",
                }
            }
        }
    )


async def test_argument_errors_match_the_resolver_path(client, compiled_client):
    for query, code in (
        ('{ incidents(after: "garbage") { totalCount } }', "BAD_USER_INPUT"),
        ("{ incidents(first: 101) { totalCount } }", "QUERY_TOO_COMPLEX"),
        ("{ incidents(orderBy: NOPE) { totalCount } }", "BAD_USER_INPUT"),
    ):
        headers = {"authorization": f"Bearer {token()}"}
        a = (await client.post("/graphql", json={"query": query}, headers=headers)).json()
        b = (await compiled_client.post("/graphql", json={"query": query}, headers=headers)).json()
        assert a == b
        assert [e["extensions"]["code"] for e in b["errors"]] == [code]


RUNS = """{
  runs(first: 100) {
    totalCount
    nodes {
      id status
      steps(first: 5) { nodes { stepIndex tokens } pageInfo { hasNextPage } }
      breaches { totalCount nodes { id run { id } limit { id name } } }
      violations { nodes { id incident { id title } } }
      incidents { nodes { id } }
    }
  }
  limitBreaches(first: 100) { nodes { id run { id agentId } } }
  overrides(first: 100) { nodes { id status limit { id } } }
  lessons(first: 100) { nodes { id sourceRun { id } sourceIncident { id } } }
}"""


async def _seed_runs(engine, n: int, tenant: str) -> None:
    [limit] = await make_limits(engine, 1, tenant)
    await insert_rows(engine, t.limit_overrides, [override_row(limit["id"], tenant)])
    runs = [run_row(tenant, created_at=NOW - timedelta(minutes=i)) for i in range(n)]
    await insert_rows(engine, t.runs, runs)
    incidents = [incident_row(tenant, source_run_id=r["id"]) for r in runs]
    await insert_rows(engine, t.incidents, incidents)
    await insert_rows(
        engine, t.run_steps, [step_row(r["id"], k, tenant) for r in runs for k in range(3)]
    )
    await insert_rows(
        engine,
        t.limit_breaches,
        [breach_row(limit["id"], tenant, run_id=r["id"]) for r in runs],
    )
    await insert_rows(
        engine,
        t.policy_violations,
        [
            violation_row(r["id"], tenant, incident_id=inc["id"])
            for r, inc in zip(runs, incidents, strict=True)
        ],
    )
    await insert_rows(
        engine,
        t.lessons_learned,
        [lesson_row(inc["id"], tenant, source_run_id=inc["source_run_id"]) for inc in incidents],
    )


async def test_one_statement_for_runs_breaches_overrides_and_lessons(
    compiled_client, engine, count_statements
):
    # given
    await _seed_runs(engine, 5, "small")
    await _seed_runs(engine, 500, "large")
    counts = {}
    for tenant, n in (("small", 5), ("large", 100)):
        count_statements.reset()
        # when
        response = await compiled_client.post(
            "/graphql", json={"query": RUNS}, headers={"authorization": f"Bearer {token(tenant)}"}
        )
        # then
        assert response.headers["x-gateway-read-path"] == "compiled"
        body = response.json()
        assert "errors" not in body, body
        runs = body["data"]["runs"]["nodes"]
        assert len(runs) == n
        assert all(
            len(r["steps"]["nodes"]) == 3 and len(r["violations"]["nodes"]) == 1 for r in runs
        )
        assert all(r["violations"]["nodes"][0]["incident"] is not None for r in runs)
        assert len(body["data"]["lessons"]["nodes"]) == n
        assert all(x["sourceRun"] and x["sourceIncident"] for x in body["data"]["lessons"]["nodes"])
        counts[tenant] = count_statements.count
    assert counts == {"small": 1, "large": 1}
