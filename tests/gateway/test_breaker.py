"""Circuit breaker over HTTP (DOMAIN.md §3.7): state machine, incidents, outbox, audit, notify."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from drivers.audit import NOTIFY_CHANNEL
from resolvers.auth import Principal, Role
from resolvers.breaker_state import recover_expired_breakers
from resolvers.breakers import get_circuit_breaker_by_id
from resolvers.context import Context, Database
from tests.factories_breaker import (
    BREAKER,
    DISABLE,
    DRIFT,
    ENABLE,
    SCHEMA_ERRORS,
    audits,
    breaker_incidents,
    breakers,
    expire_breaker,
    outbox,
)
from tests.factories_incwrites import published
from tests.helpers import error_codes, gql


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _drift(client, score: float, **kw: Any) -> dict[str, Any]:
    body = await gql(client, DRIFT, {"score": score, **kw.pop("vars", {})}, role="INGEST", **kw)
    assert "errors" not in body, body
    change: dict[str, Any] = body["data"]["reportBreakerDrift"]
    return change


async def test_a_breaker_never_written_reads_closed_and_inserts_nothing(client, engine):
    body = await gql(client, BREAKER, role="VIEWER")
    assert body["data"]["circuitBreaker"] == {
        "id": None,
        "name": "costsim_v2",
        "state": "CLOSED",
        "isOpen": False,
        "openedAt": None,
        "reason": None,
        "incidentId": None,
        "disabledBy": None,
        "disabledUntil": None,
        "consecutiveFailures": 0,
        "lastFailureAt": None,
        "currentIncident": None,
    }
    listed = await gql(client, "{ circuitBreakers { name state } }", role="VIEWER")
    assert listed["data"]["circuitBreakers"] == [{"name": "costsim_v2", "state": "CLOSED"}]
    assert await breakers(engine) == []


async def test_three_drift_failures_trip_p1_once(client, engine):
    # given two failures: counted, not tripped
    for expected in (1, 2):
        change = await _drift(client, 0.35, vars={"samples": 40})
        assert change["changed"] is False
        assert change["incident"] is None
        assert change["breaker"]["consecutiveFailures"] == expected
        assert change["breaker"]["state"] == "CLOSED"
    # when the third one arrives
    before = datetime.now(UTC)
    change = await _drift(client, 0.31234, vars={"samples": 50, "details": {"model": "v2"}})
    # then the breaker trips with P1 and the exact reason
    assert change["changed"] is True
    breaker, incident = change["breaker"], change["incident"]
    reason = "Drift exceeded threshold: 0.3123 > 0.2"
    assert breaker["state"] == "OPEN" and breaker["isOpen"] is True
    assert breaker["reason"] == reason
    assert breaker["disabledBy"] == "circuit_breaker"
    assert breaker["consecutiveFailures"] == 3
    assert breaker["incidentId"] == incident["id"]
    assert breaker["currentIncident"]["id"] == incident["id"]
    until = _iso(breaker["disabledUntil"])
    assert before + timedelta(hours=24) <= until <= datetime.now(UTC) + timedelta(hours=24)
    assert incident == {
        "id": incident["id"],
        "severity": "P1",
        "reason": reason,
        "driftScore": 0.31234,
        "sampleCount": 50,
        "details": {"model": "v2"},
        "resolved": False,
        "resolvedBy": None,
        "resolutionNotes": None,
    }
    assert len(incident["id"]) == 12
    [alert] = await outbox(engine)
    assert (alert.alert_type, alert.status, alert.attempts, alert.max_attempts) == (
        "DISABLE",
        "PENDING",
        0,
        10,
    )
    assert (alert.tenant_id, alert.circuit_breaker_name, alert.incident_id) == (
        "t1",
        "costsim_v2",
        incident["id"],
    )
    [payload] = alert.payload
    assert payload["labels"] == {
        "alertname": "CostSimV2Disabled",
        "severity": "p1",
        "component": "costsim",
        "circuit_breaker": "costsim_v2",
        "instance": "aos-unknown",
        "incident_id": incident["id"],
        "tenant_id": "t1",
    }
    assert payload["annotations"]["summary"] == "CostSim V2 circuit breaker tripped (P1)"
    assert payload["annotations"]["description"] == (
        f"Reason: {reason}\nDrift score: 0.3123\nSample count: 50\n"
        f"Disabled until: {until.isoformat()}"
    )
    assert "runbook_url" in payload["annotations"]
    assert _iso(payload["startsAt"]) == _iso(breaker["openedAt"])
    # and while OPEN the counter moves but nothing trips again
    change = await _drift(client, 0.9)
    assert change["changed"] is False and change["incident"] is None
    assert change["breaker"]["consecutiveFailures"] == 4
    assert len(await breaker_incidents(engine)) == 1
    assert len(await outbox(engine)) == 1
    rows = await audits(engine)
    assert [r.operation for r in rows] == ["reportBreakerDrift"] * 4
    assert {(r.actor, r.actor_role, r.entity_type) for r in rows} == {
        ("alice", "INGEST", "circuit_breakers")
    }


async def test_a_good_report_resets_the_count(client, engine):
    await _drift(client, 0.5)
    await _drift(client, 0.5)
    change = await _drift(client, 0.2)  # the threshold itself is not a failure
    assert change["breaker"]["consecutiveFailures"] == 0
    await _drift(client, 0.5)
    change = await _drift(client, 0.5)
    assert change["changed"] is False and change["breaker"]["state"] == "CLOSED"
    assert await breaker_incidents(engine) == []


@pytest.mark.parametrize(
    ("_case", "query", "variables", "field"),
    [
        ("score above 1", DRIFT, {"score": 1.5}, "driftScore"),
        ("negative score", DRIFT, {"score": -0.1}, "driftScore"),
        ("negative samples", DRIFT, {"score": 0.1, "samples": -1}, "sampleCount"),
        ("empty name", DRIFT, {"score": 0.1, "name": ""}, "name"),
        ("negative error count", SCHEMA_ERRORS, {"count": -2}, "errorCount"),
    ],
)
async def test_bad_reports_are_refused_and_write_nothing(
    client, engine, _case, query, variables, field
):
    body = await gql(client, query, variables, role="INGEST")
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert await breakers(engine) == []
    assert await audits(engine) == []


async def test_schema_errors_trip_p3_at_five(client, engine):
    body = await gql(client, SCHEMA_ERRORS, {"count": 4}, role="INGEST")
    assert body["data"]["reportBreakerSchemaErrors"]["changed"] is False
    body = await gql(client, SCHEMA_ERRORS, {"count": 5}, role="INGEST")
    change = body["data"]["reportBreakerSchemaErrors"]
    assert change["changed"] is True
    assert change["incident"]["severity"] == "P3"
    assert change["incident"]["reason"] == "Schema error threshold exceeded: 5 >= 5"
    assert (change["incident"]["driftScore"], change["incident"]["sampleCount"]) == (1.0, 5)
    assert change["breaker"]["disabledBy"] == "circuit_breaker"
    body = await gql(client, SCHEMA_ERRORS, {"count": 9}, role="INGEST")
    assert body["data"]["reportBreakerSchemaErrors"]["changed"] is False
    assert len(await outbox(engine)) == 1
    [payload] = (await outbox(engine))[0].payload
    assert payload["labels"]["severity"] == "p3"


async def test_manual_disable_is_idempotent_and_a_new_reason_supersedes(client, engine):
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    first = (await gql(client, DISABLE, {"reason": "deploy", "until": until}))["data"][
        "disableCircuitBreaker"
    ]
    assert first["changed"] is True
    assert first["incident"]["severity"] == "P2"
    assert first["incident"]["details"] == {"manual_disable": True}
    assert (first["incident"]["driftScore"], first["incident"]["sampleCount"]) == (0.0, 0)
    assert first["breaker"]["disabledBy"] == "alice"
    assert _iso(first["breaker"]["disabledUntil"]) == _iso(until)
    # the same reason again changes nothing (until is ignored)
    later = (datetime.now(UTC) + timedelta(hours=9)).isoformat()
    again = (await gql(client, DISABLE, {"reason": "deploy", "until": later}))["data"][
        "disableCircuitBreaker"
    ]
    assert again["changed"] is False and again["incident"] is None
    assert _iso(again["breaker"]["disabledUntil"]) == _iso(until)
    # another reason supersedes the current incident
    other = (await gql(client, DISABLE, {"reason": "incident 42"}, sub="bob"))["data"][
        "disableCircuitBreaker"
    ]
    assert other["changed"] is True
    assert other["breaker"]["currentIncident"]["id"] == other["incident"]["id"]
    assert other["breaker"]["reason"] == "incident 42"
    old, new = await breaker_incidents(engine)
    assert old.id == first["incident"]["id"]
    assert (old.resolved, old.resolved_by, old.resolution_notes) == (
        True,
        "bob",
        "Superseded by manual disable",
    )
    assert old.resolved_at is not None
    assert new.resolved is False
    assert [a.alert_type for a in await outbox(engine)] == ["DISABLE", "DISABLE"]
    assert len(await audits(engine)) == 3


async def test_enable_resolves_the_incident_and_is_idempotent(client, engine):
    closed = (await gql(client, ENABLE, {}))["data"]["enableCircuitBreaker"]
    assert closed["changed"] is False and closed["incident"] is None
    opened = (await gql(client, DISABLE, {"reason": "maintenance"}))["data"][
        "disableCircuitBreaker"
    ]
    await _drift(client, 0.9)
    change = (await gql(client, ENABLE, {"reason": "done"}, sub="bob"))["data"][
        "enableCircuitBreaker"
    ]
    assert change["changed"] is True
    assert change["incident"]["id"] == opened["incident"]["id"]
    assert change["incident"]["resolved"] is True
    assert change["incident"]["resolvedBy"] == "bob"
    assert change["incident"]["resolutionNotes"] == "done"
    b = change["breaker"]
    assert (b["state"], b["reason"], b["disabledBy"], b["disabledUntil"], b["incidentId"]) == (
        "CLOSED",
        None,
        None,
        None,
        None,
    )
    assert (b["consecutiveFailures"], b["openedAt"], b["currentIncident"]) == (0, None, None)
    again = (await gql(client, ENABLE, {}))["data"]["enableCircuitBreaker"]
    assert again["changed"] is False
    alerts = await outbox(engine)
    assert [a.alert_type for a in alerts] == ["DISABLE", "ENABLE"]
    [payload] = alerts[1].payload
    assert payload["labels"]["alertname"] == "CostSimV2Reenabled"
    assert payload["labels"]["severity"] == "info"
    assert "incident_id" not in payload["labels"]
    assert payload["annotations"] == {
        "summary": "CostSim V2 circuit breaker re-enabled",
        "description": "Re-enabled by: bob\nReason: done",
    }
    assert payload["startsAt"] == payload["endsAt"]
    # a reset without a reason says "Manual reset"
    await gql(client, DISABLE, {"reason": "again"})
    await gql(client, ENABLE, {})
    latest = (await breaker_incidents(engine))[-1]
    assert (latest.resolved_by, latest.resolution_notes) == ("alice", "Manual reset")


async def test_roles(client, engine):
    assert error_codes(await gql(client, DISABLE, {"reason": "x"}, role="OPERATOR")) == [
        "FORBIDDEN"
    ]
    assert error_codes(await gql(client, ENABLE, {}, role="VIEWER")) == ["FORBIDDEN"]
    assert error_codes(await gql(client, DRIFT, {"score": 0.5}, role="OPERATOR")) == ["FORBIDDEN"]
    assert error_codes(await gql(client, "mutation { retryFailedAlerts }", role="OPERATOR")) == [
        "FORBIDDEN"
    ]
    assert await breakers(engine) == []
    assert await audits(engine) == []


async def test_disable_until_must_be_in_the_future(client, engine):
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    body = await gql(client, DISABLE, {"reason": "x", "until": past})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "until"
    body = await gql(client, DISABLE, {"reason": "  "})
    assert body["errors"][0]["extensions"]["field"] == "reason"
    assert await breakers(engine) == []


async def test_tenants_do_not_see_each_others_breakers(client, engine):
    await gql(client, DISABLE, {"reason": "t1 only"})
    other = await gql(client, BREAKER, tenant="t2", role="VIEWER")
    assert other["data"]["circuitBreaker"]["state"] == "CLOSED"
    change = (await gql(client, ENABLE, {}, tenant="t2"))["data"]["enableCircuitBreaker"]
    assert change["changed"] is False
    mine = await gql(client, BREAKER, role="VIEWER")
    assert mine["data"]["circuitBreaker"]["state"] == "OPEN"
    assert {r.tenant_id for r in await breakers(engine)} == {"t1", "t2"}


async def test_ttl_expiry_recovers_lazily_on_read_exactly_once(client, engine):
    # given an OPEN breaker whose TTL has passed
    opened = (await gql(client, DISABLE, {"reason": "ttl"}))["data"]["disableCircuitBreaker"]
    await expire_breaker(engine, datetime.now(UTC) - timedelta(seconds=1))
    # when two reads race
    first, second = await asyncio.gather(
        gql(client, BREAKER, role="VIEWER"), gql(client, BREAKER, role="VIEWER")
    )
    # then both answer CLOSED and the trip was recovered once
    assert first["data"]["circuitBreaker"]["state"] == "CLOSED"
    assert second["data"]["circuitBreaker"]["state"] == "CLOSED"
    [incident] = await breaker_incidents(engine)
    assert incident.id == opened["incident"]["id"]
    assert (incident.resolved, incident.resolved_by, incident.resolution_notes) == (
        True,
        "system-auto-recover",
        "Auto-recovered after TTL expired",
    )
    alerts = await outbox(engine)
    assert [a.alert_type for a in alerts] == ["DISABLE", "ENABLE"]
    assert (
        alerts[1]
        .payload[0]["annotations"]["description"]
        .startswith("Re-enabled by: system-auto-recover\n")
    )
    recovery = (await audits(engine))[-1]
    assert (recovery.actor, recovery.actor_role, recovery.operation) == (
        "system-auto-recover",
        "SYSTEM",
        "circuitBreaker",
    )
    assert len(await audits(engine)) == 2
    # and the sweeper finds nothing left to do
    assert await recover_expired_breakers(engine) == 0


async def test_manual_reset_required_stays_open(client, engine):
    await gql(client, DISABLE, {"reason": "forever"})
    await expire_breaker(engine, None)  # disabled_until null = manual reset required
    assert await recover_expired_breakers(engine) == 0
    body = await gql(client, BREAKER, role="VIEWER")
    assert body["data"]["circuitBreaker"]["state"] == "OPEN"


@pytest.mark.races  # the sweepers' order decides row ids and notification order
async def test_two_racing_sweepers_recover_each_trip_once(client, engine):
    await gql(client, DISABLE, {"reason": "a"})
    await gql(client, DISABLE, {"name": "other", "reason": "b"})
    await gql(client, DISABLE, {"reason": "c"}, tenant="t2")
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE circuit_breakers SET disabled_until = now() - interval '1 s'")
        )
    counts = await asyncio.gather(
        recover_expired_breakers(engine), recover_expired_breakers(engine)
    )
    assert sum(counts) == 3
    assert all(not r.disabled for r in await breakers(engine))
    alerts = await outbox(engine)
    assert sorted(a.alert_type for a in alerts) == ["DISABLE"] * 3 + ["ENABLE"] * 3
    sweeps = [a for a in await audits(engine) if a.operation == "recover_expired_breakers"]
    assert len(sweeps) == 3
    assert {(a.actor, a.actor_role, a.request_id) for a in sweeps} == {
        ("system-auto-recover", "SYSTEM", None)
    }


async def test_state_changes_notify_breaker_changed(client, engine, database_url):
    received: list[dict[str, Any]] = []
    listener = await asyncpg.connect(database_url)
    await listener.add_listener(NOTIFY_CHANNEL, published(received))
    try:
        await gql(client, DISABLE, {"reason": "x"})
        await gql(client, DISABLE, {"reason": "x"})  # no-op: no notification
        await gql(client, ENABLE, {})
        for _ in range(200):
            if len(received) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await listener.close()
    [row] = await breakers(engine)
    assert received == [{"tenant_id": "t1", "kind": "BREAKER_CHANGED", "id": str(row.id)}] * 2


INCIDENTS = """query($all: Boolean!) { circuitBreakers { name incidents(first: 2, includeResolved: $all) {
  totalCount pageInfo { hasNextPage } nodes { id resolved } } currentIncident { id } } }"""


async def test_incident_lists_and_statement_counts(client, engine, count_statements):
    async def trips(name: str, n: int, tenant: str) -> None:
        for i in range(n):
            await gql(client, DISABLE, {"name": name, "reason": f"r{i}"}, tenant=tenant)

    counts = {}
    for tenant, names in (("small", ["a"]), ("large", ["a", "b", "c", "d", "e"])):
        for name in names:
            await trips(name, 3, tenant)
        await gql(client, BREAKER, tenant=tenant, role="VIEWER")  # settle nothing
        count_statements.reset()
        body = await gql(client, INCIDENTS, {"all": True}, tenant=tenant, role="VIEWER")
        counts[tenant] = count_statements.count
        listed = [b for b in body["data"]["circuitBreakers"] if b["name"] != "costsim_v2"]
        assert len(listed) == len(names)
        for b in listed:
            page = b["incidents"]
            assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"] is True
            assert [n["resolved"] for n in page["nodes"]] == [False, True]
            assert b["currentIncident"]["id"] == page["nodes"][0]["id"]
    # breakers + incidents window + totalCount + current incidents
    assert counts == {"small": 4, "large": 4}
    body = await gql(client, INCIDENTS, {"all": False}, tenant="small", role="VIEWER")
    [a] = [b for b in body["data"]["circuitBreakers"] if b["name"] == "a"]
    assert a["incidents"]["totalCount"] == 1


async def test_a_failed_write_rolls_back_the_whole_transition(client, engine):
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
        body = await gql(client, DISABLE, {"reason": "doomed"})
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER IF EXISTS test_refuse_audit ON audit_log"))
            await conn.execute(text("DROP FUNCTION IF EXISTS test_refuse_audit()"))
    assert error_codes(body) == ["INTERNAL"]
    assert await breakers(engine) == []
    assert await breaker_incidents(engine) == []
    assert await outbox(engine) == []


async def test_trips_are_counted_by_cause_and_severity(client):
    def value(reason: str, severity: str) -> float:
        sample = "gateway_breaker_disables_total"
        return REGISTRY.get_sample_value(sample, {"reason": reason, "severity": severity}) or 0.0

    manual, schema = value("manual", "P2"), value("drift", "P3")
    await gql(client, DISABLE, {"reason": "m"})
    await gql(client, DISABLE, {"reason": "m"})  # no-op: not counted
    await gql(client, SCHEMA_ERRORS, {"name": "s", "count": 5}, role="INGEST")
    assert value("manual", "P2") == manual + 1
    assert value("drift", "P3") == schema + 1


async def test_breaker_by_id_is_tenant_scoped(client, engine):
    await gql(client, DISABLE, {"reason": "x"})
    [row] = await breakers(engine)
    db = Database(primary=engine, reads=engine)

    def ctx(tenant: str) -> Context:
        return Context(principal=Principal(tenant, "sub", Role.VIEWER), db=db, request_id="r")

    mine = await get_circuit_breaker_by_id(ctx("t1"), row.id)
    assert mine is not None and mine.disabled and mine.opened_at is not None
    assert await get_circuit_breaker_by_id(ctx("t2"), row.id) is None


async def test_mutations_cost_a_fixed_number_of_statements(client, count_statements):
    expected: tuple[tuple[str, dict[str, Any], str, int], ...] = (
        # settle read, get-or-create, lock, incident, state row, outbox, audit + notify (one
        # statement), then the response's currentIncident
        (DISABLE, {"reason": "x"}, "ADMIN", 8),
        # settle read, get-or-create, lock, state row, audit + notify, currentIncident
        (DRIFT, {"score": 0.5}, "INGEST", 6),
        # settle read, get-or-create, lock, resolve incident, state row, outbox, audit + notify
        (ENABLE, {}, "ADMIN", 7),
        # one read; a CLOSED breaker has no current incident to load
        (BREAKER, {}, "VIEWER", 1),
    )
    for query, variables, role, count in expected:
        count_statements.reset()
        body = await gql(client, query, variables, role=role)
        assert "errors" not in body, body
        assert count_statements.count == count, count_statements.statements


async def test_the_list_also_recovers_expired_trips(client, engine):
    await gql(client, DISABLE, {"name": "a", "reason": "x"})
    await gql(client, DISABLE, {"name": "b", "reason": "y"})
    await expire_breaker(engine, datetime.now(UTC) - timedelta(seconds=1), name="a")
    body = await gql(client, "{ circuitBreakers { name state } }", role="VIEWER")
    assert body["data"]["circuitBreakers"] == [
        {"name": "a", "state": "CLOSED"},
        {"name": "b", "state": "OPEN"},
        {"name": "costsim_v2", "state": "CLOSED"},
    ]
    assert [a.alert_type for a in await outbox(engine)] == ["DISABLE", "DISABLE", "ENABLE"]
