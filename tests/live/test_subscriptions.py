"""Subscriptions over graphql-transport-ws against a real uvicorn server (DOMAIN.md §5, API.md)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from sqlalchemy import text

from drivers import api_keys
from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.helpers import error_codes, gql, token
from tests.live.servers import ThreadedServer
from tests.live.wsclient import GraphQLWS, metric, subscriber, wait_for_subscribers, ws_connect

INCIDENT_CHANGED = """subscription($severity: [Severity!]) { incidentChanged(severity: $severity) {
    kind incidentId changedAt incident { id status severity acknowledgedBy
        events(first: 5) { totalCount nodes { eventType } } }
} }"""
EVENT_ADDED = """subscription($id: ID!) { incidentEventAdded(incidentId: $id) {
    id incidentId eventType description data
} }"""
ACK = 'mutation($id: ID!) { acknowledgeIncident(id: $id, note: "on it") { id status } }'
RESOLVE = """mutation($id: ID!) { resolveIncident(id: $id, input: {method: MANUAL, notes: "fixed"}) {
    id status } }"""


@pytest.fixture(scope="module", params=["outbox", "direct"])
def live_server(request, live_settings):
    """Every test here runs against both ways a change leaves its transaction (NOTIFY_MODE)."""
    settings = live_settings.model_copy(update={"notify_mode": request.param})
    with ThreadedServer(settings) as server:
        yield server


async def _ack(http, incident_id: str, tenant: str = "t1") -> dict[str, Any]:
    body = await gql(http, ACK, {"id": incident_id}, tenant=tenant, role="OPERATOR", sub="carol")
    assert "errors" not in body, body
    return body


async def test_incident_changes_arrive_in_commit_order_with_fresh_nested_fields(
    live_server, http, engine
):
    # given an open incident and a subscriber of its tenant
    row = incident_row(severity="HIGH")
    await insert_rows(engine, t.incidents, [row])
    async with subscriber(live_server.url, token("t1", "VIEWER")) as ws:
        op = await ws.subscribe(INCIDENT_CHANGED)
        await wait_for_subscribers(live_server.url, 1)
        # when it is acknowledged, then resolved, over HTTP on the same server
        await _ack(http, row["id"])
        first = await ws.next(op)
        body = await gql(http, RESOLVE, {"id": row["id"]}, role="OPERATOR")
        assert "errors" not in body, body
        second = await ws.next(op)
    # then both changes arrive, in order, each with the incident and its timeline as committed
    change = first["data"]["incidentChanged"]
    assert change["kind"] == "ACKNOWLEDGED"
    assert change["incidentId"] == row["id"]
    assert change["incident"]["acknowledgedBy"] == "carol"
    assert change["incident"]["events"]["totalCount"] == 1
    change = second["data"]["incidentChanged"]
    assert change["kind"] == "RESOLVED"
    assert change["incident"]["status"] == "RESOLVED"
    # a later event resolves its nested fields afresh, not from the first event's cache
    assert change["incident"]["events"]["totalCount"] == 2
    assert [n["eventType"] for n in change["incident"]["events"]["nodes"]] == [
        "RESOLVED",
        "ACKNOWLEDGED",
    ]
    await wait_for_subscribers(live_server.url, 0)


async def test_a_subscriber_sees_only_its_own_tenant(live_server, http, engine):
    # given an incident in each tenant and one subscriber per tenant
    mine, theirs = incident_row("t1"), incident_row("t2")
    await insert_rows(engine, t.incidents, [mine, theirs])
    async with (
        subscriber(live_server.url, token("t1", "VIEWER")) as ws1,
        subscriber(live_server.url, token("t2", "VIEWER")) as ws2,
    ):
        op1 = await ws1.subscribe(INCIDENT_CHANGED)
        op2 = await ws2.subscribe(INCIDENT_CHANGED)
        events2 = await ws2.subscribe(EVENT_ADDED, {"id": mine["id"]})
        await wait_for_subscribers(live_server.url, 3)
        # when t1's incident changes
        await _ack(http, mine["id"], "t1")
        # then only t1's subscriber hears of it; t2 following t1's incident id hears nothing
        assert (await ws1.next(op1))["data"]["incidentChanged"]["incidentId"] == mine["id"]
        assert await ws2.silent(op2, 0.4)
        assert await ws2.silent(events2, 0.1)
        # and t2's subscription is live: its own change arrives
        await _ack(http, theirs["id"], "t2")
        assert (await ws2.next(op2))["data"]["incidentChanged"]["incidentId"] == theirs["id"]
        assert await ws1.silent(op1, 0.2)


async def test_severity_filter(live_server, http, engine):
    high, critical = incident_row(severity="HIGH"), incident_row(severity="CRITICAL")
    await insert_rows(engine, t.incidents, [high, critical])
    async with subscriber(live_server.url, token("t1", "VIEWER")) as ws:
        op = await ws.subscribe(INCIDENT_CHANGED, {"severity": ["CRITICAL"]})
        await wait_for_subscribers(live_server.url, 1)
        await _ack(http, high["id"])
        await _ack(http, critical["id"])
        change = (await ws.next(op))["data"]["incidentChanged"]
        assert (change["incidentId"], change["incident"]["severity"]) == (
            critical["id"],
            "CRITICAL",
        )
        assert await ws.silent(op, 0.3)


async def test_incident_event_added_follows_one_incident(live_server, http, engine):
    followed, other = incident_row(), incident_row()
    await insert_rows(engine, t.incidents, [followed, other])
    async with subscriber(live_server.url, token("t1", "INGEST")) as ws:
        op = await ws.subscribe(EVENT_ADDED, {"id": followed["id"]})
        await wait_for_subscribers(live_server.url, 1)
        await _ack(http, other["id"])
        await _ack(http, followed["id"])
        event = (await ws.next(op))["data"]["incidentEventAdded"]
        assert event["incidentId"] == followed["id"]
        assert event["eventType"] == "ACKNOWLEDGED"
        assert event["data"] == {"note": "on it"}
        assert event["description"] == "Incident acknowledged by carol"
        assert await ws.silent(op, 0.3)


async def _failing_audit(engine, on: bool) -> None:
    async with engine.begin() as conn:
        if on:
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
        else:
            await conn.execute(text("DROP TRIGGER IF EXISTS test_refuse_audit ON audit_log"))
            await conn.execute(text("DROP FUNCTION IF EXISTS test_refuse_audit()"))


async def test_a_rolled_back_change_publishes_nothing(live_server, http, engine):
    # given a subscriber and a mutation that will fail at its audit write (after pg_notify
    # would have been queued in the same transaction)
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    async with subscriber(live_server.url, token("t1", "VIEWER")) as ws:
        changes = await ws.subscribe(INCIDENT_CHANGED)
        events = await ws.subscribe(EVENT_ADDED, {"id": row["id"]})
        await wait_for_subscribers(live_server.url, 2)
        await _failing_audit(engine, True)
        try:
            body = await gql(http, ACK, {"id": row["id"]}, role="OPERATOR")
        finally:
            await _failing_audit(engine, False)
        assert body["data"] is None
        assert error_codes(body) == ["INTERNAL"]
        # then nothing is delivered
        assert await ws.silent(changes, 0.5)
        assert await ws.silent(events, 0.05)
        # while the same change, committed, is
        await _ack(http, row["id"])
        assert (await ws.next(changes))["data"]["incidentChanged"]["kind"] == "ACKNOWLEDGED"
        assert (await ws.next(events))["data"]["incidentEventAdded"]["eventType"] == "ACKNOWLEDGED"


async def test_connection_init_authentication(live_server, engine):
    # no payload, no token, a bad token, a wrong scheme: refused with 4403 Forbidden
    for payload in (None, {}, {"authorization": "Bearer nonsense"}, {"authorization": "Basic x"}):
        async with ws_connect(live_server.url) as raw:
            client = GraphQLWS(raw)
            await raw.send(json.dumps({"type": "connection_init", "payload": payload}))
            await raw.wait_closed()
            assert raw.close_code == 4403, payload
            del client
    # a subscribe before connection_init: 4401 Unauthorized (the protocol's rule)
    async with ws_connect(live_server.url) as raw:
        await raw.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": INCIDENT_CHANGED}})
        )
        await raw.wait_closed()
        assert raw.close_code == 4401
    # an API key works like on HTTP, for any role (INGEST reads at VIEWER level)
    async with engine.begin() as conn:
        _, key = await api_keys.insert_api_key(conn, tenant_id="t1", role="INGEST", name="ws")
    async with subscriber(live_server.url, key) as ws:
        op = await ws.subscribe(INCIDENT_CHANGED)
        await wait_for_subscribers(live_server.url, 1)
        assert await ws.silent(op, 0.1)
    # a revoked/unknown API key is refused
    async with ws_connect(live_server.url) as raw:
        await raw.send(
            json.dumps(
                {"type": "connection_init", "payload": {"authorization": "Bearer gwk_" + "x" * 43}}
            )
        )
        await raw.wait_closed()
        assert raw.close_code == 4403


async def test_only_graphql_transport_ws_is_spoken(live_server):
    from websockets.asyncio.client import connect  # noqa: PLC0415

    url = live_server.url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-ws"]) as raw:  # type: ignore[list-item]
        await raw.wait_closed()
        assert raw.close_code == 4406


async def test_one_load_per_notification_whatever_the_number_of_subscribers(
    live_server, http, engine
):
    rows = [incident_row() for _ in range(2)]
    await insert_rows(engine, t.incidents, rows)
    url = live_server.url
    for subscribers in (1, 5):
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(subscriber(url, token("t1", "VIEWER")))
                for _ in range(subscribers)
            ]
            ops = [await c.subscribe(INCIDENT_CHANGED) for c in clients]
            await wait_for_subscribers(url, subscribers)
            loads = await metric(url, "gateway_notification_loads_total")
            delivered = await metric(url, "gateway_notifications_delivered_total")
            await _ack(http, rows.pop()["id"])
            for c, op in zip(clients, ops, strict=True):
                await c.next(op)
            # one notification -> one row load, however many subscribers it is delivered to
            assert await metric(url, "gateway_notification_loads_total") == loads + 1
            assert (
                await metric(url, "gateway_notifications_delivered_total")
                == delivered + subscribers
            )
    await wait_for_subscribers(url, 0)


async def test_metrics_count_subscribers_and_notifications(live_server, http, engine):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    url = live_server.url
    received = await metric(url, "gateway_notifications_received_total")
    delivered = await metric(url, "gateway_notifications_delivered_total")
    async with subscriber(url, token("t1", "VIEWER")) as ws:
        await ws.subscribe(INCIDENT_CHANGED)
        await ws.subscribe(EVENT_ADDED, {"id": row["id"]})
        await wait_for_subscribers(url, 2)
        await _ack(http, row["id"])
        await ws.next("1")
        await ws.next("2")
    await wait_for_subscribers(url, 0)
    # acknowledgeIncident publishes two notifications (the incident and its event), each
    # delivered to one subscriber. (Every hub in this test process counts what it receives,
    # so `received` grows by 2 per listening app.)
    assert await metric(url, "gateway_notifications_delivered_total") == delivered + 2
    grown = await metric(url, "gateway_notifications_received_total") - received
    assert grown >= 2
    assert grown % 2 == 0
