"""A burst of changes to one row, all committed before any subscriber reads: each arrives as ITS state.

The subscribers' gateway is frozen (its event loop blocked: no LISTEN read, no outbox poll, no
hub read) while another gateway on the same database commits N mutations of one breaker or one
incident. When it thaws, the N changes are all committed - through the outbox they go out in one
publisher batch, in direct mode their notifications wait in the LISTEN socket - so a hub that
read the row's current state would hand every subscriber the last state N times. Each
subscriber must get every intermediate state, in commit order, in both NOTIFY modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from drivers import tables as t
from drivers.db import make_engine
from gateway.publisher import OutboxPublisher
from gateway.settings import Settings
from tests.conftest import own_database
from tests.factories import incident_row, insert_rows
from tests.helpers import gql, token
from tests.live.servers import ThreadedServer
from tests.live.wsclient import GraphQLWS, metric, subscriber, wait_for_subscribers

BREAKER = """subscription { circuitBreakerChanged(name: "costsim_v2") {
    state reason consecutiveFailures } }"""
INCIDENTS = """subscription { incidentChanged {
    kind incident { id status postmortemArtifactId acknowledgedBy resolutionNotes } } }"""
DISABLE = """mutation($reason: String!) { disableCircuitBreaker(reason: $reason) { changed } }"""
ENABLE = """mutation($reason: String!) { enableCircuitBreaker(reason: $reason) { changed } }"""
ACK = """mutation($id: ID!) { acknowledgeIncident(id: $id, note: "on it") { status } }"""
STUB = """mutation($id: ID!) { createPostmortemStub(incidentId: $id) { postmortemArtifactId } }"""
RESOLVE = """mutation($id: ID!) {
    resolveIncident(id: $id, input: { notes: "fixed" }) { status } }"""
SUBSCRIBERS = 3  # per subscription: two share a fan-out group's stream, all get every state
TENANT = "bursts"


@pytest.fixture
async def database(server_url: str) -> AsyncIterator[str]:
    """A database of its own: no other test's publisher or writes interleave."""
    async with own_database(server_url, "bursts") as url:
        yield url


@contextlib.contextmanager
def frozen(server: ThreadedServer) -> Iterator[None]:
    """Block the server's event loop for the block (it reads nothing, publishes nothing)."""
    loop = server.server.servers[0].get_loop()
    entered, release = threading.Event(), threading.Event()

    def block() -> None:
        entered.set()
        release.wait(60)

    loop.call_soon_threadsafe(block)
    assert entered.wait(10), "the server's loop did not freeze"
    try:
        yield
    finally:
        release.set()


@contextlib.asynccontextmanager
async def gateways(
    live_settings: Settings, database: str, mode: str, *, publisher: bool = True
) -> AsyncIterator[tuple[ThreadedServer, httpx.AsyncClient]]:
    """The subscribers' gateway (it publishes the outbox) and a writer gateway's HTTP client."""
    common: dict[str, Any] = {"database_url": database, "notify_mode": mode}
    readers = live_settings.model_copy(update={**common, "outbox_publisher": publisher})
    writers = live_settings.model_copy(update={**common, "outbox_publisher": False})
    with ThreadedServer(readers) as server, ThreadedServer(writers) as writer:
        async with httpx.AsyncClient(base_url=writer.url, timeout=30) as http:
            yield server, http


async def _write(http: httpx.AsyncClient, document: str, variables: dict[str, Any]) -> None:
    body = await gql(http, document, variables, tenant=TENANT, role="ADMIN")
    assert "errors" not in body, body


async def _subscribe(
    stack: contextlib.AsyncExitStack, url: str, document: str
) -> list[tuple[GraphQLWS, str]]:
    ops = []
    for _ in range(SUBSCRIBERS):
        ws = await stack.enter_async_context(subscriber(url, token(TENANT, "VIEWER")))
        ops.append((ws, await ws.subscribe(document)))
    return ops


async def _received(ops: list[tuple[GraphQLWS, str]], count: int) -> list[list[dict[str, Any]]]:
    async def one(ws: GraphQLWS, op: str) -> list[dict[str, Any]]:
        return [(await ws.next(op, 30))["data"] for _ in range(count)]

    return list(await asyncio.gather(*(one(ws, op) for ws, op in ops)))


