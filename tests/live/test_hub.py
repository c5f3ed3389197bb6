"""The notification hub on its own, against real PostgreSQL: slow subscribers, bad payloads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import orjson
import pytest
from sqlalchemy import func, select

from drivers import tables as t
from drivers.audit import NOTIFY_CHANNEL
from gateway.notifications import NotificationHub
from resolvers.auth import Principal, Role
from resolvers.context import Context, Database
from resolvers.subscriptions import INCIDENT_KINDS, SubscriberTooSlow
from schema import Limits, build_schema
from tests.factories import incident_row, insert_rows


async def _notify(engine, payload: object) -> None:
    raw = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    async with engine.begin() as conn:
        await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, raw)))


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 5 s")


async def _hub(database_url: str, engine, **options) -> NotificationHub:
    hub = NotificationHub(database_url, engine, **options)
    await hub.start()
    assert hub.state == "connected"
    return hub


async def test_a_slow_subscriber_is_cut_off_and_the_others_keep_receiving(database_url, engine):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    hub = await _hub(database_url, engine, queue_size=2)
    try:
        kinds = frozenset(INCIDENT_KINDS)
        async with (
            hub.subscribe("t1", kinds, lambda _: True) as slow,
            hub.subscribe("t1", kinds, lambda _: True) as fast,
        ):
            received = []
            for _ in range(3):
                await _notify(
                    engine, {"tenant_id": "t1", "kind": "INCIDENT_UPDATED", "id": row["id"]}
                )
                received.append(await asyncio.wait_for(anext(fast), 5))
            assert [c.id for c in received] == [row["id"]] * 3
            # the slow one never read: its third change overflowed the queue of 2
            with pytest.raises(SubscriberTooSlow) as caught:
                await asyncio.wait_for(anext(slow), 5)
            assert caught.value.extensions == {
                "code": "SERVICE_UNAVAILABLE",
                "reason": "SLOW_SUBSCRIBER",
            }
            assert hub.subscriber_count() == 1
        assert hub.subscriber_count() == 0
    finally:
        await hub.stop()


async def test_malformed_unknown_missing_and_foreign_notifications_are_skipped(
    database_url, engine
):
    row = incident_row("t2")
    await insert_rows(engine, t.incidents, [row])
    hub = await _hub(database_url, engine)
    try:
        async with hub.subscribe("t1", frozenset(INCIDENT_KINDS), lambda _: True) as stream:
            await _notify(engine, "not json")
            await _notify(engine, {"tenant_id": "t1"})
            await _notify(engine, {"tenant_id": "t1", "kind": "SOMETHING_ELSE", "id": "x"})
            await _notify(engine, {"tenant_id": "t1", "kind": "INCIDENT_UPDATED", "id": "missing"})
            # t2's incident id under t1's tenant: the load is tenant-filtered, so nothing
            await _notify(engine, {"tenant_id": "t1", "kind": "INCIDENT_UPDATED", "id": row["id"]})
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(stream), 0.4)
    finally:
        await hub.stop()
    assert hub.state == "stopped"


async def test_one_statement_per_notification_however_many_subscribers(
    database_url, engine, count_statements
):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    hub = await _hub(database_url, engine)
    try:
        kinds = frozenset(INCIDENT_KINDS)
        for subscribers in (1, 10):
            async with contextlib.AsyncExitStack() as stack:
                streams = [
                    await stack.enter_async_context(hub.subscribe("t1", kinds, lambda _: True))
                    for _ in range(subscribers)
                ]
                count_statements.reset()
                await _notify(
                    engine, {"tenant_id": "t1", "kind": "INCIDENT_UPDATED", "id": row["id"]}
                )
                changes = [await asyncio.wait_for(anext(s), 5) for s in streams]
                assert {c.record.id for c in changes} == {row["id"]}
                # the same record object for everyone: loaded once
                assert len({id(c.record) for c in changes}) == 1
                loads = [s for s in count_statements.statements if "FROM incidents" in s]
                assert len(loads) == 1, (subscribers, loads)
    finally:
        await hub.stop()


async def test_a_cut_off_subscription_ends_with_a_coded_error(database_url, engine):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    hub = await _hub(database_url, engine, queue_size=1)
    schema = build_schema(Limits(max_depth=10, max_aliases=30, max_tokens=2000, max_cost=50_000))
    ctx = Context(
        principal=Principal("t1", "viewer", Role.VIEWER),
        db=Database(primary=engine, reads=engine),
        request_id="r1",
        feed=hub,
    )
    try:
        stream = await schema.subscribe(
            "subscription { incidentChanged { kind incidentId } }", context_value=ctx
        )
        # the first change is delivered normally
        first = asyncio.ensure_future(anext(stream))
        await _until(lambda: hub.subscriber_count() == 1)
        note = {"tenant_id": "t1", "kind": "INCIDENT_UPDATED", "id": row["id"]}
        await _notify(engine, note)
        result = await asyncio.wait_for(first, 5)
        assert result.data == {"incidentChanged": {"kind": "UPDATED", "incidentId": row["id"]}}
        # then it stops reading while three more arrive: the queue of 1 overflows
        for _ in range(3):
            await _notify(engine, note)
        await _until(lambda: hub.subscriber_count() == 0)
        result = await asyncio.wait_for(anext(stream), 5)
        assert result.data is None
        assert result.errors is not None
        [error] = result.errors
        assert error.extensions == {"code": "SERVICE_UNAVAILABLE", "reason": "SLOW_SUBSCRIBER"}
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(stream), 5)
    finally:
        await hub.stop()
