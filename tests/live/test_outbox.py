"""The change outbox and its publisher (drivers/outbox.py, gateway/publisher.py).

Only committed changes, in commit order, exactly once, across a publisher that stops, dies
mid-batch or fails over to another process; the table empties as it publishes. Each test has a
database of its own, so no other test's publisher holds the lock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from drivers import audit
from drivers import tables as t
from drivers.db import make_engine
from drivers.incidents import add_event_touching_incident, new_id
from drivers.listen import asyncpg_dsn
from drivers.one_statement import EngineConnection
from drivers.outbox import OUTBOX_LOCK_KEY, OutboxConnection
from drivers.records import IncidentEventRecord
from gateway.publisher import OutboxPublisher
from tests.conftest import own_database
from tests.factories import incident_row, insert_rows


@pytest.fixture
async def db(server_url: str) -> AsyncIterator[str]:
    async with own_database(server_url, "outbox") as url:
        yield url


@pytest.fixture
async def writer(db: str) -> AsyncIterator[AsyncEngine]:
    """An engine as the gateway makes it in outbox mode (the default: no option set)."""
    engine = make_engine(db, poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.fixture
async def received(db: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Every payload on the change channel, in arrival order (seq included)."""
    notes: list[dict[str, Any]] = []
    listener = await asyncpg.connect(asyncpg_dsn(db))
    await listener.add_listener(audit.NOTIFY_CHANNEL, lambda *a: notes.append(_note(a[3])))
    yield notes
    await listener.close()


def _note(payload: str) -> dict[str, Any]:
    """A payload without its "xid" (the writer's transaction id: a positive number, any value)."""
    note: dict[str, Any] = json.loads(payload)
    xid = note.pop("xid")
    assert isinstance(xid, int) and xid > 0, payload
    return note


@asynccontextmanager
async def publishing(db: str) -> AsyncIterator[OutboxPublisher]:
    publisher = OutboxPublisher(db, poll_seconds=0.01, lock_wait=1.0, backoff_initial=0.05)
    publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def change(engine: AsyncEngine, entity_id: str, *, commit: bool = True) -> None:
    """One writer transaction with one change notification, committed or rolled back."""
    async with engine.connect() as conn:
        await audit.notify(conn, tenant_id="t1", kind="INCIDENT_UPDATED", entity_id=entity_id)
        await (conn.commit() if commit else conn.rollback())


async def outbox_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM change_outbox"))).scalar_one())


def ids(notes: list[dict[str, Any]]) -> list[str]:
    return [n["id"] for n in notes]


async def test_only_committed_changes_are_published_once_and_the_table_empties(
    db, writer, received
):
    async with publishing(db) as publisher:
        await until(lambda: publisher.active)
        # when three writers change things and the second rolls back
        await change(writer, "a")
        await change(writer, "b", commit=False)
        await change(writer, "c")
        await until(lambda: len(received) >= 2)
        await asyncio.sleep(0.1)  # time for a wrong extra notification to arrive
    # then the two committed changes arrive, once each, numbered by their outbox rows
    assert received == [
        {"tenant_id": "t1", "kind": "INCIDENT_UPDATED", "id": "a", "seq": 1},
        {"tenant_id": "t1", "kind": "INCIDENT_UPDATED", "id": "c", "seq": 3},
    ]
    # and nothing published stays in the table
    assert await outbox_rows(writer) == 0


async def test_a_lower_id_that_commits_later_is_published_later(db, writer, received):
    async with publishing(db) as publisher:
        await until(lambda: publisher.active)
        # given a transaction that wrote its change (outbox id 1) but has not committed
        async with writer.connect() as slow:
            await audit.notify(slow, tenant_id="t1", kind="INCIDENT_UPDATED", entity_id="slow")
            # when a later one (id 2) commits first, it is published without waiting
            await change(writer, "fast")
            await until(lambda: len(received) == 1)
            assert ids(received) == ["fast"]
            # and the first is published once it commits
            await slow.commit()
        await until(lambda: len(received) == 2)
    # then subscribers saw them in commit order, not in id order
    assert [(n["id"], n["seq"]) for n in received] == [("fast", 2), ("slow", 1)]


