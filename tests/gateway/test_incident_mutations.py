"""Incident lifecycle mutations over HTTP (DOMAIN.md §3.11): state, event, audit row, rollback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import select, text

from drivers import tables as t
from drivers.audit import NOTIFY_CHANNEL
from tests.factories import incident_row, insert_rows
from tests.factories_incwrites import published
from tests.helpers import error_codes, gql, token

ACKNOWLEDGE = """mutation($id: ID!, $note: String) { acknowledgeIncident(id: $id, note: $note) {
    id status acknowledgedAt acknowledgedBy updatedAt
} }"""
RESOLVE = """mutation($id: ID!, $input: ResolveIncidentInput!) { resolveIncident(id: $id, input: $input) {
    id status resolvedAt endedAt resolvedBy durationSeconds resolutionMethod resolutionNotes
    resolutionType resolutionSummary postmortemArtifactId topic
} }"""


async def _post(
    client, query: str, variables: dict[str, Any], *, request_id: str, sub: str = "carol"
):
    headers = {
        "authorization": f"Bearer {token(role='OPERATOR', sub=sub)}",
        "x-request-id": request_id,
    }
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _incident(engine, incident_id: str):
    async with engine.connect() as conn:
        query = select(t.incidents).where(t.incidents.c.id == incident_id)
        return (await conn.execute(query)).one()


async def _written(engine) -> tuple[list[Any], list[Any]]:
    """Every timeline event and audit row (the tables start empty in every test)."""
    async with engine.connect() as conn:
        events = (await conn.execute(select(t.incident_events))).all()
        audits = (await conn.execute(select(t.audit_log))).all()
    return events, audits


@asynccontextmanager
async def _failing_audit_inserts(engine) -> AsyncIterator[None]:
    """Make every INSERT into audit_log raise, for the duration of the block."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit_log is refusing writes'; END $$"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()"
            )
        )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER IF EXISTS test_refuse_audit ON audit_log"))
            await conn.execute(text("DROP FUNCTION IF EXISTS test_refuse_audit()"))


async def test_acknowledge_moves_open_to_acknowledged_with_one_event_and_one_audit_row(
    client, engine
):
    # given
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    # when
    body = await _post(
        client, ACKNOWLEDGE, {"id": inc["id"], "note": "on it"}, request_id="req-ack-1"
    )
    # then the response
    assert "errors" not in body, body
    got = body["data"]["acknowledgeIncident"]
    assert (got["id"], got["status"], got["acknowledgedBy"]) == (inc["id"], "ACKNOWLEDGED", "carol")
    acknowledged_at = datetime.fromisoformat(got["acknowledgedAt"])
    assert got["updatedAt"] == got["acknowledgedAt"]
    # and the stored row
    row = await _incident(engine, inc["id"])
    assert (row.status, row.acknowledged_at, row.acknowledged_by) == (
        "ACKNOWLEDGED",
        acknowledged_at,
        "carol",
    )
    # and exactly one event and one audit row
    events, audits = await _written(engine)
    assert [(e.incident_id, e.event_type, e.description, e.data) for e in events] == [
        (inc["id"], "ACKNOWLEDGED", "Incident acknowledged by carol", {"note": "on it"})
    ]
    assert events[0].created_at == acknowledged_at
    [audit] = audits
    assert (audit.tenant_id, audit.operation, audit.entity_type, audit.entity_id) == (
        "t1",
        "acknowledgeIncident",
        "incidents",
        inc["id"],
    )
    assert (audit.actor, audit.actor_role, audit.request_id) == ("carol", "OPERATOR", "req-ack-1")
    assert audit.before["status"] == "OPEN"
    assert audit.before["acknowledged_by"] is None
    assert audit.after["status"] == "ACKNOWLEDGED"
    assert audit.after["acknowledged_by"] == "carol"


