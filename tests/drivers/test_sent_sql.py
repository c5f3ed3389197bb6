"""drivers/sent_sql.first_row answers, is counted and fails exactly as exec_driver_sql does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from drivers.errors import Unavailable, UniqueViolation, map_db_errors
from drivers.sent_sql import first_row
from tests.helpers import StatementCounter


@asynccontextmanager
async def _autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection as unit_of_work(one_statement=True) opens it."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


async def test_a_row_reads_as_exec_driver_sql_reads_it_and_is_counted(
    engine: AsyncEngine, count_statements: StatementCounter
) -> None:
    sql = "SELECT $1::text AS a, $2::int AS b, $3::jsonb AS c, $4::timestamptz AS d"
    at = datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    params = ("x", 7, '{"k": [1, 2.5]}', at)
    async with _autocommit(engine) as conn:
        count_statements.reset()
        sent = await first_row(conn, sql, params)
        assert count_statements.statements == [sql]  # listeners hear it as from exec_driver_sql
        executed = (await conn.exec_driver_sql(sql, params)).first()
        none = await first_row(conn, "SELECT 1 WHERE $1::int = 0", (1,))
    assert sent is not None and executed is not None
    assert tuple(sent) == tuple(executed) == ("x", 7, {"k": [1, 2.5]}, at)
    assert sent[1:3] == (7, {"k": [1, 2.5]})  # slices like the Row the drivers slice
    assert none is None


async def test_each_call_on_an_autocommit_connection_is_its_own_transaction(
    engine: AsyncEngine,
) -> None:
    xid = "SELECT pg_current_xact_id()::text"
    async with _autocommit(engine) as conn:
        first, second = await first_row(conn, xid, ()), await first_row(conn, xid, ())
    assert first is not None and second is not None
    assert first[0] != second[0]
    # inside a transaction it is exec_driver_sql: both calls in the caller's one transaction
    async with engine.begin() as conn:
        first, second = await first_row(conn, xid, ()), await first_row(conn, xid, ())
    assert first is not None and second is not None
    assert first[0] == second[0]


async def test_a_constraint_violation_maps_as_from_exec_driver_sql(engine: AsyncEngine) -> None:
    async with _autocommit(engine) as conn:
        await conn.exec_driver_sql("CREATE TEMP TABLE sent_once (id int PRIMARY KEY)")
        insert = "INSERT INTO sent_once VALUES ($1) RETURNING id"
        assert tuple(await first_row(conn, insert, (1,)) or ()) == (1,)
        errors: list[UniqueViolation] = []
        for send in (
            lambda: first_row(conn, insert, (1,)),
            lambda: conn.exec_driver_sql(insert, (1,)),
        ):
            with pytest.raises(UniqueViolation) as raised, map_db_errors():
                await send()
            errors.append(raised.value)
        # the connection is still usable, and the failed inserts left nothing
        count = await first_row(conn, "SELECT count(*) FROM sent_once", ())
    assert [e.constraint for e in errors] == ["sent_once_pkey", "sent_once_pkey"]
    assert str(errors[0]) == str(errors[1])
    assert count is not None and count[0] == 1


async def test_a_connection_killed_under_it_is_unavailable_and_invalidated(
    engine: AsyncEngine,
) -> None:
    async with _autocommit(engine) as conn:
        pid = await first_row(conn, "SELECT pg_backend_pid()", ())
        assert pid is not None
        async with _autocommit(engine) as killer:
            await killer.exec_driver_sql("SELECT pg_terminate_backend($1)", (pid[0],))
        with pytest.raises(Unavailable), map_db_errors():
            for _ in range(50):  # until the client has seen the server close it
                await first_row(conn, "SELECT 1", ())
        assert conn.invalidated
    async with _autocommit(engine) as conn:  # the pool hands out a live connection again
        assert tuple(await first_row(conn, "SELECT 2", ()) or ()) == (2,)
