"""The tuned mutation path: addIncidentEvent is ONE statement, and dead connections are exact.

Round trips are counted on the wire (bench/wire.py), so BEGIN, COMMIT and pool pings that
SQLAlchemy's statement events do not see are counted too.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from bench.wire import WireProxy, upstream_address, wire_proxy
from drivers import tables as t
from drivers.changes import fetch_events, fetch_incidents
from drivers.incidents import add_event_touching_incident, new_id
from drivers.one_statement import EngineConnection
from drivers.readpool import QUERY_HOOKS
from drivers.records import IncidentEventRecord
from gateway.settings import Settings
from resolvers.auth import Principal, Role
from resolvers.context import Context, Database
from resolvers.unit_of_work import unit_of_work
from tests.factories import incident_row, insert_rows
from tests.factories_incwrites import all_rows, audit_rows, published
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


@pytest.mark.parametrize("mode", ["outbox", "direct"])
async def test_the_one_statement_pool_follows_the_gateways_notify_mode(
    settings, engine, count_statements, mode
):
    # given a gateway in that NOTIFY_MODE (its one-statement writes go through the plain pool)
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    gateway = settings.model_copy(update={"notify_mode": mode, "outbox_publisher": False})
    pooled: list[str] = []
    QUERY_HOOKS.append(pooled.append)
    try:
        async with serve(gateway) as http:
            count_statements.reset()
            body = await gql(http, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
    finally:
        QUERY_HOOKS.remove(pooled.append)
    assert "errors" not in body, body
    # then its one statement went through the pool and publishes that way: pg_notify in it only
    # in direct mode
    [sent] = count_statements.statements
    assert pooled == [sent]
    assert ("pg_notify" in sent) == (mode == "direct")


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
    got: list[dict[str, Any]] = []
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener("gateway_changes", published(got))
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
        {"tenant_id": "t1", "kind": "INCIDENT_UPDATED", "id": inc["id"]},
        {"tenant_id": "t1", "kind": "INCIDENT_EVENT_ADDED", "id": event_id},
    ]


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("postgresql://u:p@db:6543/app", ("db", 6543)),
        ("postgresql://u@/app", ("127.0.0.1", 5432)),
        # the embedded server's URL: a socket directory, the port naming the socket file
        ("postgresql://postgres:@/postgres?host=/srv/pg", ("/srv/pg", 5432)),
        ("postgresql://u@ignored:1/app?host=/srv/pg&port=5433", ("/srv/pg", 5433)),
    ],
)
def test_the_wire_proxy_finds_the_server_where_libpq_would(url, address):
    assert upstream_address(url) == address


def test_the_proxied_url_names_only_the_proxy():
    proxy = WireProxy("/srv/pg", 5432)
    proxy.listen_port = 40001
    given = "postgresql://postgres:@/gw?host=/srv/pg&port=5432&sslmode=disable"
    assert proxy.url(given) == "postgresql://postgres:@127.0.0.1:40001/gw?sslmode=disable"


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def socket_url(database_url: str) -> AsyncIterator[str]:
    """The test database by a Unix-socket URL, as the embedded server gives it.

    When the test server is reached over TCP (DATABASE_URL), a byte relay on a socket in a
    temp dir stands in front of it.
    """
    host, port = upstream_address(database_url)
    if host.startswith("/"):
        yield database_url
        return

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(_relay(reader, up_writer), _relay(up_reader, writer))

    folder = tempfile.mkdtemp(prefix="gw-sock-")  # short: socket paths are limited to ~100 bytes
    server = await asyncio.start_unix_server(pipe, f"{folder}/.s.PGSQL.5432")
    try:
        parts = urlsplit(database_url)
        user = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
        yield urlunsplit(parts._replace(netloc=f"{user}@", query=f"host={folder}"))
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


async def test_the_wire_proxy_relays_a_unix_socket_server(socket_url):
    async with wire_proxy(socket_url) as proxy:
        conn = await asyncpg.connect(proxy.url(socket_url))
        try:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            before = proxy.round_trips
            await conn.execute("SELECT 1")  # one simple query: one round trip
            after = proxy.round_trips
            database = await conn.fetchval("SELECT current_database()")
        finally:
            await conn.close()
    assert proxy.backend_pids == {pid}
    assert after - before == 1
    assert database == urlsplit(socket_url).path.lstrip("/")


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
            # its polls would be counted as the app's round trips: it publishes from elsewhere
            "outbox_publisher": False,
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


async def _terminate(proxy: WireProxy, database_url: str) -> int:
    """pg_terminate_backend every idle pooled backend of the proxied app (not its LISTEN)."""
    admin = await asyncpg.connect(database_url)  # straight to the server, not through the proxy
    try:
        killed = await admin.fetch(
            "WITH idle AS MATERIALIZED (SELECT pid FROM pg_stat_activity "
            "WHERE pid = ANY($1::int[]) AND query NOT ILIKE 'LISTEN%') "
            "SELECT pid FROM idle WHERE pg_terminate_backend(pid)",
            sorted(proxy.backend_pids),
        )
    finally:
        await admin.close()
    pids = {row["pid"] for row in killed}
    for _ in range(500):  # until the proxy has passed each FIN on to the app's pooled connection
        if pids <= proxy.closed_pids:
            break
        await asyncio.sleep(0.01)
    assert pids <= proxy.closed_pids
    await asyncio.sleep(0.05)  # a few turns of this loop, on which the app reads the FIN
    return len(pids)


async def test_a_connection_killed_between_requests_loses_and_duplicates_nothing(
    proxied, engine, database_url
):
    proxy, http = proxied
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    body = await gql(http, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
    assert "errors" not in body, body
    assert await _terminate(proxy, database_url) >= 1
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
        async with unit_of_work(_ctx(engine), "addIncidentEvent", one_statement=True) as uow:
            uow.audit("incidents", inc["id"], before=None, after=None)
    with pytest.raises(RuntimeError, match="after take_audit"):
        async with unit_of_work(_ctx(engine), "addIncidentEvent", one_statement=True) as uow:
            uow.audit("incidents", inc["id"], before=None, after=None)
            entry = uow.take_audit()
            uow.notify("INCIDENT_UPDATED", inc["id"])
    assert entry.actor == "op" and entry.notifications == ()
    assert await audit_rows(engine) == []


async def test_a_transactional_unit_may_hand_its_audit_row_to_a_driver(engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    async with unit_of_work(_ctx(engine), "addIncidentEvent") as uow:
        now = datetime.now(UTC)
        planned = IncidentEventRecord(new_id(), inc["id"], "NOTE", "d", {"b": 1, "a": 2}, now)
        uow.audit("incident_events", planned.id, before=None, after=None)
        uow.notify("INCIDENT_UPDATED", inc["id"])
        uow.notify("INCIDENT_EVENT_ADDED", planned.id)
        event, after = await add_event_touching_incident(
            EngineConnection(uow.conn), tenant_id="t1", event=planned, entry=uow.take_audit()
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
