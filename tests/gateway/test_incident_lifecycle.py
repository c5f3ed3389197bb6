"""closeIncident, addIncidentEvent and the stale auto-resolve job (DOMAIN.md §3.11, §7)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from drivers import tables as t
from resolvers.incidents import auto_resolve_stale_incidents
from tests.factories import incident_row, insert_rows
from tests.factories_incwrites import all_rows, audit_rows, listening, wait_for
from tests.helpers import error_codes, gql

CLOSE = """mutation($id: ID!, $reason: String!) { closeIncident(id: $id, reason: $reason) {
    id status resolvedAt endedAt resolvedBy resolutionMethod resolutionNotes durationSeconds
} }"""
ADD_EVENT = """mutation($id: ID!, $input: IncidentEventInput!) {
  addIncidentEvent(incidentId: $id, input: $input) { id incidentId eventType description data }
}"""


def _acknowledged(tenant: str = "t1", **over: Any) -> dict[str, Any]:
    inc = incident_row(tenant, status="ACKNOWLEDGED", acknowledged_by="bob", **over)
    inc.update(acknowledged_at=inc["started_at"])
    return inc


def _resolved(tenant: str = "t1", **over: Any) -> dict[str, Any]:
    inc = incident_row(tenant, status="RESOLVED", resolution_method="MANUAL", **over)
    inc.update(resolved_at=inc["started_at"], ended_at=inc["started_at"])
    return inc


async def _incident(engine, incident_id: str) -> Any:
    return next(r for r in await all_rows(engine, t.incidents) if r.id == incident_id)


async def test_close_resolves_with_manual_closure_from_open_and_acknowledged(client, engine):
    opened, acked = incident_row(), _acknowledged()
    for row in (opened, acked):
        await insert_rows(engine, t.incidents, [row])
    for row, status in ((opened, "OPEN"), (acked, "ACKNOWLEDGED")):
        body = await gql(
            client,
            CLOSE,
            {"id": row["id"], "reason": "duplicate of #12"},
            role="OPERATOR",
            sub="carol",
        )
        assert "errors" not in body, body
        got = body["data"]["closeIncident"]
        assert (got["status"], got["resolvedBy"], got["resolutionMethod"]) == (
            "RESOLVED",
            "carol",
            "MANUAL_CLOSURE",
        )
        assert got["resolutionNotes"] == "duplicate of #12"
        assert got["endedAt"] == got["resolvedAt"]
        resolved_at = datetime.fromisoformat(got["resolvedAt"])
        assert got["durationSeconds"] == int((resolved_at - row["started_at"]).total_seconds())
        stored = await _incident(engine, row["id"])
        assert (stored.status, stored.resolution_method) == ("RESOLVED", "MANUAL_CLOSURE")
        events = [
            e for e in await all_rows(engine, t.incident_events) if e.incident_id == row["id"]
        ]
        assert [(e.event_type, e.description) for e in events] == [
            ("MANUALLY_CLOSED", "Incident manually closed by carol: duplicate of #12")
        ]
        assert events[0].data == {
            "resolution_method": "MANUAL_CLOSURE",
            "reason": "duplicate of #12",
        }
        audit = (await audit_rows(engine))[-1]
        assert (audit.operation, audit.entity_id, audit.before["status"]) == (
            "closeIncident",
            row["id"],
            status,
        )
        assert audit.after["resolution_method"] == "MANUAL_CLOSURE"


async def test_close_refuses_resolved_blank_foreign_and_viewers(client, engine):
    resolved, theirs, mine = _resolved(), incident_row("t2"), incident_row()
    for row in (resolved, theirs, mine):
        await insert_rows(engine, t.incidents, [row])
    body = await gql(client, CLOSE, {"id": resolved["id"], "reason": "dup"}, role="OPERATOR")
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["reason"] == "ILLEGAL_TRANSITION"
    body = await gql(client, CLOSE, {"id": mine["id"], "reason": "   "}, role="OPERATOR")
    assert (error_codes(body), body["errors"][0]["extensions"]["field"]) == (
        ["BAD_USER_INPUT"],
        "reason",
    )
    body = await gql(client, CLOSE, {"id": theirs["id"], "reason": "dup"}, role="OPERATOR")
    assert error_codes(body) == ["NOT_FOUND"]
    body = await gql(client, CLOSE, {"id": mine["id"], "reason": "dup"}, role="VIEWER")
    assert error_codes(body) == ["FORBIDDEN"]
    assert (await _incident(engine, mine["id"])).status == "OPEN"
    assert (await _incident(engine, theirs["id"])).status == "OPEN"
    assert await all_rows(engine, t.incident_events) == []
    assert await audit_rows(engine) == []


async def test_add_event_appends_a_human_entry_and_bumps_updated_at(client, engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    for event_type in (
        "NOTE",
        "CALL_FAILED",
        "THRESHOLD_CROSSED",
        "FREEZE_TRIGGERED",
        "EVIDENCE_CAPTURED",
    ):
        body = await gql(
            client,
            ADD_EVENT,
            {
                "id": inc["id"],
                "input": {
                    "eventType": event_type,
                    "description": "seen it",
                    "data": {"ticket": "OPS-1"},
                },
            },
            role="OPERATOR",
            sub="dave",
        )
        assert "errors" not in body, body
        got = body["data"]["addIncidentEvent"]
        assert (got["incidentId"], got["eventType"], got["description"], got["data"]) == (
            inc["id"],
            event_type,
            "seen it",
            {"ticket": "OPS-1"},
        )
    stored = await _incident(engine, inc["id"])
    assert stored.updated_at > inc["updated_at"]
    assert stored.status == "OPEN"
    events = await all_rows(engine, t.incident_events)
    assert len(events) == 5
    audits = await audit_rows(engine)
    assert [(a.operation, a.entity_type, a.actor) for a in audits] == [
        ("addIncidentEvent", "incident_events", "dave")
    ] * 5
    assert {a.entity_id for a in audits} == {e.id for e in events}


async def test_add_event_refuses_lifecycle_types_bad_input_and_foreign_ids(client, engine):
    inc, theirs = incident_row(), incident_row("t2")
    await insert_rows(engine, t.incidents, [inc, theirs])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"eventType": "RESOLVED", "description": "x"}, "eventType"),
        ({"eventType": "INCIDENT_CREATED", "description": "x"}, "eventType"),
        ({"eventType": "SEVERITY_ESCALATED", "description": "x"}, "eventType"),
        ({"eventType": "NOTE", "description": ""}, "description"),
        ({"eventType": "NOTE", "description": "d" * 2001}, "description"),
        ({"eventType": "NOTE", "description": "x", "data": "text"}, "data"),
    ]
    for data, field in cases:
        body = await gql(client, ADD_EVENT, {"id": inc["id"], "input": data}, role="OPERATOR")
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["extensions"]["field"] == field
    note = {"eventType": "NOTE", "description": "x"}
    body = await gql(client, ADD_EVENT, {"id": theirs["id"], "input": note}, role="OPERATOR")
    assert error_codes(body) == ["NOT_FOUND"]
    body = await gql(client, ADD_EVENT, {"id": inc["id"], "input": note}, role="VIEWER")
    assert error_codes(body) == ["FORBIDDEN"]
    assert await all_rows(engine, t.incident_events) == []
    assert await audit_rows(engine) == []


async def test_auto_resolve_resolves_only_stale_open_incidents(engine):
    now = datetime.now(UTC)
    stale = now - timedelta(seconds=901)
    stale_a = incident_row(updated_at=stale)
    stale_b = incident_row("t2", updated_at=stale)
    fresh = incident_row(updated_at=now - timedelta(seconds=899))
    acked = _acknowledged(updated_at=now - timedelta(days=2))
    done = _resolved(updated_at=now - timedelta(days=2))
    for row in (stale_a, stale_b, fresh, acked, done):
        await insert_rows(engine, t.incidents, [row])
    # when
    assert await auto_resolve_stale_incidents(engine, now=now) == 2
    assert await auto_resolve_stale_incidents(engine, now=now) == 0
    # then
    rows = {r.id: r for r in await all_rows(engine, t.incidents)}
    for inc in (stale_a, stale_b):
        row = rows[inc["id"]]
        assert (row.status, row.resolved_by, row.resolution_method) == (
            "RESOLVED",
            "system_auto_resolve",
            "AUTO",
        )
        assert row.resolved_at == row.ended_at == now
        assert row.duration_seconds == int((now - inc["started_at"]).total_seconds())
    assert rows[fresh["id"]].status == "OPEN"
    assert rows[acked["id"]].status == "ACKNOWLEDGED"
    events = await all_rows(engine, t.incident_events)
    assert sorted((e.tenant_id, e.event_type, e.description) for e in events) == [
        (
            tenant,
            "AUTO_RESOLVED",
            "Incident auto-resolved after 900s of inactivity",
        )
        for tenant in ("t1", "t2")
    ]
    assert [e.data for e in events] == [
        {"resolved_by": "system", "reason": "inactivity_timeout"}
    ] * 2
    audits = await audit_rows(engine)
    assert sorted((a.tenant_id, a.entity_id) for a in audits) == sorted(
        [("t1", stale_a["id"]), ("t2", stale_b["id"])]
    )
    assert {(a.actor, a.actor_role, a.operation, a.request_id) for a in audits} == {
        ("auto_resolve_stale_incidents", "SYSTEM", "auto_resolve_stale_incidents", None)
    }


async def test_concurrent_auto_resolve_jobs_share_the_work(engine):
    now = datetime.now(UTC)
    rows = [incident_row(updated_at=now - timedelta(hours=1)) for _ in range(12)]
    await insert_rows(engine, t.incidents, rows)
    counts = await asyncio.gather(*(auto_resolve_stale_incidents(engine) for _ in range(3)))
    assert sum(counts) == 12
    events = await all_rows(engine, t.incident_events)
    assert sorted(e.incident_id for e in events) == sorted(r["id"] for r in rows)
    assert len(await audit_rows(engine)) == 12


async def test_lifecycle_writes_publish_their_notifications(client, engine, database_url):
    closing, noting = incident_row(), incident_row()
    stale = incident_row(updated_at=datetime.now(UTC) - timedelta(hours=1))
    for row in (closing, noting, stale):
        await insert_rows(engine, t.incidents, [row])
    note = {"eventType": "NOTE", "description": "x"}
    async with listening(database_url) as received:
        await gql(client, CLOSE, {"id": closing["id"], "reason": "dup"}, role="OPERATOR")
        await gql(client, ADD_EVENT, {"id": noting["id"], "input": note}, role="OPERATOR")
        # the others are no longer stale: they were just updated
        assert await auto_resolve_stale_incidents(engine) == 1
        await wait_for(received, 6)
    events = {e.incident_id: e.id for e in await all_rows(engine, t.incident_events)}
    assert [(n["kind"], n["id"]) for n in received] == [
        ("INCIDENT_RESOLVED", closing["id"]),
        ("INCIDENT_EVENT_ADDED", events[closing["id"]]),
        ("INCIDENT_UPDATED", noting["id"]),
        ("INCIDENT_EVENT_ADDED", events[noting["id"]]),
        ("INCIDENT_RESOLVED", stale["id"]),
        ("INCIDENT_EVENT_ADDED", events[stale["id"]]),
    ]
