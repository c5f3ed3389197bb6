"""What a one-statement write needs of its connection, on a plain asyncpg pool or on SQLAlchemy.

addIncidentEvent and requestOverride send SQL text built once at import, each statement its own
transaction (resolvers/unit_of_work.py, one_statement=True). Through SQLAlchemy every such
mutation paid a pool checkout and return in greenlets, the switch to AUTOCOMMIT and its reset,
and the adapter's cursor: ~18 % of Q4's gateway CPU in py-spy (issue #16). So the gateway sends
them on a plain asyncpg pool on the primary, as the compiled reads do (drivers/readpool.py): a
connection outside a transaction is autocommit by nature and nothing is reset on release.
Where there is no such pool (tests, tools) the same drivers run on a SQLAlchemy connection,
autocommit or inside the caller's transaction.

Errors are left as the driver raises them; drivers/errors.map_db_errors maps asyncpg's and
SQLAlchemy's to the same DriverError classes. A connection that dies stays with the asyncpg
pool, which drops it on release and opens a new one on the next acquire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import audit
from drivers.audit import NotifyMode
from drivers.readpool import announce, create_read_pool
from drivers.stored_json import load_stored

__all__ = [
    "EngineConnection",
    "PooledConnection",
    "StatementConnection",
    "StatementPool",
    "create_statement_pool",
]


class StatementConnection(Protocol):
    """A connection that sends one statement at a time, and how its writes publish changes."""

    @property
    def notify_mode(self) -> NotifyMode: ...

    async def first_row(self, sql: str, params: tuple[Any, ...]) -> Sequence[Any] | None:
        """The first row `sql` answers with `params` ($1.. in order), or None."""
        ...


class PooledConnection:
    """A connection of the statement pool: each statement is its own transaction."""

    __slots__ = ("_conn", "notify_mode")

    def __init__(self, conn: asyncpg.Connection, notify_mode: NotifyMode) -> None:
        self._conn = conn
        self.notify_mode: NotifyMode = notify_mode

    async def first_row(self, sql: str, params: tuple[Any, ...]) -> Sequence[Any] | None:
        """The first row `sql` answers, or None; every row is read, as exec_driver_sql does.

        The row is an asyncpg Record: it indexes and slices like a tuple.
        """
        announce(sql)  # statement counters (tests, bench)
        rows = await self._conn.fetch(sql, *params)
        return rows[0] if rows else None


class EngineConnection:
    """A SQLAlchemy connection (autocommit, or inside the caller's transaction)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @property
    def notify_mode(self) -> NotifyMode:
        return audit.notify_mode(self._conn)

    async def first_row(self, sql: str, params: tuple[Any, ...]) -> Sequence[Any] | None:
        """The first row `sql` answers, or None (a SQLAlchemy Row); None for no result set."""
        result = await self._conn.exec_driver_sql(sql, params)
        return result.first() if result.returns_rows else None


@dataclass(frozen=True, slots=True)
class StatementPool:
    """The plain asyncpg pool on the primary, and the NotifyMode of the writes sent on it.

    The mode travels with the pool because an asyncpg connection has no engine option to hold it
    (drivers/audit.py NOTIFY_MODE_OPTION).
    """

    pool: asyncpg.Pool
    notify_mode: NotifyMode = "outbox"
    # Longest wait for a connection (TimeoutError: Unavailable), as the engines' pool_timeout.
    acquire_timeout: float | None = None

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[PooledConnection]:
        """A connection of the pool until the block ends (connecting happens here, lazily).

        The wait is bounded by asyncio.timeout, not acquire(timeout=): asyncpg runs a timed
        acquire as a task of its own (wait_for) and times the release as well. Five alternating
        pairs of bench/profile_mutation q7: median server CPU 1.18 vs 1.29 ms per mutation.
        """
        async with asyncio.timeout(self.acquire_timeout):
            conn = await self.pool.acquire()
        try:
            yield PooledConnection(conn, self.notify_mode)
        finally:
            await self.pool.release(conn)

    async def close(self) -> None:
        await self.pool.close()


async def create_statement_pool(
    url: str,
    *,
    size: int,
    statement_timeout_ms: int,
    prepared_statements: bool = True,
    notify_mode: NotifyMode = "outbox",
    acquire_timeout: float | None = None,
) -> StatementPool:
    """Up to `size` connections to `url` (the primary's), opened on demand.

    The read pool's sessions (UTC, statement_timeout, unnamed statements behind PgBouncer with
    `prepared_statements=False`), plus the engines' json/jsonb codecs.
    """
    pool = await create_read_pool(
        url,
        size=size,
        statement_timeout_ms=statement_timeout_ms,
        prepared_statements=prepared_statements,
        init=_json_codecs,
    )
    return StatementPool(pool, notify_mode, acquire_timeout)


async def _json_codecs(conn: asyncpg.Connection) -> None:
    """Decode json/jsonb as the engines do (SQLAlchemy's asyncpg codecs, load_stored).

    So the records the drivers build are the same on either connection. Builtin types: no
    round trip.
    """
    await conn.set_type_codec(
        "json",
        encoder=str.encode,
        decoder=_decode_json,
        schema="pg_catalog",
        format="binary",
    )
    await conn.set_type_codec(
        "jsonb",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        schema="pg_catalog",
        format="binary",
    )


def _decode_json(data: bytes) -> Any:
    return load_stored(data.decode())


def _encode_jsonb(text: str) -> bytes:
    return b"\x01" + text.encode()  # jsonb's binary format: a version byte, then the text


def _decode_jsonb(data: bytes) -> Any:
    return load_stored(data[1:].decode())
