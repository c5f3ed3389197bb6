"""Incident values derived on read (DOMAIN.md §1.18) on both read paths, without N+1."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drivers import tables as t
from tests.factories import NOW, event_row, incident_row, insert_rows
from tests.factories_incwrites import evidence_row
from tests.helpers import gql

DERIVED = """query($id: ID!) { incident(id: $id) {
  id createdAt firstSeenAt lastSeenAt evidenceCount recoveryAttempted recurrenceCount
  timeToResolutionMs timeToResolutionMillis
} }"""
LIST = """{ incidents(first: 100) { nodes {
  id lastSeenAt evidenceCount recoveryAttempted recurrenceCount
} } }"""


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


async def _seed(engine: Any) -> dict[str, dict[str, Any]]:
    hour = timedelta(hours=1)
    main = incident_row(category="BUDGET_EXCEEDED", created_at=NOW - hour)
    bare = incident_row(category=None, created_at=NOW - 2 * hour)
    prior = [
        incident_row(category="BUDGET_EXCEEDED", created_at=NOW - hour - timedelta(days=1)),
        incident_row(category="BUDGET_EXCEEDED", created_at=NOW - hour - timedelta(days=29)),
        # outside: older than 30 days, another category, another tenant, created later
        incident_row(category="BUDGET_EXCEEDED", created_at=NOW - hour - timedelta(days=31)),
        incident_row(category="RATE_LIMIT", created_at=NOW - 2 * hour),
        incident_row("t2", category="BUDGET_EXCEEDED", created_at=NOW - 2 * hour),
        incident_row(category="BUDGET_EXCEEDED", created_at=NOW - timedelta(minutes=30)),
        # one uncategorized incident before `bare`
        incident_row(category=None, created_at=NOW - timedelta(days=3)),
    ]
    long = incident_row(
        status="RESOLVED",
        category="MANUAL",
        resolution_method="MANUAL",
        created_at=NOW - timedelta(days=40),
        resolved_at=NOW - timedelta(days=10),
        ended_at=NOW - timedelta(days=10),
    )
    short = incident_row(
        status="RESOLVED",
        category="MANUAL",
        resolution_method="MANUAL",
        created_at=NOW - timedelta(days=2),
        resolved_at=NOW - timedelta(days=2) + timedelta(milliseconds=2**31 - 1),
        ended_at=NOW - timedelta(days=1),
    )
    await insert_rows(engine, t.incidents, [main, bare, *prior])
    await insert_rows(engine, t.incidents, [long, short])  # more columns: one insert
    await insert_rows(
        engine,
        t.incident_events,
        [
            event_row(main["id"], created_at=NOW - timedelta(minutes=50)),
            event_row(main["id"], created_at=NOW - timedelta(minutes=10)),
            event_row(prior[0]["id"], created_at=NOW - timedelta(minutes=5)),
        ],
    )
    await insert_rows(
        engine,
        t.incident_evidence,
        [
            evidence_row(main["id"], recovery_executed=False),
            evidence_row(main["id"], evidence_type="RECOVERY_ACTION", recovery_executed=True),
            evidence_row(bare["id"], recovery_executed=False),
        ],
    )
    return {"main": main, "bare": bare, "long": long, "short": short}


async def test_derived_values_on_both_read_paths(client, compiled_client, engine):
    rows = await _seed(engine)
    for http in (client, compiled_client):
        got = {}
        for name, row in rows.items():
            body = await gql(http, DERIVED, {"id": row["id"]})
            assert "errors" not in body, body
            got[name] = body["data"]["incident"]
        main, bare, long, short = got["main"], got["bare"], got["long"], got["short"]
        # the latest event, 2 evidence rows of which one executed a recovery, 2 prior incidents
        assert main["lastSeenAt"] == (NOW - timedelta(minutes=10)).isoformat()
        assert (main["evidenceCount"], main["recoveryAttempted"], main["recurrenceCount"]) == (
            2,
            True,
            2,
        )
        # no events: createdAt; uncategorized counts uncategorized ones
        assert bare["lastSeenAt"] == bare["createdAt"] == bare["firstSeenAt"]
        assert (bare["evidenceCount"], bare["recoveryAttempted"], bare["recurrenceCount"]) == (
            1,
            False,
            1,
        )
        # 30 days to resolve: the Long field carries it, the deprecated Int one is null
        assert long["timeToResolutionMillis"] == _ms(timedelta(days=30)) > 2**31 - 1
        assert long["timeToResolutionMs"] is None
        assert short["timeToResolutionMillis"] == short["timeToResolutionMs"] == 2**31 - 1
        assert main["timeToResolutionMillis"] is None and main["timeToResolutionMs"] is None


async def test_compiled_and_resolver_responses_are_identical(client, compiled_client, engine):
    await _seed(engine)
    bodies = [
        (await http.post("/graphql", json={"query": LIST}, headers=_auth()))
        for http in (
            client,
            compiled_client,
        )
    ]
    assert [b.headers["x-gateway-read-path"] for b in bodies] == ["resolver", "compiled"]
    assert bodies[0].json() == bodies[1].json()
    assert len(bodies[0].json()["data"]["incidents"]["nodes"]) == 10  # t1 only


async def test_derived_values_cost_one_statement_per_page(client, engine, count_statements):
    for tenant, n in (("small", 3), ("large", 60)):
        incidents = [incident_row(tenant) for _ in range(n)]
        await insert_rows(engine, t.incidents, incidents)
        await insert_rows(
            engine,
            t.incident_evidence,
            [evidence_row(i["id"], tenant, recovery_executed=True) for i in incidents],
        )
    counts = {}
    for tenant, n in (("small", 3), ("large", 60)):
        count_statements.reset()
        body = await gql(client, LIST, tenant=tenant)
        nodes = body["data"]["incidents"]["nodes"]
        assert len(nodes) == n
        assert all(x["evidenceCount"] == 1 and x["recoveryAttempted"] for x in nodes)
        assert all(x["recurrenceCount"] == 0 for x in nodes)  # all created at one instant
        counts[tenant] = count_statements.count
    # the page, then one statement for all four derived fields of every node
    assert counts == {"small": 2, "large": 2}


def _auth() -> dict[str, str]:
    from tests.helpers import token  # noqa: PLC0415

    return {"authorization": f"Bearer {token()}"}