async def test_transactions_touching_one_row_are_published_in_commit_order_not_xid_order(
    db, writer, received
):
    # given an incident row, and no publisher: both changes land in the same batch
    row = incident_row()
    await insert_rows(writer, t.incidents, [row])
    touch = text("UPDATE incidents SET updated_at = clock_timestamp() WHERE id = :id")
    xid = text("SELECT pg_current_xact_id()::text::bigint")
    async with writer.connect() as first, writer.connect() as second:
        # when the transaction that started first (lower xid) changes the row last
        first_xid = (await first.execute(xid)).scalar_one()
        second_xid = (await second.execute(xid)).scalar_one()
        await second.execute(touch, {"id": row["id"]})
        await audit.notify(second, tenant_id="t1", kind="INCIDENT_UPDATED", entity_id="second")
        await second.commit()
        await first.execute(touch, {"id": row["id"]})
        await audit.notify(first, tenant_id="t1", kind="INCIDENT_UPDATED", entity_id="first")
        await first.commit()
    assert first_xid < second_xid
    # and one publisher batch sends them
    conn = await OutboxConnection.open(db, lock_wait=1.0)
    try:
        assert await conn.wait_for_lock()
        assert await conn.publish(1000) == 2
    finally:
        await conn.close()
    await until(lambda: len(received) == 2)
    # then they go out in the order the row's changes committed
    assert ids(received) == ["second", "first"]


async def test_changes_written_while_no_publisher_runs_are_published_when_one_starts(
    db, writer, received
):
    # given a publisher that ran and was stopped
    async with publishing(db) as publisher:
        await until(lambda: publisher.active)
    # when changes commit while none runs
    await change(writer, "a")
    await change(writer, "b")
    await asyncio.sleep(0.1)
    assert received == []
    assert await outbox_rows(writer) == 2
    # then the next publisher sends them, in order, and the table empties
    async with publishing(db):
        await until(lambda: len(received) == 2)
    assert ids(received) == ["a", "b"]
    assert await outbox_rows(writer) == 0