async def test_acknowledge_without_note_records_a_null_note(client, engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    body = await gql(client, ACKNOWLEDGE, {"id": inc["id"]}, role="OPERATOR", sub="dave")
    assert body["data"]["acknowledgeIncident"]["acknowledgedBy"] == "dave"
    events, _ = await _written(engine)
    assert [(e.description, e.data) for e in events] == [
        ("Incident acknowledged by dave", {"note": None})
    ]


async def _resolve_and_check(client, engine, status: str, notes: str | None, expected: str):
    # given
    inc = _acknowledged_row() if status == "ACKNOWLEDGED" else incident_row()
    await insert_rows(engine, t.incidents, [inc])
    data = {"method": "MANUAL", "notes": notes, "resolutionType": "config-fix", "summary": "ok"}
    # when
    body = await _post(client, RESOLVE, {"id": inc["id"], "input": data}, request_id="req-res")
    # then
    assert "errors" not in body, body
    got = body["data"]["resolveIncident"]
    resolved_at = datetime.fromisoformat(got["resolvedAt"])
    assert got["endedAt"] == got["resolvedAt"]
    assert got["durationSeconds"] == int((resolved_at - inc["started_at"]).total_seconds())
    assert got["durationSeconds"] >= 3600  # the factory started it an hour ago
    assert {k: got[k] for k in got if k not in ("resolvedAt", "endedAt", "durationSeconds")} == {
        "id": inc["id"],
        "status": "RESOLVED",
        "resolvedBy": "carol",
        "resolutionMethod": "MANUAL",
        "resolutionNotes": notes,
        "resolutionType": "config-fix",
        "resolutionSummary": "ok",
        "postmortemArtifactId": None,
        "topic": "RESOLVED",
    }
    row = await _incident(engine, inc["id"])
    assert (row.status, row.resolved_at, row.ended_at, row.duration_seconds) == (
        "RESOLVED",
        resolved_at,
        resolved_at,
        got["durationSeconds"],
    )
    events, audits = await _written(engine)
    assert [(e.event_type, e.description) for e in events] == [("RESOLVED", expected)]
    assert events[0].data == {"resolution_method": "MANUAL", "notes": notes}
    assert [(a.operation, a.before["status"], a.after["status"]) for a in audits] == [
        ("resolveIncident", status, "RESOLVED")
    ]


async def test_resolve_from_open(client, engine):
    await _resolve_and_check(
        client,
        engine,
        "OPEN",
        "rolled back the deploy",
        "Incident resolved by carol (MANUAL): rolled back the deploy",
    )


async def test_resolve_from_acknowledged_without_notes(client, engine):
    await _resolve_and_check(
        client, engine, "ACKNOWLEDGED", None, "Incident resolved by carol (MANUAL)"
    )


async def test_resolve_with_another_method(client, engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    body = await gql(
        client,
        RESOLVE,
        {"id": inc["id"], "input": {"method": "ROLLBACK", "notes": "v41"}},
        role="OPERATOR",
        sub="erin",
    )
    assert body["data"]["resolveIncident"]["resolutionMethod"] == "ROLLBACK"
    events, _ = await _written(engine)
    assert [e.description for e in events] == ["Incident resolved by erin (ROLLBACK): v41"]


def _resolved_row() -> dict[str, Any]:
    inc = incident_row(status="RESOLVED", resolution_method="MANUAL")
    inc.update(resolved_at=inc["started_at"], ended_at=inc["started_at"])
    return inc


def _acknowledged_row() -> dict[str, Any]:
    inc = incident_row(status="ACKNOWLEDGED", acknowledged_by="bob")
    inc.update(acknowledged_at=inc["started_at"])
    return inc


async def test_illegal_transitions_are_conflicts_and_write_nothing(client, engine):
    # given
    acked, resolved = _acknowledged_row(), _resolved_row()
    for row in (acked, resolved):  # different column sets: one insert each
        await insert_rows(engine, t.incidents, [row])
    before = {i["id"]: await _incident(engine, i["id"]) for i in (acked, resolved)}
    cases = [
        (ACKNOWLEDGE, {"id": acked["id"]}, "ACKNOWLEDGED"),
        (ACKNOWLEDGE, {"id": resolved["id"]}, "RESOLVED"),
        (RESOLVE, {"id": resolved["id"], "input": {}}, "RESOLVED"),
    ]
    for query, variables, status in cases:
        # when
        body = await gql(client, query, variables, role="OPERATOR")
        # then
        assert error_codes(body) == ["CONFLICT"], body
        ext = body["errors"][0]["extensions"]
        assert (ext["reason"], ext["status"]) == ("ILLEGAL_TRANSITION", status)
        assert body["data"] is None
    assert {i: await _incident(engine, i) for i in before} == before
    assert await _written(engine) == ([], [])


async def test_bad_resolve_input_names_the_field_and_writes_nothing(client, engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    cases = [
        ({"method": "MANUAL_CLOSURE"}, "method"),
        ({"resolutionType": "x" * 51}, "resolutionType"),
    ]
    for data, field in cases:
        body = await gql(client, RESOLVE, {"id": inc["id"], "input": data}, role="OPERATOR")
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["extensions"]["field"] == field
    # a 50-character resolution type is still fine
    ok = await gql(
        client, RESOLVE, {"id": inc["id"], "input": {"resolutionType": "x" * 50}}, role="OPERATOR"
    )
    assert ok["data"]["resolveIncident"]["resolutionType"] == "x" * 50
    events, audits = await _written(engine)
    assert (len(events), len(audits)) == (1, 1)


async def test_foreign_and_missing_incidents_are_the_same_not_found(client, engine):
    # given
    theirs = incident_row("t2")
    await insert_rows(engine, t.incidents, [theirs])
    missing = "00000000-0000-4000-8000-000000000000"
    cases: list[tuple[str, dict[str, Any]]] = [(ACKNOWLEDGE, {}), (RESOLVE, {"input": {}})]
    for query, extra in cases:
        # when
        foreign = await gql(client, query, {"id": theirs["id"], **extra}, role="OPERATOR")
        absent = await gql(client, query, {"id": missing, **extra}, role="OPERATOR")
        # then
        assert error_codes(foreign) == ["NOT_FOUND"]
        assert json.dumps(foreign).replace(theirs["id"], "ID") == json.dumps(absent).replace(
            missing, "ID"
        )
    row = await _incident(engine, theirs["id"])
    assert row.status == "OPEN"
    assert await _written(engine) == ([], [])


async def test_failed_audit_write_rolls_back_the_whole_mutation(client, engine):
    # given
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    # when
    async with _failing_audit_inserts(engine):
        body = await _post(client, ACKNOWLEDGE, {"id": inc["id"]}, request_id="req-boom-7")
    # then a masked INTERNAL error that carries only the request id
    assert error_codes(body) == ["INTERNAL"]
    [error] = body["errors"]
    assert error["message"] == "Unexpected error. Request id: req-boom-7"
    assert error["extensions"] == {"code": "INTERNAL", "requestId": "req-boom-7"}
    for leak in ("audit_log", "INSERT", "refusing", "sqlalchemy", "asyncpg"):
        assert leak not in json.dumps(body)
    # and nothing half-written
    row = await _incident(engine, inc["id"])
    assert (row.status, row.acknowledged_at, row.acknowledged_by) == ("OPEN", None, None)
    assert await _written(engine) == ([], [])
    # and the mutation works again once the audit trail accepts writes
    body = await gql(client, ACKNOWLEDGE, {"id": inc["id"]}, role="OPERATOR")
    assert body["data"]["acknowledgeIncident"]["status"] == "ACKNOWLEDGED"


async def test_notifications_are_delivered_on_commit_only(client, engine, database_url):
    # given a listener and two open incidents
    doomed, kept = incident_row(), incident_row()
    await insert_rows(engine, t.incidents, [doomed, kept])
    received: list[dict[str, Any]] = []
    listener = await asyncpg.connect(database_url)
    await listener.add_listener(NOTIFY_CHANNEL, published(received))
    try:
        # when one acknowledge rolls back and the next one commits
        async with _failing_audit_inserts(engine):
            failed = await gql(client, ACKNOWLEDGE, {"id": doomed["id"]}, role="OPERATOR")
        assert error_codes(failed) == ["INTERNAL"]
        done = await gql(client, ACKNOWLEDGE, {"id": kept["id"]}, role="OPERATOR")
        assert done["data"]["acknowledgeIncident"]["status"] == "ACKNOWLEDGED"
        for _ in range(200):  # NOTIFYs arrive in commit order; wait for the committed pair
            if len(received) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await listener.close()
    # then only the committed change was published
    events, _ = await _written(engine)
    assert received == [
        {"tenant_id": "t1", "kind": "INCIDENT_ACKNOWLEDGED", "id": kept["id"]},
        {"tenant_id": "t1", "kind": "INCIDENT_EVENT_ADDED", "id": events[0].id},
    ]


async def test_concurrent_acknowledges_let_exactly_one_win(client, engine):
    # given
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    # when two operators acknowledge at once
    bodies = await asyncio.gather(
        *(gql(client, ACKNOWLEDGE, {"id": inc["id"]}, role="OPERATOR", sub=s) for s in ("x", "y"))
    )
    # then one succeeds, the other sees the row it locked out and gets CONFLICT
    assert sorted(error_codes(b) for b in bodies) == [[], ["CONFLICT"]]
    [winner] = [b["data"]["acknowledgeIncident"]["acknowledgedBy"] for b in bodies if b["data"]]
    events, audits = await _written(engine)
    assert [e.description for e in events] == [f"Incident acknowledged by {winner}"]
    assert [a.actor for a in audits] == [winner]


async def test_overlong_note_is_bad_user_input(client, engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    body = await gql(client, ACKNOWLEDGE, {"id": inc["id"], "note": "n" * 2001}, role="OPERATOR")
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "note"
    assert await _written(engine) == ([], [])
