"""Incident aggregation over HTTP (DOMAIN.md §3.10): windows, concurrency, escalation, cap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import update

from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.factories_incwrites import (
    all_rows,
    audit_rows,
    away_from_window_edge,
    listening,
    refusing,
    wait_for,
)
from tests.helpers import error_codes, gql

INGEST = """mutation($input: IncidentSignalInput!) { ingestIncidentSignal(input: $input) {
    created escalated overflow
    incident { id title severity status triggerType triggerValue sourceType causeType
               callsAffected relatedCallIds costDeltaCents autoAction escalated escalatedAt
               escalatedTo startedAt updatedAt }
} }"""


async def ingest(client, role: str = "INGEST", tenant: str = "t1", **fields: Any) -> dict[str, Any]:
    return await gql(client, INGEST, {"input": fields}, role=role, tenant=tenant, sub="collector")


def now_row(tenant: str = "t1", **over: Any) -> dict[str, Any]:
    """An incident started just now (inside the current window)."""
    now = datetime.now(UTC)
    return incident_row(tenant, started_at=now, created_at=now, updated_at=now, **over)


async def test_first_signal_creates_an_incident_with_its_event_audit_and_notifications(
    client, engine, database_url
):
    await away_from_window_edge()
    # when
    async with listening(database_url) as received:
        body = await ingest(
            client,
            triggerType="BUDGET_BREACH",
            triggerValue="120%",
            callId="call-1",
            costDeltaCents="12.5",
            autoAction="FREEZE",
            metadata={"limit": "monthly"},
        )
        await wait_for(received, 2)
    # then
    assert "errors" not in body, body
    res = body["data"]["ingestIncidentSignal"]
    assert (res["created"], res["escalated"], res["overflow"]) == (True, False, False)
    inc = res["incident"]
    assert {k: inc[k] for k in inc if k not in ("id", "startedAt", "updatedAt")} == {
        "title": "Budget limit exceeded: 120%",
        "severity": "CRITICAL",
        "status": "OPEN",
        "triggerType": "BUDGET_BREACH",
        "triggerValue": "120%",
        "sourceType": "KILLSWITCH",
        "causeType": "SYSTEM",
        "callsAffected": 1,
        "relatedCallIds": ["call-1"],
        "costDeltaCents": "12.5000",
        "autoAction": "FREEZE",
        "escalated": False,
        "escalatedAt": None,
        "escalatedTo": None,
    }
    [event] = await all_rows(engine, t.incident_events)
    assert (event.incident_id, event.event_type, event.description, event.data) == (
        inc["id"],
        "INCIDENT_CREATED",
        "Incident created: Budget limit exceeded: 120%",
        {"trigger_value": "120%", "limit": "monthly"},
    )
    [audit] = await audit_rows(engine)
    assert (audit.operation, audit.entity_type, audit.entity_id, audit.actor_role) == (
        "ingestIncidentSignal",
        "incidents",
        inc["id"],
        "INGEST",
    )
    assert audit.before is None
    assert audit.after["calls_affected"] == 1
    assert received == [
        {"tenant_id": "t1", "kind": "INCIDENT_CREATED", "id": inc["id"]},
        {"tenant_id": "t1", "kind": "INCIDENT_EVENT_ADDED", "id": event.id},
    ]


async def test_signals_of_one_window_merge_into_one_incident(client, engine):
    await away_from_window_edge()
    first = await ingest(client, triggerType="RATE_LIMIT", triggerValue="openai", callId="a")
    second = await ingest(
        client, triggerType="RATE_LIMIT", triggerValue="anthropic", callId="b", costDeltaCents="3"
    )
    again = await ingest(client, triggerType="RATE_LIMIT", callId="b", costDeltaCents="1.25")
    no_call = await ingest(client, triggerType="RATE_LIMIT")
    bodies = [first, second, again, no_call]
    assert all("errors" not in b for b in bodies), bodies
    results = [b["data"]["ingestIncidentSignal"] for b in bodies]
    assert [r["created"] for r in results] == [True, False, False, False]
    assert len({r["incident"]["id"] for r in results}) == 1
    last = results[-1]["incident"]
    # the first signal's title stays; ids are distinct; cost adds up
    assert last["title"] == "Rate limit triggered: openai"
    assert (last["relatedCallIds"], last["callsAffected"]) == (["a", "b"], 2)
    assert last["costDeltaCents"] == "4.2500"
    assert last["updatedAt"] > results[0]["incident"]["updatedAt"]
    events = await all_rows(engine, t.incident_events)
    assert [e.event_type for e in events] == ["INCIDENT_CREATED"]
    audits = await audit_rows(engine)
    assert [a.operation for a in audits] == ["ingestIncidentSignal"] * 4
    assert audits[1].before["calls_affected"] == 1
    assert audits[1].after["calls_affected"] == 2
    # another trigger type opens its own incident
    other = await ingest(client, triggerType="FREEZE", triggerValue="all")
    assert other["data"]["ingestIncidentSignal"]["created"] is True
    assert other["data"]["ingestIncidentSignal"]["incident"]["severity"] == "CRITICAL"
    assert other["data"]["ingestIncidentSignal"]["incident"]["title"] == "Traffic stopped: all"


async def test_concurrent_signals_for_one_key_create_exactly_one_incident(client, engine):
    await away_from_window_edge()
    # when ten collectors report at once
    bodies = await asyncio.gather(
        *(
            ingest(client, triggerType="FAILURE_SPIKE", triggerValue="35%", callId=f"c{i}")
            for i in range(10)
        )
    )
    # then
    assert all("errors" not in b for b in bodies), bodies
    results = [b["data"]["ingestIncidentSignal"] for b in bodies]
    assert sum(r["created"] for r in results) == 1
    [incident] = await all_rows(engine, t.incidents)
    assert sorted(incident.related_call_ids) == sorted(f"c{i}" for i in range(10))
    assert incident.calls_affected == 10
    # HIGH initial severity: 10 calls (MEDIUM) never lowers it
    assert (incident.severity, incident.escalated) == ("HIGH", False)
    events = await all_rows(engine, t.incident_events)
    assert [e.event_type for e in events] == ["INCIDENT_CREATED"]
    assert len(await audit_rows(engine)) == 10


async def _set_calls(engine, incident_id: str, n: int, severity: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(t.incidents)
            .where(t.incidents.c.id == incident_id)
            .values(
                related_call_ids=[f"old-{i}" for i in range(n)],
                calls_affected=n,
                severity=severity,
            )
        )


async def test_escalation_happens_exactly_at_10_50_and_200_calls(client, engine, database_url):
    await away_from_window_edge()
    # given an open LOW incident of this window with 8 calls
    inc = now_row(trigger_type="RATE_LIMIT", severity="LOW", trigger_value="x")
    await insert_rows(engine, t.incidents, [inc])
    await _set_calls(engine, inc["id"], 8, "LOW")
    steps = [  # (calls before the signal, severity before, expected escalation)
        (8, "LOW", None),  # -> 9 calls
        (9, "LOW", "MEDIUM"),  # -> 10
        (48, "MEDIUM", None),  # -> 49
        (49, "MEDIUM", "HIGH"),  # -> 50
        (198, "HIGH", None),  # -> 199
        (199, "HIGH", "CRITICAL"),  # -> 200
        (500, "CRITICAL", None),  # never above CRITICAL
    ]
    async with listening(database_url) as received:
        for calls, severity, expected in steps:
            await _set_calls(engine, inc["id"], calls, severity)
            body = await ingest(client, triggerType="RATE_LIMIT", callId=f"new-{calls}")
            res = body["data"]["ingestIncidentSignal"]
            assert res["incident"]["id"] == inc["id"]
            assert res["incident"]["callsAffected"] == calls + 1
            assert res["escalated"] is (expected is not None), (calls, res)
            assert res["incident"]["severity"] == (expected or severity)
            if expected:
                assert res["incident"]["escalated"] is True
                assert res["incident"]["escalatedTo"] == expected
                assert res["incident"]["escalatedAt"] == res["incident"]["updatedAt"]
        await wait_for(received, 10)
    events = await all_rows(engine, t.incident_events)
    assert [(e.event_type, e.description, e.data) for e in events] == [
        (
            "SEVERITY_ESCALATED",
            "Severity escalated from LOW to MEDIUM",
            {"old_severity": "LOW", "new_severity": "MEDIUM", "calls_affected": 10},
        ),
        (
            "SEVERITY_ESCALATED",
            "Severity escalated from MEDIUM to HIGH",
            {"old_severity": "MEDIUM", "new_severity": "HIGH", "calls_affected": 50},
        ),
        (
            "SEVERITY_ESCALATED",
            "Severity escalated from HIGH to CRITICAL",
            {"old_severity": "HIGH", "new_severity": "CRITICAL", "calls_affected": 200},
        ),
    ]
    kinds = [n["kind"] for n in received]
    assert kinds.count("INCIDENT_ESCALATED") == 3
    assert kinds.count("INCIDENT_UPDATED") == 4


async def test_related_call_ids_stop_at_1000(client, engine):
    await away_from_window_edge()
    inc = now_row(trigger_type="RATE_LIMIT", severity="CRITICAL")
    await insert_rows(engine, t.incidents, [inc])
    await _set_calls(engine, inc["id"], 1000, "CRITICAL")
    body = await ingest(client, triggerType="RATE_LIMIT", callId="one-too-many")
    got = body["data"]["ingestIncidentSignal"]["incident"]
    assert got["callsAffected"] == 1000
    assert "one-too-many" not in got["relatedCallIds"]


async def test_resolved_and_foreign_incidents_are_never_merged_into(client, engine):
    await away_from_window_edge()
    now = datetime.now(UTC)
    resolved = now_row(
        trigger_type="RATE_LIMIT",
        status="RESOLVED",
        resolution_method="MANUAL",
        resolved_at=now,
        ended_at=now,
    )
    foreign = now_row("t2", trigger_type="RATE_LIMIT")
    for row in (resolved, foreign):  # different column sets: one insert each
        await insert_rows(engine, t.incidents, [row])
    body = await ingest(client, triggerType="RATE_LIMIT", callId="z")
    res = body["data"]["ingestIncidentSignal"]
    assert res["created"] is True
    assert res["incident"]["id"] not in (resolved["id"], foreign["id"])
    # an incident of an earlier window is not merged into either
    old = incident_row(trigger_type="FREEZE")  # started an hour ago
    await insert_rows(engine, t.incidents, [old])
    body = await ingest(client, triggerType="FREEZE", callId="z")
    assert body["data"]["ingestIncidentSignal"]["created"] is True


async def test_the_21st_incident_in_an_hour_goes_to_one_overflow_incident(client, engine):
    await away_from_window_edge()
    # given 20 incidents created in the last hour, and 5 older ones that do not count
    now = datetime.now(UTC)
    recent = [
        incident_row(created_at=now - timedelta(minutes=50), trigger_type="COST_SPIKE")
        for _ in range(20)
    ]
    older = [incident_row(created_at=now - timedelta(minutes=61)) for _ in range(5)]
    await insert_rows(engine, t.incidents, recent + older)
    # when a new key arrives
    first = await ingest(
        client, triggerType="CONTENT_POLICY", triggerValue="pii", callId="c1", costDeltaCents="9"
    )
    second = await ingest(client, triggerType="LLM_FAILURE", callId="c2")
    # then both land in one overflow incident and the signals themselves are dropped
    a, b = (x["data"]["ingestIncidentSignal"] for x in (first, second))
    assert (a["created"], a["overflow"], b["created"], b["overflow"]) == (False, True, False, True)
    assert a["incident"]["id"] == b["incident"]["id"]
    got = a["incident"]
    assert {k: got[k] for k in ("title", "severity", "status", "triggerType", "triggerValue")} == {
        "title": "Incident Rate Limit Reached - Events Aggregated",
        "severity": "HIGH",
        "status": "OPEN",
        "triggerType": "RATE_LIMIT_OVERFLOW",
        "triggerValue": ">20 incidents/hour",
    }
    assert (got["callsAffected"], got["autoAction"], got["costDeltaCents"]) == (
        1,
        "AGGREGATE",
        "0.0000",
    )
    assert b["incident"]["callsAffected"] == 2
    rows = await all_rows(engine, t.incidents)
    assert len(rows) == 26
    assert not [r for r in rows if r.trigger_type in ("CONTENT_POLICY", "LLM_FAILURE")]
    events = await all_rows(engine, t.incident_events)
    assert [(e.incident_id, e.event_type) for e in events] == [(got["id"], "INCIDENT_CREATED")]
    # a key that already has an open incident in the window still merges normally
    await insert_rows(engine, t.incidents, [now_row(trigger_type="FREEZE")])
    merged = await ingest(client, triggerType="FREEZE", callId="c3")
    assert merged["data"]["ingestIncidentSignal"]["overflow"] is False


async def test_bad_signals_are_refused_and_write_nothing(client, engine):
    cases: list[tuple[dict[str, Any], str]] = [
        ({"triggerType": "RATE_LIMIT_OVERFLOW"}, "triggerType"),
        ({"triggerType": "RATE_LIMIT", "costDeltaCents": "-1"}, "costDeltaCents"),
        ({"triggerType": "RATE_LIMIT", "costDeltaCents": "1000000"}, "costDeltaCents"),
        ({"triggerType": "RATE_LIMIT", "metadata": [1, 2]}, "metadata"),
        ({"triggerType": "RATE_LIMIT", "triggerValue": "v" * 1001}, "triggerValue"),
        ({"triggerType": "RATE_LIMIT", "callId": ""}, "callId"),
    ]
    for fields, field in cases:
        body = await ingest(client, **fields)
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["extensions"]["field"] == field
    for role in ("VIEWER", "OPERATOR"):
        body = await ingest(client, role=role, triggerType="RATE_LIMIT")
        assert error_codes(body) == ["FORBIDDEN"]
    assert await all_rows(engine, t.incidents) == []
    assert await audit_rows(engine) == []
    # ADMIN may ingest too
    body = await ingest(client, role="ADMIN", triggerType="RATE_LIMIT")
    assert body["data"]["ingestIncidentSignal"]["created"] is True


async def test_cost_is_numeric_not_float(client, engine):
    await away_from_window_edge()
    for _ in range(3):
        await ingest(client, triggerType="COST_DRIFT", costDeltaCents="0.1")
    [row] = await all_rows(engine, t.incidents)
    assert row.cost_delta_cents == Decimal("0.3000")


async def test_a_failed_signal_write_rolls_back_completely(client, engine):
    await away_from_window_edge()
    async with refusing(engine, "incident_events"):
        body = await ingest(client, triggerType="FREEZE", callId="x")
    assert error_codes(body) == ["INTERNAL"]
    assert await all_rows(engine, t.incidents) == []
    assert await audit_rows(engine) == []
    # an escalation whose event cannot be written leaves the incident as it was
    inc = now_row(trigger_type="RATE_LIMIT", severity="LOW")
    await insert_rows(engine, t.incidents, [inc])
    await _set_calls(engine, inc["id"], 9, "LOW")
    async with refusing(engine, "incident_events"):
        body = await ingest(client, triggerType="RATE_LIMIT", callId="tenth")
    assert error_codes(body) == ["INTERNAL"]
    [row] = await all_rows(engine, t.incidents)
    assert (row.calls_affected, row.severity, row.escalated) == (9, "LOW", False)
