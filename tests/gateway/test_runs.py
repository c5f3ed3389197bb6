"""Runs over HTTP: list, point read, nested fields (batched), Incident.sourceRun/evidence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drivers import tables as t
from tests.factories import NOW, breach_row, incident_row, insert_rows, lesson_row, make_limits
from tests.factories_incwrites import (
    evidence_row,
    failure_row,
    run_row,
    step_row,
    violation_row,
)
from tests.helpers import error_codes, gql

RUNS = """query($first: Int!, $after: String, $filter: RunFilter) {
  runs(first: $first, after: $after, filter: $filter) {
    totalCount
    nodes { id status agentId }
    pageInfo { hasNextPage endCursor }
  }
}"""

RUN_CONSOLE = """query($first: Int!) {
  runs(first: $first) {
    nodes {
      id status inputTokens estimatedCostUsd incidentCount
      incidents(first: 5) { totalCount nodes { id title sourceRun { id } } }
      breaches(first: 5) { nodes { id breachType } }
      steps(first: 3) { totalCount nodes { stepIndex tokens costCents status }
                        pageInfo { hasNextPage } }
      failures(first: 5) { nodes { id failureType evidence { evidenceType } } }
      violations { nodes { id policyId severity incident { id } } }
    }
  }
}"""


async def seed_run(engine, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    """A run with 4 steps, one incident, breach, failure and violation."""
    run = run_row(tenant, **over)
    await insert_rows(engine, t.runs, [run])
    await insert_rows(engine, t.run_steps, [step_row(run["id"], i, tenant) for i in range(4)])
    inc = incident_row(tenant, source_run_id=run["id"], source_type="RUN", cause_type="LLM_RUN")
    await insert_rows(engine, t.incidents, [inc])
    [limit] = await make_limits(engine, 1, tenant)
    await insert_rows(engine, t.limit_breaches, [breach_row(limit["id"], tenant, run_id=run["id"])])
    await insert_rows(engine, t.run_failures, [failure_row(run["id"], tenant)])
    await insert_rows(
        engine, t.policy_violations, [violation_row(run["id"], tenant, incident_id=inc["id"])]
    )
    return run


async def test_runs_list_filters_and_pages(client, engine):
    runs = [
        run_row(created_at=NOW - timedelta(minutes=i), status="RUNNING" if i % 2 else "FAILED")
        for i in range(5)
    ]
    await insert_rows(engine, t.runs, [*runs, run_row("t2")])
    body = await gql(client, RUNS, {"first": 2}, role="VIEWER")
    page = body["data"]["runs"]
    assert page["totalCount"] == 5
    assert [n["id"] for n in page["nodes"]] == [runs[0]["id"], runs[1]["id"]]
    assert page["pageInfo"]["hasNextPage"] is True
    body = await gql(client, RUNS, {"first": 10, "after": page["pageInfo"]["endCursor"]})
    assert [n["id"] for n in body["data"]["runs"]["nodes"]] == [r["id"] for r in runs[2:]]
    body = await gql(client, RUNS, {"first": 10, "filter": {"status": ["FAILED"]}})
    assert [n["id"] for n in body["data"]["runs"]["nodes"]] == [
        runs[0]["id"],
        runs[2]["id"],
        runs[4]["id"],
    ]
    body = await gql(client, RUNS, {"first": 10, "filter": {"agentId": "nobody"}})
    assert body["data"]["runs"]["totalCount"] == 0
    body = await gql(client, RUNS, {"first": 101})
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]


async def test_run_point_read_with_nested_fields(client, engine):
    run = await seed_run(engine)
    theirs = await seed_run(engine, "t2")
    query = """query($id: ID!) { run(id: $id) {
        id agentId projectId status inputTokens outputTokens estimatedCostUsd
        steps(first: 2) { totalCount nodes { stepIndex tokens } pageInfo { hasNextPage endCursor } }
        incidents { nodes { sourceType causeType } }
        breaches { nodes { runId } }
        failures { nodes { failureType errorCode runId } }
        violations { nodes { runId violatedRule incident { sourceRun { id } } } }
    } }"""
    body = await gql(client, query, {"id": run["id"]}, role="VIEWER")
    assert "errors" not in body, body
    got = body["data"]["run"]
    assert (got["agentId"], got["status"], got["estimatedCostUsd"]) == (
        "agent-7",
        "RUNNING",
        "0.120000",
    )
    assert got["steps"]["totalCount"] == 4
    assert [s["stepIndex"] for s in got["steps"]["nodes"]] == [0, 1]
    assert got["steps"]["pageInfo"]["hasNextPage"] is True
    assert got["incidents"]["nodes"] == [{"sourceType": "RUN", "causeType": "LLM_RUN"}]
    assert got["breaches"]["nodes"] == [{"runId": run["id"]}]
    assert got["failures"]["nodes"] == [
        {"failureType": "TIMEOUT", "errorCode": "E_TIMEOUT", "runId": run["id"]}
    ]
    assert got["violations"]["nodes"] == [
        {
            "runId": run["id"],
            "violatedRule": "max_tokens",
            "incident": {"sourceRun": {"id": run["id"]}},
        }
    ]
    # the next page of steps
    cursor = got["steps"]["pageInfo"]["endCursor"]
    page2 = await gql(
        client,
        """query($id: ID!, $after: String) { run(id: $id) {
            steps(first: 5, after: $after) { nodes { stepIndex } } } }""",
        {"id": run["id"], "after": cursor},
    )
    assert [s["stepIndex"] for s in page2["data"]["run"]["steps"]["nodes"]] == [2, 3]
    # another tenant's run reads as missing
    body = await gql(client, query, {"id": theirs["id"]})
    assert body == {"data": {"run": None}}


async def test_run_console_statement_count_does_not_grow_with_runs(
    client, engine, count_statements
):
    counts = {}
    for tenant, n in (("small", 2), ("large", 7)):
        for _ in range(n):
            await seed_run(engine, tenant)
        count_statements.reset()
        body = await gql(client, RUN_CONSOLE, {"first": 50}, tenant=tenant)
        assert "errors" not in body, body
        nodes = body["data"]["runs"]["nodes"]
        assert len(nodes) == n
        assert all(
            len(x["steps"]["nodes"]) == 3
            and x["steps"]["totalCount"] == 4
            and x["steps"]["pageInfo"]["hasNextPage"]
            and len(x["incidents"]["nodes"]) == 1
            and x["incidents"]["nodes"][0]["sourceRun"]["id"] == x["id"]
            and len(x["breaches"]["nodes"]) == 1
            and x["failures"]["nodes"][0]["evidence"] == []
            and x["violations"]["nodes"][0]["incident"]["id"] == x["incidents"]["nodes"][0]["id"]
            for x in nodes
        )
        counts[tenant] = count_statements.count
    # page + incidents + count + sourceRun + breaches + steps + count + failures + evidence
    # + violations + violation.incident
    assert counts == {"small": 11, "large": 11}


async def test_incident_source_run_and_evidence_are_batched(client, engine, count_statements):
    query = """query { incidents(first: 50) { nodes {
        id sourceRun { id status } evidence { evidenceType payload recoveryExecuted }
    } } }"""
    counts = {}
    for tenant, n in (("small", 2), ("large", 8)):
        for _ in range(n):
            run = run_row(tenant)
            await insert_rows(engine, t.runs, [run])
            inc = incident_row(tenant, source_run_id=run["id"])
            await insert_rows(engine, t.incidents, [inc])
            await insert_rows(
                engine, t.incident_evidence, [evidence_row(inc["id"], tenant) for _ in range(2)]
            )
        await insert_rows(engine, t.incidents, [incident_row(tenant)])  # no run, no evidence
        count_statements.reset()
        body = await gql(client, query, tenant=tenant)
        assert "errors" not in body, body
        nodes = body["data"]["incidents"]["nodes"]
        with_run = [x for x in nodes if x["sourceRun"]]
        assert len(with_run) == n
        assert all(len(x["evidence"]) == 2 for x in with_run)
        assert all(
            e
            == {
                "evidenceType": "POLICY_VIOLATION",
                "payload": {"k": "v"},
                "recoveryExecuted": False,
            }
            for x in with_run
            for e in x["evidence"]
        )
        assert [x["evidence"] for x in nodes if not x["sourceRun"]] == [[]]
        counts[tenant] = count_statements.count
    assert counts == {"small": 3, "large": 3}


async def test_lesson_source_run_is_batched(client, engine, count_statements):
    query = "query { lessons(first: 50) { nodes { id sourceRun { id agentId } } } }"
    counts = {}
    for tenant, n in (("small", 2), ("large", 8)):
        runs = [run_row(tenant) for _ in range(n)]
        await insert_rows(engine, t.runs, runs)
        await insert_rows(
            engine,
            t.lessons_learned,
            [
                lesson_row(r["id"], tenant, source_event_type="RUN", source_run_id=r["id"])
                for r in runs
            ],
        )
        await insert_rows(engine, t.lessons_learned, [lesson_row("inc-x", tenant)])  # no run
        count_statements.reset()
        body = await gql(client, query, tenant=tenant)
        assert "errors" not in body, body
        nodes = body["data"]["lessons"]["nodes"]
        assert sorted(x["sourceRun"]["id"] for x in nodes if x["sourceRun"]) == sorted(
            r["id"] for r in runs
        )
        assert all(x["sourceRun"]["agentId"] == "agent-7" for x in nodes if x["sourceRun"])
        assert sum(x["sourceRun"] is None for x in nodes) == 1
        counts[tenant] = count_statements.count
    assert counts == {"small": 2, "large": 2}