async def _stall_outbox_deletes(engine: AsyncEngine) -> None:
    """Deletes from change_outbox hang while the table test_stall exists."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE test_stall ()"))
        await conn.execute(
            text(
                "CREATE FUNCTION test_slow_delete() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN IF to_regclass('test_stall') IS NOT NULL THEN PERFORM pg_sleep(30); "
                "END IF; RETURN OLD; END $$"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER test_slow_delete BEFORE DELETE ON change_outbox "
                "FOR EACH ROW EXECUTE FUNCTION test_slow_delete()"
            )
        )


async def _publisher_pid(engine: AsyncEngine) -> int | None:
    """The backend that holds the publisher lock, if any."""
    async with engine.connect() as conn:
        pid = await conn.execute(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND (classid::bigint << 32 | objid::bigint) = :key"
            ),
            {"key": OUTBOX_LOCK_KEY},
        )
        return pid.scalar_one_or_none()


async def _terminate(engine: AsyncEngine, pid: int) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def test_a_publisher_that_dies_mid_batch_publishes_nothing_and_loses_nothing(
    db, writer, received
):
    # given two committed changes and a publisher stuck inside its batch (deleting the rows)
    await change(writer, "a")
    await change(writer, "b")
    await _stall_outbox_deletes(writer)
    async with publishing(db):
        pid: int | None = None
        for _ in range(500):
            pid = await _publisher_pid(writer)
            if pid is not None:
                break
            await asyncio.sleep(0.01)
        assert pid is not None
        async with writer.connect() as conn:
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND query LIKE 'DELETE%'"
            )
            for _ in range(500):
                if (await conn.execute(waiting, {"pid": pid})).scalar_one():
                    break
                await asyncio.sleep(0.01)
        # when its backend dies before the batch commits
        await _terminate(writer, pid)
        async with writer.begin() as conn:
            await conn.execute(text("DROP TABLE test_stall"))
        # then the same process reconnects, takes the lock again and publishes both, once
        await until(lambda: len(received) == 2)
        await asyncio.sleep(0.1)
    assert ids(received) == ["a", "b"]
    assert await outbox_rows(writer) == 0


async def test_the_lock_fails_over_to_a_waiting_publisher(db, writer, received):
    async with publishing(db) as first:
        await until(lambda: first.active)
        async with publishing(db) as second:
            # given two publishers on one database: one holds the lock, the other waits
            await asyncio.sleep(0.2)
            assert not second.active
            await change(writer, "one")
            await until(lambda: len(received) == 1)
            # when the holder's connection dies
            pid = await _publisher_pid(writer)
            assert pid is not None
            await _terminate(writer, pid)
            # then the waiting one takes over at once
            await until(lambda: second.active, 2.0)
            await change(writer, "two")
            await until(lambda: len(received) == 2)
            await asyncio.sleep(0.1)
    # and every change went out exactly once
    assert ids(received) == ["one", "two"]
    assert await outbox_rows(writer) == 0


@pytest.mark.parametrize("mode", ["outbox", "direct"])
async def test_every_write_path_follows_the_engines_notify_mode(db, received, mode):
    # given an engine of the mode (the gateway sets the option from NOTIFY_MODE), no publisher
    engine = make_engine(db, poolclass=NullPool, execution_options={audit.NOTIFY_MODE_OPTION: mode})
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    event = IncidentEventRecord(new_id(), row["id"], "NOTE", "n", {}, datetime.now(UTC))
    try:
        async with engine.begin() as conn:
            # when the unit of work's closing statement, a job's notify and the one-statement
            # addIncidentEvent each publish
            await audit.insert_audit_and_notify(
                conn,
                tenant_id="t1",
                actor="a",
                actor_role="OPERATOR",
                operation="op",
                entity_type="incidents",
                entity_id=row["id"],
                before=None,
                after=None,
                request_id=None,
                notifications=[("INCIDENT_UPDATED", "u1"), ("INCIDENT_EVENT_ADDED", "e1")],
            )
            await audit.notify(conn, tenant_id="t1", kind="BREAKER_CHANGED", entity_id="b1")
            entry = audit.AuditEntry(
                tenant_id="t1",
                actor="a",
                actor_role="OPERATOR",
                operation="addIncidentEvent",
                request_id=None,
                entity_type="incident_events",
                entity_id=event.id,
                before=None,
                after=None,
                notifications=(("INCIDENT_UPDATED", row["id"]), ("INCIDENT_EVENT_ADDED", event.id)),
                mode=audit.notify_mode(conn),
            )
            await add_event_touching_incident(
                EngineConnection(conn), tenant_id="t1", event=event, entry=entry
            )
        expected = [
            ("INCIDENT_UPDATED", "u1"),
            ("INCIDENT_EVENT_ADDED", "e1"),
            ("BREAKER_CHANGED", "b1"),
            ("INCIDENT_UPDATED", row["id"]),
            ("INCIDENT_EVENT_ADDED", event.id),
        ]
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT tenant_id, kind, entity_id FROM change_outbox ORDER BY id")
                )
            ).all()
        if mode == "direct":
            # then each went out with the commit, in order, and the outbox stayed empty
            await until(lambda: len(received) == 5)
            assert [(n["kind"], n["id"]) for n in received] == expected
            assert rows == []
        else:
            # then each is an outbox row, in order, and nothing was sent yet
            await asyncio.sleep(0.1)
            assert received == []
            assert [(r.kind, r.entity_id) for r in rows] == expected
            assert {r.tenant_id for r in rows} == {"t1"}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("mode", ["outbox", "direct"])
async def test_a_change_s_row_is_kept_under_its_seq_as_committed_then_pruned(db, received, mode):
    # given an incident and an engine of the mode
    engine = make_engine(db, poolclass=NullPool, execution_options={audit.NOTIFY_MODE_OPTION: mode})
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    publisher = OutboxPublisher(db, poll_seconds=0.01, lock_wait=1.0, snapshot_seconds=0.5)
    publisher.start()
    try:
        # when two transactions change its title, each notifying after its write
        for title in ("first", "second"):
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE incidents SET title = :title WHERE id = :id"),
                    {"title": title, "id": row["id"]},
                )
                await audit.notify(
                    conn, tenant_id="t1", kind="INCIDENT_UPDATED", entity_id=row["id"]
                )
        await until(lambda: len(received) == 2)
        # then each notification names a snapshot of the row as that transaction committed it
        async with engine.connect() as conn:
            kept = (
                await conn.execute(
                    text("SELECT seq, snapshot->>'title' FROM change_snapshots ORDER BY seq")
                )
            ).all()
        assert [
            (n["seq"], title) for n, title in zip(received, ("first", "second"), strict=True)
        ] == [tuple(r) for r in kept]
        assert await outbox_rows(engine) == 0
        # and the publisher prunes them once they are older than snapshot_seconds

        async def left() -> int:
            async with engine.connect() as conn:
                return int(await conn.scalar(text("SELECT count(*) FROM change_snapshots")) or 0)

        for _ in range(300):
            if not await left():
                break
            await asyncio.sleep(0.01)
        assert await left() == 0
    finally:
        await publisher.stop()
        await engine.dispose()
