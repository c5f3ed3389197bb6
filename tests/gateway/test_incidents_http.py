"""The incident slice over real HTTP: lists, cursors, nested fields, lifecycle and isolation."""

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
)
from tests.helpers import error_codes, gql

INCIDENT_PAGE = """
query Page($first: Int!, $after: String, $filter: IncidentFilter, $order: IncidentOrder!) {
  incidents(first: $first, after: $after, filter: $filter, orderBy: $order) {
    totalCount
    nodes { id severity status }
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

CONSOLE = """
query Console($first: Int!) {
  incidents(first: $first) {
    nodes {
      id title severity
      events(first: 20) { totalCount nodes { id eventType createdAt } pageInfo { hasNextPage } }
      breaches { id breachType limit { id name } }
      lessons { id title }
    }
  }
}
"""


async def test_incident_point_read_and_nested_fields(client, engine):
    # given
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    events = [
        event_row(inc["id"], description=f"e{i}", created_at=NOW - timedelta(minutes=60 - i))
        for i in range(25)
    ]
    await insert_rows(engine, t.incident_events, events)
    [limit] = await make_limits(engine, 1)
    await insert_rows(engine, t.limit_breaches, [breach_row(limit["id"], incident_id=inc["id"])])
    await insert_rows(engine, t.lessons_learned, [lesson_row(inc["id"])])
    query = """query($id: ID!) { incident(id: $id) {
        id status topic timeToResolutionMs costDeltaCents createdAt
        events(first: 5) { totalCount nodes { description } pageInfo { hasNextPage endCursor } }
        breaches { limitValue limit { id effectiveValue integrity { integrityStatus } } }
        lessons { title sourceEventType }
    } }"""
    # when
    body = await gql(client, query, {"id": inc["id"]})
    # then
    assert "errors" not in body, body
    got = body["data"]["incident"]
    assert got["status"] == "OPEN" and got["topic"] == "ACTIVE"
    assert got["timeToResolutionMs"] is None
    assert got["costDeltaCents"] == "0.0000"
    assert got["events"]["totalCount"] == 25
    assert [n["description"] for n in got["events"]["nodes"]] == ["e24", "e23", "e22", "e21", "e20"]
    assert got["events"]["pageInfo"]["hasNextPage"] is True
    assert got["breaches"] == [
        {
            "limitValue": "100.0000",
            "limit": {
                "id": limit["id"],
                "effectiveValue": "100.0000",
                "integrity": {"integrityStatus": "VERIFIED"},
            },
        }
    ]
    assert got["lessons"] == [{"title": "Failure: TIMEOUT", "sourceEventType": "INCIDENT"}]


async def test_nested_events_pages_follow_cursors(client, engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    await insert_rows(
        engine,
        t.incident_events,
        [
            event_row(inc["id"], description=f"e{i}", created_at=NOW - timedelta(seconds=i))
            for i in range(7)
        ],
    )
    query = """query($id: ID!, $after: String) { incident(id: $id) {
        events(first: 3, after: $after) { nodes { description } pageInfo { hasNextPage hasPreviousPage endCursor } }
    } }"""
    seen: list[str] = []
    after = None
    for _ in range(3):
        page = (await gql(client, query, {"id": inc["id"], "after": after}))["data"]["incident"][
            "events"
        ]
        seen += [n["description"] for n in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert seen == [f"e{i}" for i in range(7)]


async def test_incident_pages_have_no_gaps_or_duplicates_in_every_order(client, engine):
    # given 23 incidents, several sharing a created_at so the id tie-breaker matters
    rows = [
        incident_row(
            created_at=NOW - timedelta(minutes=i // 3),
            severity=["LOW", "MEDIUM", "HIGH", "CRITICAL"][i % 4],
            status="RESOLVED" if i % 5 == 0 else "OPEN",
            resolved_at=NOW - timedelta(minutes=i) if i % 5 == 0 else None,
            ended_at=NOW - timedelta(minutes=i) if i % 5 == 0 else None,
            resolution_method="MANUAL" if i % 5 == 0 else None,
        )
        for i in range(23)
    ]
    await insert_rows(engine, t.incidents, rows)
    for order in ("CREATED_AT_DESC", "CREATED_AT_ASC", "SEVERITY_DESC", "RESOLVED_AT_DESC"):
        ids: list[str] = []
        after = None
        for _ in range(10):  # 23 rows in pages of 5: five pages, never more
            body = await gql(client, INCIDENT_PAGE, {"first": 5, "after": after, "order": order})
            assert "errors" not in body, body
            conn = body["data"]["incidents"]
            assert conn["totalCount"] == 23
            assert conn["pageInfo"]["hasPreviousPage"] is (after is not None)
            assert [e["node"]["id"] for e in conn["edges"]] == [n["id"] for n in conn["nodes"]]
            ids += [n["id"] for n in conn["nodes"]]
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
        # then every incident exactly once, in the ordering's sequence
        assert sorted(ids) == sorted(r["id"] for r in rows), order
        assert len(ids) == len(set(ids))
    # and the severity order really is by severity
    body = await gql(client, INCIDENT_PAGE, {"first": 100, "order": "SEVERITY_DESC"})
    ranks = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1}
    sev = [ranks[n["severity"]] for n in body["data"]["incidents"]["nodes"]]
    assert sev == sorted(sev, reverse=True)


async def test_incident_filters(client, engine):
    rows = [
        incident_row(severity="CRITICAL", category="COST_ANOMALY", cause_type="SYSTEM"),
        incident_row(
            severity="LOW",
            category="MANUAL",
            cause_type="HUMAN",
            created_at=NOW - timedelta(days=3),
        ),
        incident_row(
            severity="HIGH",
            category=None,
            cause_type="LLM_RUN",
            source_run_id=None,
            trigger_type="RUN_FAILURE",
        ),
    ]
    await insert_rows(engine, t.incidents, rows)

    async def ids(filter_: dict[str, object]) -> set[str]:
        body = await gql(
            client, INCIDENT_PAGE, {"first": 50, "filter": filter_, "order": "CREATED_AT_DESC"}
        )
        assert "errors" not in body, body
        return {n["id"] for n in body["data"]["incidents"]["nodes"]}

    assert await ids({"severity": ["CRITICAL", "HIGH"]}) == {rows[0]["id"], rows[2]["id"]}
    assert await ids({"category": ["MANUAL"]}) == {rows[1]["id"]}
    assert await ids({"causeType": ["LLM_RUN"]}) == {rows[2]["id"]}
    assert await ids({"triggerType": ["RUN_FAILURE"]}) == {rows[2]["id"]}
    assert await ids({"createdBefore": (NOW - timedelta(days=1)).isoformat()}) == {rows[1]["id"]}
    assert await ids({"status": ["RESOLVED"]}) == set()


async def test_bad_arguments_answer_typed_errors_before_sql(client, engine, count_statements):
    body = await gql(client, INCIDENT_PAGE, {"first": 101, "order": "CREATED_AT_DESC"})
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    body = await gql(client, INCIDENT_PAGE, {"first": 0, "order": "CREATED_AT_DESC"})
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    count_statements.reset()
    body = await gql(
        client, INCIDENT_PAGE, {"first": 5, "after": "not-a-cursor", "order": "CREATED_AT_DESC"}
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "after"
    assert count_statements.count == 0
    body = await gql(client, INCIDENT_PAGE, {"first": 5, "order": "SIDEWAYS"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    body = await gql(client, "{ incidents { nodes { nope } } }")
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_cursor_of_another_ordering_is_refused(client, engine):
    await insert_rows(engine, t.incidents, [incident_row(), incident_row()])
    body = await gql(client, INCIDENT_PAGE, {"first": 1, "order": "CREATED_AT_DESC"})
    cursor = body["data"]["incidents"]["pageInfo"]["endCursor"]
    body = await gql(client, INCIDENT_PAGE, {"first": 1, "after": cursor, "order": "SEVERITY_DESC"})
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_console_query_statement_count_does_not_grow_with_rows(
    client, engine, count_statements
):
    async def seed(n: int, tenant: str) -> None:
        incidents = [incident_row(tenant) for _ in range(n)]
        await insert_rows(engine, t.incidents, incidents)
        await insert_rows(
            engine,
            t.incident_events,
            [
                event_row(i["id"], tenant, created_at=NOW - timedelta(seconds=k))
                for i in incidents
                for k in range(22)
            ],
        )
        [limit] = await make_limits(engine, 1, tenant)
        await insert_rows(
            engine,
            t.limit_breaches,
            [breach_row(limit["id"], tenant, incident_id=i["id"]) for i in incidents],
        )
        await insert_rows(
            engine, t.lessons_learned, [lesson_row(i["id"], tenant) for i in incidents]
        )

    await seed(5, "small")
    await seed(50, "large")
    counts = {}
    for tenant, n in (("small", 5), ("large", 50)):
        count_statements.reset()
        body = await gql(client, CONSOLE, {"first": 50}, tenant=tenant)
        assert "errors" not in body, body
        nodes = body["data"]["incidents"]["nodes"]
        assert len(nodes) == n
        assert all(
            len(x["events"]["nodes"]) == 20 and x["events"]["totalCount"] == 22 for x in nodes
        )
        assert all(len(x["breaches"]) == 1 and len(x["lessons"]) == 1 for x in nodes)
        counts[tenant] = count_statements.count
    # page + events + events count + breaches + breach.limit + lessons (auth is a JWT: no SQL)
    assert counts == {"small": 6, "large": 6}


async def test_foreign_tenant_incident_reads_as_missing(client, engine):
    theirs = incident_row("t2")
    await insert_rows(engine, t.incidents, [theirs])
    query = "query($id: ID!) { incident(id: $id) { id } }"
    foreign = await gql(client, query, {"id": theirs["id"]}, tenant="t1")
    missing = await gql(client, query, {"id": "does-not-exist"}, tenant="t1")
    assert foreign == missing == {"data": {"incident": None}}
    own = await gql(client, query, {"id": theirs["id"]}, tenant="t2")
    assert own == {"data": {"incident": {"id": theirs["id"]}}}
    listed = await gql(
        client, INCIDENT_PAGE, {"first": 10, "order": "CREATED_AT_DESC"}, tenant="t1"
    )
    assert listed["data"]["incidents"]["totalCount"] == 0
