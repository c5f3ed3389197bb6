"""No silent loss: a LISTEN reconnect reaches every subscriber; dead credentials end sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import api_keys
from drivers import tables as t
from drivers.listen import LISTEN_APPLICATION_NAME
from gateway.settings import Settings
from tests.factories import incident_row, insert_rows
from tests.helpers import JWT_SECRET, error_codes, gql, token
from tests.live.servers import ThreadedServer
from tests.live.test_breaker_subscriptions import BREAKER_CHANGED
from tests.live.test_sse import event_stream
from tests.live.test_subscriptions import ACK, EVENT_ADDED, INCIDENT_CHANGED
from tests.live.wsclient import GraphQLWS, metric, subscriber, wait_for_subscribers

KEY_INTERVAL = 0.5  # API_KEY_CACHE_SECONDS of this module's server


@pytest.fixture(scope="module")
def server(live_settings: Settings) -> Iterator[ThreadedServer]:
    """Its own server: quick LISTEN pings and reconnects, API keys re-checked twice a second."""
    settings = live_settings.model_copy(
        update={
            "listener_ping_seconds": 0.5,
            "listener_backoff_max_seconds": 0.5,
            "api_key_cache_seconds": KEY_INTERVAL,
        }
    )
    with ThreadedServer(settings) as server:
        yield server


async def _kill_listener(engine: AsyncEngine) -> int:
    """pg_terminate_backend on the LISTEN connections of this test database."""
    async with engine.connect() as conn:
        killed = await conn.scalar(
            text(
                # materialised first, so that nothing else is ever terminated
                "WITH listen AS MATERIALIZED (SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = :name "
                "AND pid <> pg_backend_pid()) "
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM listen"
            ),
            {"name": LISTEN_APPLICATION_NAME},
        )
    return int(killed or 0)


async def _api_key(engine: AsyncEngine, name: str) -> tuple[str, str]:
    async with engine.begin() as conn:
        record, key = await api_keys.insert_api_key(conn, tenant_id="t1", role="VIEWER", name=name)
    return record.id, key


async def _revoke(engine: AsyncEngine, key_id: str) -> None:
    async with engine.begin() as conn:
        await api_keys.revoke_api_key(conn, key_id=key_id)


async def _closed(ws: GraphQLWS, within: float) -> tuple[int | None, str | None]:
    """Wait for the server to close the socket; its close code and reason."""
    await asyncio.wait_for(ws.ws.wait_closed(), within)
    return ws.ws.close_code, ws.ws.close_reason


async def test_after_the_listener_reconnects_every_subscriber_is_told(server, engine):
    # given an incident, and subscribers of breaker state, incident changes and its timeline
    row = incident_row(severity="HIGH")
    await insert_rows(engine, t.incidents, [row])
    async with subscriber(server.url, token("t1", "VIEWER")) as ws:
        breaker = await ws.subscribe(BREAKER_CHANGED, {"name": "costsim_v2"})
        assert (await ws.next(breaker))["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
        incidents = await ws.subscribe(INCIDENT_CHANGED)
        timeline = await ws.subscribe(EVENT_ADDED, {"id": row["id"]})
        await wait_for_subscribers(server.url, 3)
        reconnects = await metric(server.url, "gateway_listener_reconnects_total")
        before = datetime.now().astimezone()
        # when the LISTEN backend is killed
        assert await _kill_listener(engine) >= 1
        # then the listener comes back and the breaker subscriber gets the current state again
        resent = await ws.next(breaker, within=15)
        assert resent["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
        # (the counter is per process: other servers of this test process on the same database
        # lose their LISTEN backend too and may count theirs)
        assert await metric(server.url, "gateway_listener_reconnects_total") >= reconnects + 1
        # the incident subscriber gets an explicit RESYNC (no incident: re-read what you show)
        change = (await ws.next(incidents))["data"]["incidentChanged"]
        assert (change["kind"], change["incident"], change["incidentId"]) == ("RESYNC", None, None)
        assert datetime.fromisoformat(change["changedAt"]) >= before
        # the timeline subscriber, which cannot be told in-band, is ended with a reason
        cut = await ws.next(timeline)
        assert cut["data"] is None
        assert cut["errors"][0]["extensions"] == {
            "code": "SERVICE_UNAVAILABLE",
            "reason": "LISTENER_RESYNC",
        }
        assert (await ws.message(timeline))["type"] == "complete"
        # and a change committed after the reconnect still reaches the incident subscriber
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            body = await gql(http, ACK, {"id": row["id"]}, role="OPERATOR")
        assert "errors" not in body, body
        change = (await ws.next(incidents))["data"]["incidentChanged"]
        assert (change["kind"], change["incidentId"]) == ("ACKNOWLEDGED", row["id"])
        assert await ws.silent(breaker, 0.3)


async def test_equal_incident_subscribers_share_one_resync_execution(server, engine):
    # given two sockets with the same principal and the same operation
    async with (
        subscriber(server.url, token("t1", "VIEWER")) as one,
        subscriber(server.url, token("t1", "VIEWER")) as two,
    ):
        ops = [await one.subscribe(INCIDENT_CHANGED), await two.subscribe(INCIDENT_CHANGED)]
        await wait_for_subscribers(server.url, 2)
        executions = await metric(server.url, "gateway_subscription_executions_total")
        # when the listener reconnects
        assert await _kill_listener(engine) >= 1
        changes = [
            (await ws.next(op, within=15))["data"]["incidentChanged"]
            for ws, op in zip((one, two), ops, strict=True)
        ]
    # then both get the same RESYNC, executed once for both
    assert changes[0] == changes[1]
    assert changes[0]["kind"] == "RESYNC"
    assert await metric(server.url, "gateway_subscription_executions_total") == executions + 1


async def test_a_revoked_api_key_closes_its_sockets_with_4403(server, engine):
    # given two sockets on one API key and one on another key
    revoked_id, revoked = await _api_key(engine, "revoked")
    _, kept = await _api_key(engine, "kept")
    async with (
        subscriber(server.url, revoked) as one,
        subscriber(server.url, revoked) as two,
        subscriber(server.url, kept) as other,
    ):
        for ws in (one, two, other):
            op = await ws.subscribe(BREAKER_CHANGED, {"name": "costsim_v2"})
            assert (await ws.next(op))["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
        # when the first key is revoked
        await _revoke(engine, revoked_id)
        started = time.monotonic()
        # then both of its sockets close with 4403 within the interval (generous bound)
        for ws in (one, two):
            assert await _closed(ws, within=KEY_INTERVAL + 5) == (4403, "Forbidden: key revoked")
        assert time.monotonic() - started < KEY_INTERVAL + 5
        # while the other key's socket stays open and working
        await asyncio.sleep(2 * KEY_INTERVAL)
        assert other.ws.close_code is None
        again = await other.subscribe(BREAKER_CHANGED, {"name": "costsim_v2"})
        assert (await other.next(again))["data"]["circuitBreakerChanged"]["state"] == "CLOSED"


async def test_a_jwt_closes_its_socket_at_exp(server):
    # given a socket authenticated by a JWT that expires in 2 seconds
    exp = int(time.time()) + 2
    claims = {"sub": "eve", "tenant_id": "t1", "role": "VIEWER", "exp": exp}
    async with subscriber(server.url, jwt.encode(claims, JWT_SECRET, algorithm="HS256")) as ws:
        op = await ws.subscribe(BREAKER_CHANGED, {"name": "costsim_v2"})
        assert (await ws.next(op))["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
        # then it is closed with 4403 once exp has passed, not before
        assert await _closed(ws, within=10) == (4403, "Forbidden: token expired")
        assert time.time() >= exp


async def test_a_revoked_api_key_ends_its_event_stream_with_forbidden(server, engine):
    # given an SSE subscription on an API key
    key_id, key = await _api_key(engine, "sse")
    async with event_stream(server.url, BREAKER_CHANGED, {"name": "costsim_v2"}, auth=key) as s:
        assert (await s.next())["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
        # when the key is revoked
        await _revoke(engine, key_id)
        # then the stream ends: a FORBIDDEN `next`, `complete`, end of body
        ended = await s.next()
        assert error_codes(ended) == ["FORBIDDEN"]
        assert ended["errors"][0]["message"] == "Forbidden: key revoked"
        assert await s.item(within=KEY_INTERVAL + 5) == ("complete", None)
        assert await s.item() == ("end", None)
