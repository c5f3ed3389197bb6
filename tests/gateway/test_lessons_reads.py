"""Lesson reads over HTTP: the list, filters, paging, point lookup, nested fields, stats."""

from __future__ import annotations

from datetime import timedelta

from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.factories_lessons import NOW, lesson_row, proposal_row
from tests.helpers import error_codes, gql

LIST = """query($first: Int, $after: String, $filter: LessonFilter) {
  lessons(first: $first, after: $after, filter: $filter) {
    nodes { id title } totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
  } }"""
STATS = "{ lessonStats { total byType { lessonType count } byStatus { status count } } }"


def _ago(minutes: int):
    return NOW - timedelta(minutes=minutes)


async def test_lessons_are_newest_first_filtered_and_paged(client, engine):
    rows = [
        lesson_row(title="a", lesson_type="FAILURE", severity="HIGH", created_at=_ago(1)),
        lesson_row(title="b", lesson_type="FAILURE", severity="LOW", created_at=_ago(2)),
        lesson_row(title="c", lesson_type="NEAR_THRESHOLD", severity=None, created_at=_ago(3)),
        lesson_row(title="d", status="DISMISSED", created_at=_ago(4)),
        lesson_row("t2", title="theirs", created_at=_ago(0)),
    ]
    await insert_rows(engine, t.lessons_learned, rows)
    body = await gql(client, LIST, {"first": 2})
    page = body["data"]["lessons"]
    assert [n["title"] for n in page["nodes"]] == ["a", "b"]
    assert page["totalCount"] == 4
    assert page["pageInfo"]["hasNextPage"] is True
    body = await gql(client, LIST, {"first": 2, "after": page["pageInfo"]["endCursor"]})
    rest = body["data"]["lessons"]
    assert [n["title"] for n in rest["nodes"]] == ["c", "d"]
    assert (rest["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasPreviousPage"]) == (False, True)
    cases = [
        ({"lessonType": ["FAILURE"]}, ["a", "b", "d"]),
        ({"lessonType": "NEAR_THRESHOLD"}, ["c"]),
        ({"status": ["DISMISSED"]}, ["d"]),
        ({"severity": ["HIGH"], "status": ["PENDING"]}, ["a"]),
        ({"severity": ["LOW", "HIGH"]}, ["a", "b", "d"]),
    ]
    for flt, titles in cases:
        body = await gql(client, LIST, {"filter": flt})
        got = body["data"]["lessons"]
        assert [n["title"] for n in got["nodes"]] == titles, flt
        assert got["totalCount"] == len(titles)


async def test_default_page_is_50_and_first_is_bounded(client, engine):
    await insert_rows(
        engine, t.lessons_learned, [lesson_row(created_at=_ago(i)) for i in range(55)]
    )
    body = await gql(client, "{ lessons { nodes { id } pageInfo { hasNextPage } } }")
    assert len(body["data"]["lessons"]["nodes"]) == 50
    assert body["data"]["lessons"]["pageInfo"]["hasNextPage"] is True
    body = await gql(client, "{ lessons(first: 101) { nodes { id } } }")
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    body = await gql(client, LIST, {"after": "garbage"})
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_lesson_with_its_incident_and_proposal(client, engine):
    inc = incident_row(title="Budget blown")
    await insert_rows(engine, t.incidents, [inc])
    prop = proposal_row()
    await insert_rows(engine, t.policy_proposals, [prop])
    from_incident = lesson_row(
        source_event_id=inc["id"],
        source_event_type="INCIDENT",
        draft_proposal_id=prop["id"],
        status="CONVERTED_TO_DRAFT",
        converted_at=NOW,
    )
    from_run = lesson_row(
        source_event_id=inc["id"],
        source_event_type="RUN",
        lesson_type="CRITICAL_SUCCESS",
        severity="NONE",
    )
    for row in (from_incident, from_run):  # different column sets: one insert each
        await insert_rows(engine, t.lessons_learned, [row])
    query = """query($id: ID!) { lesson(id: $id) {
        id sourceIncident { id title } draftProposal { id status sourceType } } }"""
    body = await gql(client, query, {"id": from_incident["id"]}, role="VIEWER")
    assert body["data"]["lesson"] == {
        "id": from_incident["id"],
        "sourceIncident": {"id": inc["id"], "title": "Budget blown"},
        "draftProposal": {"id": prop["id"], "status": "DRAFT", "sourceType": "LESSON"},
    }
    # a run lesson has no source incident even if an incident shares the id
    body = await gql(client, query, {"id": from_run["id"]}, role="VIEWER")
    assert body["data"]["lesson"]["sourceIncident"] is None
    assert body["data"]["lesson"]["draftProposal"] is None


