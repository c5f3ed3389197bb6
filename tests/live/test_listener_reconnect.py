"""The LISTEN connection survives a database restart (private PostgreSQL; never the shared one)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from drivers import api_keys
from drivers import tables as t
from drivers.db import make_engine
from drivers.migrate import upgrade_head
from tests.factories import incident_row, insert_rows
from tests.helpers import gql, token
from tests.live.private_postgres import PrivatePostgres
from tests.live.servers import GatewayProcess
from tests.live.test_breaker_subscriptions import BREAKER_CHANGED
from tests.live.test_subscriptions import ACK, INCIDENT_CHANGED
from tests.live.wsclient import metric, subscriber, wait_for_subscribers, ws_connect


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        upgrade_head(server.url)
        yield server
    finally:
        server.destroy()


@pytest.fixture
def gateway_on_private(private_postgres, tmp_path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(
        private_postgres.url,
        tmp_path,
        "private",
        LISTENER_PING_SECONDS="0.5",
        LISTENER_BACKOFF_MAX_SECONDS="0.5",
        LOG_LEVEL="INFO",
    )
    gateway.start()
    try:
        gateway.wait_ready()
        yield gateway
    finally:
        gateway.stop()


async def _readyz(url: str) -> tuple[int, dict[str, Any]]:
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            response = await http.get("/readyz")
    except httpx.HTTPError:  # a slow answer under load: ask again
        return 0, {}
    return response.status_code, response.json()


async def _until(predicate, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_subscribers_keep_receiving_after_the_database_restarts(
    private_postgres, gateway_on_private
):
    url = gateway_on_private.url
    engine = make_engine(private_postgres.url)
    try:
        row = incident_row()
        await insert_rows(engine, t.incidents, [row])
        async with engine.begin() as conn:
            _, key = await api_keys.insert_api_key(conn, tenant_id="t1", role="VIEWER", name="k")
        await engine.dispose()
        assert await _readyz(url) == (
            200,
            {
                "status": "ok",
                "revision": (await _readyz(url))[1]["revision"],
                "listener": "connected",
            },
        )
        async with subscriber(url, token("t1", "VIEWER")) as ws:
            op = await ws.subscribe(INCIDENT_CHANGED)
            breaker = await ws.subscribe(BREAKER_CHANGED, {"name": "costsim_v2"})
            assert (await ws.next(breaker))["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
            await wait_for_subscribers(url, 2)
            # when the database goes down, the replica reports unready
            await asyncio.to_thread(private_postgres.stop)

            async def down() -> bool:
                return (await _readyz(url))[0] == 503 and await metric(
                    url, "gateway_listener_connected"
                ) == 0

            await _until(down)
            # an API key cannot be checked meanwhile: connection_init is closed with 4500
            async with ws_connect(url) as raw:
                init = {"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}}
                await raw.send(json.dumps(init))
                await raw.wait_closed()
                assert raw.close_code == 4500
            # and when it comes back, the listener reconnects by itself
            await asyncio.to_thread(private_postgres.start)

            async def up() -> bool:
                status, body = await _readyz(url)
                return status == 200 and body.get("listener") == "connected"

            await _until(up)
            assert await metric(url, "gateway_listener_reconnects_total") >= 1
            # state subscribers get the current state again (changes during the gap were lost)
            resent = (await ws.next(breaker))["data"]["circuitBreakerChanged"]
            assert resent["state"] == "CLOSED"
            # and incident subscribers an explicit RESYNC
            resync = (await ws.next(op))["data"]["incidentChanged"]
            assert (resync["kind"], resync["incidentId"]) == ("RESYNC", None)
            # then a change committed after the restart still reaches the same subscriber
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                body = await gql(http, ACK, {"id": row["id"]}, role="OPERATOR")
            assert "errors" not in body, body
            change = (await ws.next(op))["data"]["incidentChanged"]
            assert (change["kind"], change["incidentId"]) == ("ACKNOWLEDGED", row["id"])
        log = gateway_on_private.log()
        assert "LISTEN connection lost; reconnecting" in log
        assert "LISTEN connection re-established" in log
    finally:
        await engine.dispose()
