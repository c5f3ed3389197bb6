"""Subscribers of an equal operation share one execution and one payload per event."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from drivers import tables as t
from drivers.audit import NOTIFY_CHANNEL
from gateway import fanout
from gateway.notifications import NotificationHub
from resolvers.auth import Principal, Role
from resolvers.context import Context, Database
from schema import Limits, build_schema
from tests.factories import incident_row, insert_rows
from tests.helpers import gql, token
from tests.live.wsclient import metric, subscriber, wait_for_subscribers

STATE = """subscription($name: String) { circuitBreakerChanged(name: $name) {
    name state isOpen reason } }"""
STATE_AND_INCIDENT = """subscription($name: String) { circuitBreakerChanged(name: $name) {
    name state currentIncident { severity reason } } }"""
DISABLE = """mutation($reason: String!) { disableCircuitBreaker(reason: $reason) { changed } }"""
ENABLE = """mutation { enableCircuitBreaker(reason: "ok") { changed } }"""
EXECUTIONS = "gateway_subscription_executions_total"


def test_the_group_key_is_principal_document_operation_and_variables() -> None:
    viewer = Principal("t1", "ann", Role.VIEWER)
    key = fanout.share_key(viewer, STATE, None, {"name": "x", "other": 1})
    assert key == fanout.share_key(viewer, STATE, None, {"other": 1, "name": "x"})
    assert key != fanout.share_key(Principal("t2", "ann", Role.VIEWER), STATE, None, {"name": "x"})
    assert key != fanout.share_key(Principal("t1", "ann", Role.ADMIN), STATE, None, {"name": "x"})
    assert key != fanout.share_key(viewer, STATE_AND_INCIDENT, None, {"name": "x", "other": 1})
    assert key != fanout.share_key(viewer, STATE, "Named", {"name": "x", "other": 1})
    assert key != fanout.share_key(viewer, STATE, None, {"name": "y", "other": 1})
    assert fanout.share_key(None, STATE, None, None) is None


async def test_equal_operations_share_one_execution_and_others_get_their_own(live_server, http):
    tenant, other_tenant = "fanout-a", "fanout-b"
    async with contextlib.AsyncExitStack() as stack:
        viewers = [
            await stack.enter_async_context(subscriber(live_server.url, token(tenant, "VIEWER")))
            for _ in range(5)
        ]
        # same tenant, a different selection; the same selection without variables; another tenant
        wider, unnamed, foreign = [
            await stack.enter_async_context(subscriber(live_server.url, token(tn, "VIEWER")))
            for tn in (tenant, tenant, other_tenant)
        ]
        ops = [await ws.subscribe(STATE, {"name": "costsim_v2"}) for ws in viewers]
        wider_op = await wider.subscribe(STATE_AND_INCIDENT, {"name": "costsim_v2"})
        unnamed_op = await unnamed.subscribe(STATE)
        foreign_op = await foreign.subscribe(STATE, {"name": "costsim_v2"})
        # current state first, for everybody
        for ws, op in [*zip(viewers, ops, strict=True), (wider, wider_op), (unnamed, unnamed_op)]:
            assert (await ws.next(op))["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
        assert (await foreign.next(foreign_op))["data"]["circuitBreakerChanged"]["state"] == (
            "CLOSED"
        )
        await wait_for_subscribers(live_server.url, 8)
        before = await metric(live_server.url, EXECUTIONS)

        body = await gql(http, DISABLE, {"reason": "shared"}, tenant=tenant, role="ADMIN")
        assert "errors" not in body, body
        payloads = [await ws.next(op) for ws, op in zip(viewers, ops, strict=True)]
        wide = await wider.next(wider_op)
        every = await unnamed.next(unnamed_op)

        # the five equal operations got the same payload from ONE execution; the wider
        # selection and the operation without variables one each: three in all
        assert await metric(live_server.url, EXECUTIONS) - before == 3
        assert all(p == payloads[0] for p in payloads)
        assert payloads[0] == {
            "data": {
                "circuitBreakerChanged": {
                    "name": "costsim_v2",
                    "state": "OPEN",
                    "isOpen": True,
                    "reason": "shared",
                }
            }
        }
        assert wide["data"]["circuitBreakerChanged"]["currentIncident"] == {
            "severity": "P2",
            "reason": "shared",
        }
        assert every["data"]["circuitBreakerChanged"]["state"] == "OPEN"
        # the other tenant's subscriber of the same document saw nothing
        assert await foreign.silent(foreign_op, 0.2)
        body = await gql(http, ENABLE, tenant=tenant, role="ADMIN")
        assert "errors" not in body, body
        closed = [await ws.next(op) for ws, op in zip(viewers, ops, strict=True)]
        assert {p["data"]["circuitBreakerChanged"]["state"] for p in closed} == {"CLOSED"}
        # and `complete` still ends one operation without touching its group
        await viewers[0].ws.send(orjson.dumps({"id": ops[0], "type": "complete"}).decode())
        await wait_for_subscribers(live_server.url, 7)


async def _notify(engine: Any, payload: dict[str, str]) -> None:
    async with engine.begin() as conn:
        await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, orjson.dumps(payload).decode())))


async def test_a_slow_member_of_a_group_is_cut_off_and_the_others_keep_sharing(
    database_url, engine
):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    hub = NotificationHub(database_url, engine, queue_size=1)
    await hub.start()
    schema = fanout.sharing_schema(
        build_schema(Limits(max_depth=10, max_aliases=30, max_tokens=2000, max_cost=50_000))
    )
    query = "subscription { incidentChanged { kind incidentId incident { id title } } }"
    principal = Principal("t1", "viewer", Role.VIEWER)
    extensions = {fanout.SHARE_KEY: fanout.share_key(principal, query, None, None)}

    async def stream() -> Any:
        ctx = Context(
            principal=principal,
            db=Database(primary=engine, reads=engine),
            request_id="r1",
            feed=hub,
        )
        return await schema.subscribe(query, context_value=ctx, operation_extensions=extensions)

    try:
        fast, other, slow = [await stream() for _ in range(3)]
        pending = [asyncio.ensure_future(anext(s)) for s in (fast, other, slow)]
        for _ in range(500):
            if hub.subscriber_count() == 3:
                break
            await asyncio.sleep(0.01)
        note = {"tenant_id": "t1", "kind": "INCIDENT_UPDATED", "id": row["id"]}
        before = fanout.results.executions
        await _notify(engine, note)
        first = [await asyncio.wait_for(p, 5) for p in pending]
        assert [r.data for r in first] == [first[0].data] * 3
        assert first[0].data is first[1].data  # literally one result
        assert fanout.results.executions - before == 1
        # the slow one stops reading; the fast ones read each of three more changes
        received = []
        for _ in range(3):
            await _notify(engine, note)
            received += [await asyncio.wait_for(anext(s), 5) for s in (fast, other)]
        assert all(r.data == first[0].data for r in received)
        assert fanout.results.executions - before == 4  # one per event, not one per subscriber
        cut = await asyncio.wait_for(anext(slow), 5)
        assert cut.data is None
        assert cut.errors is not None
        assert cut.errors[0].extensions == {
            "code": "SERVICE_UNAVAILABLE",
            "reason": "SLOW_SUBSCRIBER",
        }
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(slow), 5)
        assert hub.subscriber_count() == 2
        for s in (fast, other):
            await s.aclose()
    finally:
        await hub.stop()