@pytest.mark.parametrize("mode", ["outbox", "direct"])
async def test_a_burst_of_breaker_changes_reaches_every_subscriber_state_by_state(
    live_settings, database, mode
):
    async with (
        gateways(live_settings, database, mode) as (server, http),
        contextlib.AsyncExitStack() as stack,
    ):
        ops = await _subscribe(stack, server.url, BREAKER)
        firsts = await _received(ops, 1)
        assert all(f == [_breaker("CLOSED", None)] for f in firsts)  # current state first
        await wait_for_subscribers(server.url, SUBSCRIBERS)
        published = await metric(server.url, "gateway_outbox_published_total")
        # when six state changes of one breaker commit while the subscribers' gateway is frozen
        reasons = [f"r{i}" for i in range(1, 7)]
        with frozen(server):
            for i, reason in enumerate(reasons):
                await _write(http, ENABLE if i % 2 else DISABLE, {"reason": reason})
        # then every subscriber gets the six states, each its own, in commit order
        expected = [
            _breaker("CLOSED", None) if i % 2 else _breaker("OPEN", reason)
            for i, reason in enumerate(reasons)
        ]
        assert await _received(ops, 6) == [expected] * SUBSCRIBERS
        assert all([await ws.silent(op, 0.2) for ws, op in ops])  # nothing twice
        sent = await metric(server.url, "gateway_outbox_published_total") - published
        assert sent == (6 if mode == "outbox" else 0)  # through the outbox, or not at all


@pytest.mark.parametrize("mode", ["outbox", "direct"])
async def test_a_burst_of_incident_changes_reaches_every_subscriber_state_by_state(
    live_settings, database, mode
):
    row = incident_row(TENANT)
    engine = make_engine(database, poolclass=NullPool)
    try:
        await insert_rows(engine, t.incidents, [row])
    finally:
        await engine.dispose()
    async with (
        gateways(live_settings, database, mode) as (server, http),
        contextlib.AsyncExitStack() as stack,
    ):
        ops = await _subscribe(stack, server.url, INCIDENTS)
        await wait_for_subscribers(server.url, SUBSCRIBERS)
        # when the incident is acknowledged, given a postmortem id and resolved, frozen
        with frozen(server):
            await _write(http, ACK, {"id": row["id"]})
            await _write(http, STUB, {"id": row["id"]})
            await _write(http, RESOLVE, {"id": row["id"]})
        got = await _received(ops, 3)
        # then each subscriber sees the three states in commit order, each as committed
        stub = got[0][1]["incidentChanged"]["incident"]["postmortemArtifactId"]
        assert stub is not None and stub.startswith("pm-")
        expected = [
            _incident("ACKNOWLEDGED", row["id"], "ACKNOWLEDGED", None, None),
            _incident("UPDATED", row["id"], "ACKNOWLEDGED", stub, None),
            # resolving keeps the stub (docs/decisions.md)
            _incident("RESOLVED", row["id"], "RESOLVED", stub, "fixed"),
        ]
        assert got == [expected] * SUBSCRIBERS
        assert all([await ws.silent(op, 0.2) for ws, op in ops])
    # and the snapshots the hub read are kept by seq, one per change, none for the events
    engine = make_engine(database, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            kinds = (
                await conn.execute(text("SELECT kind FROM change_snapshots ORDER BY seq"))
            ).scalars()
            assert list(kinds) == ["INCIDENT_ACKNOWLEDGED", "INCIDENT_UPDATED", "INCIDENT_RESOLVED"]
    finally:
        await engine.dispose()


async def test_a_late_joiner_gets_the_current_state_and_skips_the_changes_it_already_shows(
    live_settings, database
):
    async with gateways(live_settings, database, "outbox", publisher=False) as (server, http):
        # given three changes committed but not yet published (no publisher runs)
        for document, reason in ((DISABLE, "r1"), (ENABLE, "r2"), (DISABLE, "r3")):
            await _write(http, document, {"reason": reason})
        async with contextlib.AsyncExitStack() as stack:
            # when a subscriber joins: its current state already shows all three
            ops = await _subscribe(stack, server.url, BREAKER)
            assert await _received(ops, 1) == [[_breaker("OPEN", "r3")]] * SUBSCRIBERS
            await wait_for_subscribers(server.url, SUBSCRIBERS)
            # and only then are the three published, and one more change commits
            publisher = OutboxPublisher(database, poll_seconds=0.01)
            publisher.start()
            try:
                engine = make_engine(database, poolclass=NullPool)
                try:
                    for _ in range(500):
                        async with engine.connect() as conn:
                            left = await conn.scalar(text("SELECT count(*) FROM change_outbox"))
                        if not left:
                            break
                        await asyncio.sleep(0.01)
                    assert left == 0
                finally:
                    await engine.dispose()
                await _write(http, ENABLE, {"reason": "r4"})
                # then the three it already showed are skipped (never OPEN r1 after OPEN r3),
                # and the new one arrives
                assert await _received(ops, 1) == [[_breaker("CLOSED", None)]] * SUBSCRIBERS
                assert all([await ws.silent(op, 0.2) for ws, op in ops])
            finally:
                await publisher.stop()


def _breaker(state: str, reason: str | None) -> dict[str, Any]:
    return {"circuitBreakerChanged": {"state": state, "reason": reason, "consecutiveFailures": 0}}


def _incident(
    kind: str, id_: str, status: str, stub: str | None, notes: str | None
) -> dict[str, Any]:
    incident = {
        "id": id_,
        "status": status,
        "postmortemArtifactId": stub,
        "acknowledgedBy": "alice",
        "resolutionNotes": notes,
    }
    return {"incidentChanged": {"kind": kind, "incident": incident}}
