"""Fan-out groups over real WebSockets: parked subscribers served by their group's one stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, update
from websockets.asyncio.client import connect

from drivers import tables as t
from drivers.audit import NOTIFY_CHANNEL
from gateway import groups
from tests.factories import incident_row, insert_rows
from tests.helpers import gql, token
from tests.live.servers import ThreadedServer
from tests.live.wsclient import GraphQLWS, metric, subscriber, wait_for_subscribers, ws_url

STATE = """subscription($name: String) { circuitBreakerChanged(name: $name) {
    name state reason } }"""
DISABLE = """mutation($reason: String!) { disableCircuitBreaker(reason: $reason) { changed } }"""
ENABLE = """mutation { enableCircuitBreaker(reason: "ok") { changed } }"""
CHANGED = "subscription { incidentChanged { kind incident { title triggerValue } } }"
PARKED = "gateway_fanout_parked"


async def _until(url: str, name: str, value: float, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while (current := await metric(url, name)) != value:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{name} is {current}, expected {value}")
        await asyncio.sleep(0.05)


def _state(payload: dict[str, Any]) -> tuple[str, str | None]:
    breaker = payload["data"]["circuitBreakerChanged"]
    return breaker["state"], breaker["reason"]


async def test_200_subscribers_of_one_operation_get_every_event_in_order_from_one_stream(
    live_server, http
):
    tenant = "groups-many"
    url = live_server.url
    async with contextlib.AsyncExitStack() as stack:
        clients: list[GraphQLWS] = []
        for _ in range(10):  # 20 handshakes at a time: the suite's other worker keeps a core busy
            clients += await asyncio.gather(
                *(
                    stack.enter_async_context(subscriber(url, token(tenant, "VIEWER")))
                    for _ in range(20)
                )
            )
        ops = [await c.subscribe(STATE, {"name": "costsim_v2"}) for c in clients]
        firsts = await asyncio.gather(*(c.next(op, 30) for c, op in zip(clients, ops, strict=True)))
        assert {_state(p) for p in firsts} == {("CLOSED", None)}  # current state first
        await wait_for_subscribers(url, 200, within=30)
        await _until(url, PARKED, 200)  # every one caught up and handed to the group's stream
        executions = await metric(url, "gateway_subscription_executions_total")
        frames = await metric(url, "gateway_fanout_frames_total")

        # Back-to-back writes, no event awaited in between: they may land in one outbox batch
        # and commit before any subscriber reads, yet each reaches them as its own state.
        for document, variables in (
            (DISABLE, {"reason": "r1"}),
            (ENABLE, None),
            (DISABLE, {"reason": "r3"}),
        ):
            body = await gql(http, document, variables, tenant=tenant, role="ADMIN")
            assert "errors" not in body, body

        async def three(c: GraphQLWS, op: str) -> list[tuple[str, str | None]]:
            return [_state(await c.next(op, 30)) for _ in range(3)]

        seen = await asyncio.gather(*(three(c, op) for c, op in zip(clients, ops, strict=True)))
        # every subscriber: each event once, in commit order
        assert all(s == [("OPEN", "r1"), ("CLOSED", None), ("OPEN", "r3")] for s in seen)
        # one execution per event for the whole group, one frame per event and socket
        assert await metric(url, "gateway_subscription_executions_total") - executions == 3
        assert await metric(url, "gateway_fanout_frames_total") - frames == 600
        assert await clients[0].silent(ops[0], 0.2)  # nothing more, nothing twice
        body = await gql(http, ENABLE, tenant=tenant, role="ADMIN")
        assert "errors" not in body, body
    await _until(url, PARKED, 0)


async def test_a_lone_subscriber_keeps_its_own_stream_until_a_second_one_comes(live_server, http):
    tenant = "groups-lone"
    url = live_server.url
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(subscriber(url, token(tenant, "VIEWER")))
        first_op = await first.subscribe(STATE, {"name": "costsim_v2"})
        assert _state(await first.next(first_op)) == ("CLOSED", None)
        groups_before = await metric(url, "gateway_fanout_groups")
        body = await gql(http, DISABLE, {"reason": "alone"}, tenant=tenant, role="ADMIN")
        assert "errors" not in body, body
        assert _state(await first.next(first_op)) == ("OPEN", "alone")
        # no shared stream for one subscriber: nothing parked, no group running
        assert await metric(url, PARKED) == 0
        assert await metric(url, "gateway_fanout_groups") == groups_before
        second = await stack.enter_async_context(subscriber(url, token(tenant, "VIEWER")))
        second_op = await second.subscribe(STATE, {"name": "costsim_v2"})
        assert _state(await second.next(second_op)) == ("OPEN", "alone")
        await _until(url, PARKED, 2)  # the second one started the group's stream; both parked
        assert await metric(url, "gateway_fanout_groups") == groups_before + 1
        body = await gql(http, ENABLE, tenant=tenant, role="ADMIN")
        assert "errors" not in body, body
        for c, op in ((first, first_op), (second, second_op)):
            assert _state(await c.next(op)) == ("CLOSED", None)
            assert await c.silent(op, 0.2)


async def test_a_late_joiner_gets_the_current_state_first_then_the_group_s_events(
    live_server, http
):
    tenant = "groups-late"
    url = live_server.url
    async with contextlib.AsyncExitStack() as stack:
        early = [
            await stack.enter_async_context(subscriber(url, token(tenant, "VIEWER")))
            for _ in range(3)
        ]
        ops = [await c.subscribe(STATE, {"name": "costsim_v2"}) for c in early]
        for c, op in zip(early, ops, strict=True):
            assert _state(await c.next(op)) == ("CLOSED", None)
        await _until(url, PARKED, 3)
        body = await gql(http, DISABLE, {"reason": "before"}, tenant=tenant, role="ADMIN")
        assert "errors" not in body, body
        for c, op in zip(early, ops, strict=True):
            assert _state(await c.next(op)) == ("OPEN", "before")

        # a late joiner of the same operation: its own current state first (already OPEN) ...
        late = await stack.enter_async_context(subscriber(url, token(tenant, "VIEWER")))
        late_op = await late.subscribe(STATE, {"name": "costsim_v2"})
        assert _state(await late.next(late_op)) == ("OPEN", "before")
        await _until(url, PARKED, 4)  # ... then it joins the group
        body = await gql(http, ENABLE, tenant=tenant, role="ADMIN")
        assert "errors" not in body, body
        # ... and gets the next event once, like the members that were there before
        for c, op in [*zip(early, ops, strict=True), (late, late_op)]:
            assert _state(await c.next(op)) == ("CLOSED", None)
            assert await c.silent(op, 0.2)
        # `complete` ends one member; the group goes on for the others
        await late.ws.send(orjson.dumps({"id": late_op, "type": "complete"}).decode())
        await _until(url, PARKED, 3)
        body = await gql(http, DISABLE, {"reason": "after"}, tenant=tenant, role="ADMIN")
        assert "errors" not in body, body
        for c, op in zip(early, ops, strict=True):
            assert _state(await c.next(op)) == ("OPEN", "after")
        assert await late.silent(late_op, 0.2)
        body = await gql(http, ENABLE, tenant=tenant, role="ADMIN")
        assert "errors" not in body, body


async def _change(engine: Any, row_id: str, title: str) -> None:
    """Commit a new title and the notification a mutation would send."""
    note = orjson.dumps({"tenant_id": "groups-slow", "kind": "INCIDENT_UPDATED", "id": row_id})
    async with engine.begin() as conn:
        await conn.execute(
            update(t.incidents).where(t.incidents.c.id == row_id).values(title=title)
        )
        await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, note.decode())))


async def test_a_slow_socket_is_cut_off_alone_and_the_others_get_every_event(
    live_settings, engine, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(groups, "_MIN_BACKLOG", 0)  # cut off at queue_size unsent frames
    row = incident_row("groups-slow", trigger_value="x" * 32_000)  # ~32 KB frames
    await insert_rows(engine, t.incidents, [row])
    viewer = token("groups-slow", "VIEWER")
    with ThreadedServer(live_settings.model_copy(update={"subscriber_queue_size": 4})) as server:
        url = server.url
        async with contextlib.AsyncExitStack() as stack:
            fast = [await stack.enter_async_context(subscriber(url, viewer)) for _ in range(3)]
            fast_ops = [await c.subscribe(CHANGED) for c in fast]
            # the slow one: a tiny receive buffer, and it stops reading after the subscribe
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
            sock.connect(("127.0.0.1", server.port))
            slow = await stack.enter_async_context(
                connect(ws_url(url), sock=sock, subprotocols=["graphql-transport-ws"], max_queue=1)  # type: ignore[list-item]
            )
            init = {"type": "connection_init", "payload": {"authorization": f"Bearer {viewer}"}}
            await slow.send(json.dumps(init))
            assert json.loads(await slow.recv())["type"] == "connection_ack"
            await slow.send(
                json.dumps({"id": "s", "type": "subscribe", "payload": {"query": CHANGED}})
            )
            await wait_for_subscribers(url, 4)
            await _until(url, PARKED, 4)
            # and a small send buffer on the server's side of it (no autotuning to 4 MiB)
            (transport,) = [
                m.sink.protocol.transport
                for g in list(groups._groups.values())
                for m in g.members
                if m.sink.operation.id == "s"
            ]
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            dropped = await metric(url, "gateway_subscribers_dropped_total")

            sent = 0
            while await metric(url, "gateway_subscribers_dropped_total") == dropped:
                assert sent < 300, "the slow socket was never cut off"
                await _change(engine, row["id"], f"n{sent}")
                sent += 1
                if sent % 10 == 0:
                    await asyncio.sleep(0.05)
            await wait_for_subscribers(url, 3)
            for extra in range(3):  # the others go on
                await _change(engine, row["id"], f"n{sent + extra}")
            sent += 3
            titles = [f"n{i}" for i in range(sent)]
            for c, op in zip(fast, fast_ops, strict=True):
                got = [
                    (await c.next(op, 10))["data"]["incidentChanged"]["incident"]["title"]
                    for _ in titles
                ]
                assert got == titles  # every event, in order
                assert await c.silent(op, 0.2)

            # the slow one, reading again: a prefix of the events in order, then the cut-off
            messages = []
            while True:
                message = json.loads(await asyncio.wait_for(slow.recv(), 10))
                messages.append(message)
                if message["type"] == "complete":
                    break
            *events, cut, _ = messages
            assert [
                m["payload"]["data"]["incidentChanged"]["incident"]["title"] for m in events
            ] == titles[: len(events)]
            assert len(events) < sent
            assert cut["type"] == "next"
            assert cut["payload"]["errors"][0]["extensions"] == {
                "code": "SERVICE_UNAVAILABLE",
                "reason": "SLOW_SUBSCRIBER",
            }
