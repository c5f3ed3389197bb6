"""The tuned mutation path: addIncidentEvent is ONE statement, and dead connections are exact.

Round trips are counted on the wire (bench/wire.py), so BEGIN, COMMIT and pool pings that
SQLAlchemy's statement events do not see are counted too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from bench.wire import WireProxy, wire_proxy
from drivers import tables as t
from drivers.changes import fetch_events, fetch_incidents
from drivers.incidents import add_event_touching_incident, new_id
from drivers.records import IncidentEventRecord
from gateway.settings import Settings
from resolvers.auth import Principal, Role
from resolvers.context import Context, Database
from resolvers.unit_of_work import unit_of_work
from tests.factories import incident_row, insert_rows
from tests.factories_incwrites import all_rows, audit_rows
from tests.helpers import error_codes, gql, serve

ADD_EVENT = """mutation($id: ID!, $input: IncidentEventInput!) {
  addIncidentEvent(incidentId: $id, input: $input) { id incidentId eventType description }
}"""
NOTE = {"eventType": "NOTE", "description": "x", "data": {"k": 1}}


async def test_add_event_is_one_statement_with_its_audit_row(client, engine, count_statements):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    for _ in range(3):
        count_statements.reset()
        body = await gql(client, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
        assert "errors" not in body, body
        # touch + lock + event + audit row + both notifications: one statement (autocommit)
        assert count_statements.count == 1, count_statements.statements
    events = await all_rows(engine, t.incident_events)
    audits = await audit_rows(engine)
    assert len(events) == 3
    assert [a.entity_id for a in audits] == [e.id for e in events]
    first = next(e for e in events if e.id == audits[0].entity_id)
    assert audits[0].before is None
    assert audits[0].after["id"] == first.id
    assert audits[0].after["incident_id"] == inc["id"]
    assert audits[0].after["data"] == {"k": 1}
    assert audits[0].after["created_at"] == first.created_at.isoformat()
    assert audits[0].actor_role == "OPERATOR"
    assert audits[0].operation == "addIncidentEvent"


async def test_add_event_to_a_missing_incident_writes_nothing(client, engine, count_statements):
    theirs = incident_row("t2")
    await insert_rows(engine, t.incidents, [theirs])
    count_statements.reset()
    body = await gql(client, ADD_EVENT, {"id": theirs["id"], "input": NOTE}, role="OPERATOR")
    assert error_codes(body) == ["NOT_FOUND"]
    assert count_statements.count == 1, count_statements.statements
    assert await all_rows(engine, t.incident_events) == []
    assert await audit_rows(engine) == []
    assert (await all_rows(engine, t.incidents))[0].updated_at == theirs["updated_at"]


async def test_add_event_notifies_both_changes_after_its_commit(client, engine, database_url):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    got: list[str] = []
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener("gateway_changes", lambda *args: got.append(args[3]))
        body = await gql(client, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
        missing = await gql(client, ADD_EVENT, {"id": "nope", "input": NOTE}, role="OPERATOR")
        for _ in range(50):
            if len(got) >= 2:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    finally:
        await listener.close()
    assert error_codes(missing) == ["NOT_FOUND"]
    event_id = body["data"]["addIncidentEvent"]["id"]
    assert got == [
        f'{{"tenant_id":"t1","kind":"INCIDENT_UPDATED","id":"{inc["id"]}"}}',
        f'{{"tenant_id":"t1","kind":"INCIDENT_EVENT_ADDED","id":"{event_id}"}}',
    ]


@pytest.fixture
async def proxied(
    settings: Settings, database_url: str
) -> AsyncIterator[tuple[WireProxy, httpx.AsyncClient]]:
    """The app behind a wire proxy, with one pooled connection (so reuse is deterministic)."""
    async with wire_proxy(database_url) as proxy:
        over = {
            "database_url": proxy.url(database_url),
            "db_pool_size": 1,
            "db_max_overflow": 0,
            "listener_ping_seconds": 3600.0,
        }
        async with serve(settings.model_copy(update=over)) as http:
            yield proxy, http


async def test_add_event_is_one_round_trip_on_the_wire(proxied, engine):
    proxy, http = proxied
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    for _ in range(2):  # connect and prepare the statement
        body = await gql(http, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
        assert "errors" not in body, body
    before = proxy.round_trips
    for _ in range(3):
        body = await gql(http, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
        assert "errors" not in body, body
    # no pre-ping, no BEGIN/COMMIT: the statement is the whole conversation
    assert proxy.round_trips - before == 3


async def _terminate(proxy: WireProxy) -> int:
    """pg_terminate_backend every idle pooled backend of the proxied app (not its LISTEN)."""
    admin = await asyncpg.connect(
        proxy.url("postgresql://postgres@x/postgres").replace(
            f"127.0.0.1:{proxy.listen_port}", f"{proxy.host}:{proxy.port}"
        )
    )
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE client_port = ANY($1::int[]) AND query NOT ILIKE 'LISTEN%'",
            sorted(proxy.upstream_ports),
        )
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the FIN reaches the idle pooled connection
    return int(killed)


async def test_a_connection_killed_between_requests_loses_and_duplicates_nothing(proxied, engine):
    proxy, http = proxied
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    body = await gql(http, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
    assert "errors" not in body, body
    assert await _terminate(proxy) >= 1
    # the pool sees the closed connection at checkout and reconnects before sending anything
    body = await gql(http, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
    assert "errors" not in body, body
    assert len(await all_rows(engine, t.incident_events)) == 2
    assert len(await audit_rows(engine)) == 2


async def test_a_connection_lost_after_the_statement_is_sent_is_not_retried(proxied, engine):
    proxy, http = proxied
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    body = await gql(http, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
    assert "errors" not in body, body
    proxy.cut_after_next()  # the server runs and commits the write; its answer is lost
    body = await gql(http, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
    assert error_codes(body) == ["SERVICE_UNAVAILABLE"]
    # written once by the server, never a second time by a retry
    assert len(await all_rows(engine, t.incident_events)) == 2
    assert len(await audit_rows(engine)) == 2
    body = await gql(http, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
    assert "errors" not in body, body  # the broken connection was replaced
    assert len(await all_rows(engine, t.incident_events)) == 3


def _ctx(engine) -> Context:
    db = Database(primary=engine, reads=engine)
    return Context(principal=Principal("t1", "op", Role.OPERATOR), db=db, request_id="r")


async def test_a_one_statement_unit_must_write_its_audit_row_in_its_statement(engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    with pytest.raises(RuntimeError, match="without its audit row in its statement"):
        async with unit_of_work(_ctx(engine), "x", Role.OPERATOR, one_statement=True) as uow:
            uow.audit("incidents", inc["id"], before=None, after=None)
    with pytest.raises(RuntimeError, match="after take_audit"):
        async with unit_of_work(_ctx(engine), "x", Role.OPERATOR, one_statement=True) as uow:
            uow.audit("incidents", inc["id"], before=None, after=None)
            entry = uow.take_audit()
            uow.notify("INCIDENT_UPDATED", inc["id"])
    assert entry.actor == "op" and entry.notifications == ()
    assert await audit_rows(engine) == []


async def test_a_transactional_unit_may_hand_its_audit_row_to_a_driver(engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    async with unit_of_work(_ctx(engine), "addIncidentEvent", Role.OPERATOR) as uow:
        now = datetime.now(UTC)
        planned = IncidentEventRecord(new_id(), inc["id"], "NOTE", "d", {"b": 1, "a": 2}, now)
        uow.audit("incident_events", planned.id, before=None, after=None)
        uow.notify("INCIDENT_UPDATED", inc["id"])
        uow.notify("INCIDENT_EVENT_ADDED", planned.id)
        event, after = await add_event_touching_incident(
            uow.conn, tenant_id="t1", event=planned, entry=uow.take_audit()
        )
    # written once (by the statement, not again at the end of the unit of work)
    assert len(await audit_rows(engine)) == 1
    assert len(await all_rows(engine, t.incident_events)) == 1
    # the records it returns (the event, and the incident primed into the loader) are exactly
    # what a read of the stored rows gives
    async with engine.connect() as conn:
        assert after == (await fetch_incidents(conn, tenant_id="t1", ids=[inc["id"]]))[inc["id"]]
        assert event == (await fetch_events(conn, tenant_id="t1", ids=[event.id]))[event.id]
    assert after.updated_at == now != inc["updated_at"]
    assert event.created_at == now
