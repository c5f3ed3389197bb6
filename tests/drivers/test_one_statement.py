"""drivers/one_statement.py: the asyncpg pool and the SQLAlchemy connection answer, are counted
and fail alike."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import audit
from drivers.db import make_engine
from drivers.errors import Unavailable, UniqueViolation, map_db_errors
from drivers.one_statement import (
    EngineConnection,
    StatementConnection,
    StatementPool,
    create_statement_pool,
)
from tests.helpers import StatementCounter


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[StatementPool]:
    statements = await create_statement_pool(
        database_url, size=2, statement_timeout_ms=0, notify_mode="direct"
    )
    yield statements
    await statements.close()


@asynccontextmanager
async def _autocommit(engine: AsyncEngine) -> AsyncIterator[EngineConnection]:
    """A connection as unit_of_work(one_statement=True) opens it without the pool."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield EngineConnection(conn)


async def _both(
    pool: StatementPool,
    engine: AsyncEngine,
    send: Callable[[StatementConnection], Awaitable[Any]],
) -> list[Any]:
    """What `send` gives on a pool connection, then on an AUTOCOMMIT engine connection."""
    async with pool.acquire() as pooled:
        on_pool = await send(pooled)
    async with _autocommit(engine) as conn:
        on_engine = await send(conn)
    return [on_pool, on_engine]


async def test_both_give_the_same_rows_and_are_counted(
    pool: StatementPool, engine: AsyncEngine, count_statements: StatementCounter
) -> None:
    sql = (
        "SELECT $1::text AS a, $2::int AS b, $3::jsonb AS c, $4::timestamptz AS d, "
        "$5::numeric AS e, '[1, 2.50]'::json AS f, NULL::jsonb AS g"
    )
    at = datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    params = ("x", 7, '{"k": [1, 2.5]}', at, Decimal("1.5000"))

    async def send(conn: StatementConnection) -> Sequence[Any] | None:
        count_statements.reset()
        row = await conn.first_row(sql, params)
        assert count_statements.statements == [sql]  # QUERY_HOOKS / before_cursor_execute
        return row

    rows = await _both(pool, engine, send)
    expected = ("x", 7, {"k": [1, 2.5]}, at, Decimal("1.5000"), [1, 2.5], None)
    assert [tuple(row or ()) for row in rows] == [expected, expected]
    # jsonb keeps its stored text as the engine's decoder keeps it (drivers/stored_json.py)
    assert [row[2].stored for row in rows if row] == ['{"k": [1, 2.5]}'] * 2
    assert [row[5].stored for row in rows if row] == ["[1, 2.50]"] * 2
    assert [tuple(row[1:3]) for row in rows if row] == [(7, {"k": [1, 2.5]})] * 2  # slices
    nothing = await _both(pool, engine, lambda c: c.first_row("SELECT 1 WHERE $1::int = 0", (1,)))
    assert nothing == [None, None]


async def test_each_statement_is_its_own_transaction(
    pool: StatementPool, engine: AsyncEngine
) -> None:
    xid = "SELECT pg_current_xact_id()::text"

    async def two(conn: StatementConnection) -> tuple[Any, Any]:
        first, second = await conn.first_row(xid, ()), await conn.first_row(xid, ())
        assert first is not None and second is not None
        return first[0], second[0]

    for first, second in await _both(pool, engine, two):
        assert first != second
    # inside the caller's transaction, the engine connection's statements share it
    async with engine.begin() as conn:
        first, second = await two(EngineConnection(conn))
    assert first == second


async def test_the_notify_mode_is_the_pools_or_the_engines(
    pool: StatementPool, database_url: str
) -> None:
    async with pool.acquire() as pooled:
        assert pooled.notify_mode == "direct"
    for options, mode in (({audit.NOTIFY_MODE_OPTION: "direct"}, "direct"), ({}, "outbox")):
        engine = make_engine(database_url, execution_options=options)
        try:
            async with _autocommit(engine) as conn:
                assert conn.notify_mode == mode
        finally:
            await engine.dispose()