async def test_nested_fields_do_not_grow_statements_with_rows(client, engine, count_statements):
    async def seed(n: int, tenant: str) -> None:
        incidents = [incident_row(tenant) for _ in range(n)]
        await insert_rows(engine, t.incidents, incidents)
        props = [proposal_row(tenant) for _ in range(n)]
        await insert_rows(engine, t.policy_proposals, props)
        await insert_rows(
            engine,
            t.lessons_learned,
            [
                lesson_row(
                    tenant,
                    source_event_id=i["id"],
                    source_event_type="INCIDENT",
                    status="CONVERTED_TO_DRAFT",
                    draft_proposal_id=p["id"],
                )
                for i, p in zip(incidents, props, strict=True)
            ],
        )

    await seed(5, "small")
    await seed(100, "large")
    query = """{ lessons(first: 100) { nodes {
        id sourceIncident { id title } draftProposal { id title } } } }"""
    counts = {}
    for tenant, n in (("small", 5), ("large", 100)):
        count_statements.reset()
        body = await gql(client, query, tenant=tenant)
        assert "errors" not in body, body
        nodes = body["data"]["lessons"]["nodes"]
        assert len(nodes) == n
        assert all(x["sourceIncident"] and x["draftProposal"] for x in nodes)
        counts[tenant] = count_statements.count
    # lessons page + source incidents + draft proposals (auth is a JWT: no SQL)
    assert counts == {"small": 3, "large": 3}


async def test_lesson_stats(client, engine):
    rows = [
        *[lesson_row(lesson_type="FAILURE", status="PENDING") for _ in range(3)],
        lesson_row(lesson_type="FAILURE", status="DISMISSED"),
        *[
            lesson_row(
                lesson_type="NEAR_THRESHOLD", severity=None, status="DEFERRED", deferred_until=NOW
            )
            for _ in range(2)
        ],
        lesson_row(lesson_type="CRITICAL_SUCCESS", severity="NONE", status="CONVERTED_TO_DRAFT"),
        lesson_row("t2", lesson_type="FAILURE", status="PENDING"),
    ]
    await insert_rows(engine, t.lessons_learned, rows)
    body = await gql(client, STATS, role="VIEWER")
    assert body["data"]["lessonStats"] == {
        "total": 7,
        "byType": [
            {"lessonType": "FAILURE", "count": 4},
            {"lessonType": "NEAR_THRESHOLD", "count": 2},
            {"lessonType": "CRITICAL_SUCCESS", "count": 1},
        ],
        "byStatus": [
            {"status": "PENDING", "count": 3},
            {"status": "CONVERTED_TO_DRAFT", "count": 1},
            {"status": "DEFERRED", "count": 2},
            {"status": "DISMISSED", "count": 1},
        ],
    }
    empty = await gql(client, STATS, tenant="nobody")
    assert empty["data"]["lessonStats"]["total"] == 0
    assert all(c["count"] == 0 for c in empty["data"]["lessonStats"]["byStatus"])


async def test_cost_estimate_uses_the_lessons_default_page_of_50(client):
    # about 1500 fields per lesson: 50 lessons (the default) are over 50 000, 20 are not
    inner = (
        "sourceIncident { events(first: 100) { nodes { id eventType description data createdAt"
        " incidentId } edges { cursor node { id eventType description data createdAt } } } }"
    )
    over = await gql(client, "{ lessons { nodes { id " + inner + " } } }")
    assert error_codes(over) == ["QUERY_TOO_COMPLEX"]
    ok = await gql(client, "{ lessons(first: 20) { nodes { id " + inner + " } } }")
    assert "errors" not in ok, ok