async def test_a_unique_violation_maps_alike(pool: StatementPool, engine: AsyncEngine) -> None:
    async with _autocommit(engine) as conn:
        await conn.first_row("CREATE TABLE sent_once (id int PRIMARY KEY)", ())
    try:
        insert = "INSERT INTO sent_once VALUES ($1) RETURNING id"

        async def twice(conn: StatementConnection) -> UniqueViolation:
            await conn.first_row("DELETE FROM sent_once", ())
            assert tuple(await conn.first_row(insert, (1,)) or ()) == (1,)
            with pytest.raises(UniqueViolation) as raised, map_db_errors():
                await conn.first_row(insert, (1,))
            # the connection is still usable, and the failed insert left nothing
            count = await conn.first_row("SELECT count(*) FROM sent_once", ())
            assert count is not None and count[0] == 1
            return raised.value

        errors = await _both(pool, engine, twice)
        assert [e.constraint for e in errors] == ["sent_once_pkey", "sent_once_pkey"]
    finally:
        async with _autocommit(engine) as conn:
            await conn.first_row("DROP TABLE sent_once", ())


async def _terminate(engine: AsyncEngine, pid: int) -> None:
    """End backend `pid` and wait until it is gone and its client has had time to see it."""
    async with _autocommit(engine) as killer:
        await killer.first_row("SELECT pg_terminate_backend($1)", (pid,))
        for _ in range(100):
            gone = "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)"
            if (await killer.first_row(gone, (pid,)) or (False,))[0]:
                break
            await asyncio.sleep(0.01)
    # asyncpg reads the server's goodbye and the socket's end in separate loop turns; a
    # statement sent between the two fails with an InternalClientError (INTERNAL, as through
    # SQLAlchemy), a race this test is not about.
    await asyncio.sleep(0.05)


async def test_a_terminated_connection_is_unavailable_and_replaced(
    pool: StatementPool, engine: AsyncEngine
) -> None:
    async with pool.acquire() as pooled:
        pid = await pooled.first_row("SELECT pg_backend_pid()", ())
        assert pid is not None
        await _terminate(engine, pid[0])
        with pytest.raises(Unavailable), map_db_errors():
            await pooled.first_row("SELECT 1", ())
    # and during its statement
    async with pool.acquire() as pooled:
        other = await pooled.first_row("SELECT pg_backend_pid()", ())
        assert other is not None and other[0] != pid[0]
        sleeping = asyncio.create_task(pooled.first_row("SELECT pg_sleep(10)", ()))
        await asyncio.sleep(0.1)
        await _terminate(engine, other[0])
        with pytest.raises(Unavailable), map_db_errors():
            await sleeping
    for _ in range(2):  # whichever connection the pool hands out next is a live one
        async with pool.acquire() as pooled:
            row = await pooled.first_row("SELECT pg_backend_pid()", ())
            assert row is not None and row[0] not in (pid[0], other[0])


def _refused_url(database_url: str) -> str:
    """The same URL on a local port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    parts = urlsplit(database_url)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}"))


async def test_a_database_that_is_down_is_unavailable_at_acquire(database_url: str) -> None:
    # the pool opens (the gateway starts while the database is down) and connects on use
    down = await create_statement_pool(_refused_url(database_url), size=1, statement_timeout_ms=0)
    try:
        with pytest.raises(Unavailable), map_db_errors():
            async with down.acquire():
                pass
    finally:
        await down.close()


async def test_an_exhausted_pool_is_unavailable(database_url: str) -> None:
    small = await create_statement_pool(
        database_url, size=1, statement_timeout_ms=0, acquire_timeout=0.1
    )
    try:
        async with small.acquire():
            with pytest.raises(Unavailable), map_db_errors():
                async with small.acquire():
                    pass
    finally:
        await small.close()
