"""Streaming replication as the read path sees it: WAL positions, replica status, failover connects.

Reads go to DATABASE_READ_URL (a hot standby). Three facts come from PostgreSQL here: how far the
primary's WAL goes after a commit (the read-your-writes token), how far the replica has replayed
(and how late it is), and whether the replica takes connections at all; a read connection that
cannot reach the replica is opened on the primary instead (`failover_connect`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers.db import make_engine
from drivers.readpool import create_read_pool, dsn

__all__ = [
    "FallbackConnection",
    "ReplicaState",
    "ReplicaStatus",
    "commit_position",
    "connect_replica",
    "failover_connect",
    "failover_engine",
    "failover_pool",
    "format_lsn",
    "parse_lsn",
    "replica_status",
]

log = logging.getLogger("gateway.replica")

_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")

# A page of WAL starts with a header (24 bytes; 40 at a segment's first page): see wal_end().
_SHORT_PAGE_HEADER = 24
_LONG_PAGE_HEADER = 40
# Seconds a connection waits for the replica before the replica counts as down.
REPLICA_CONNECT_TIMEOUT = 2.0


def parse_lsn(value: str) -> int:
    """`16/B374D848` (pg_lsn's text) as a byte position; ValueError when it is not one."""
    found = _LSN.fullmatch(value.strip())
    if found is None:
        raise ValueError(f"not a WAL position: {value!r}")
    return (int(found[1], 16) << 32) | int(found[2], 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def _wal_end(insert_position: int, block_size: int) -> int:
    """The end of the WAL before `insert_position`, as a standby's replay position would say it.

    The insert position of an idle page boundary points past the next page's header, while a
    standby that replayed the record ending at that boundary reports the boundary itself; a
    token 24 (or 40) bytes too far would make readers wait for WAL that may not come.
    """
    offset = insert_position % block_size
    if offset in (_SHORT_PAGE_HEADER, _LONG_PAGE_HEADER):
        return insert_position - offset
    return insert_position


async def commit_position(engine: AsyncEngine) -> int:
    """Where the primary's WAL ends now: a standby replayed to here shows every earlier commit.

    Asked (on an AUTOCOMMIT engine: one round trip) after the commits it must cover. The insert
    position is past every commit record already written, synchronous_commit on or off; the
    flush position would not be with synchronous_commit off. It may also cover another
    session's WAL not flushed yet: a reader then waits for that too, or reads the primary.
    """
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT pg_current_wal_insert_lsn()::text,"
                    " current_setting('wal_block_size')::int"
                )
            )
        ).one()
    return _wal_end(parse_lsn(row[0]), row[1])


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    # How far WAL was replayed; None: not a standby (a primary answers every token at once).
    replayed: int | None
    # Seconds the replayed state is behind: 0 when everything received is replayed.
    lag_seconds: float


_STATUS = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
    " CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)"
    " END::float8"
)


async def connect_replica(url: str) -> asyncpg.Connection:
    """A connection of its own for watching the replica (never one of the read pools')."""
    connection: asyncpg.Connection = await asyncpg.connect(
        dsn(url), timeout=REPLICA_CONNECT_TIMEOUT
    )
    return connection


async def replica_status(conn: asyncpg.Connection) -> ReplicaStatus:
    """One round trip on a replica connection (raises whatever asyncpg raised)."""
    in_recovery, replayed, lag = await conn.fetchrow(_STATUS)
    if not in_recovery:
        return ReplicaStatus(replayed=None, lag_seconds=0.0)
    return ReplicaStatus(replayed=parse_lsn(replayed) if replayed else 0, lag_seconds=float(lag))


@dataclass(slots=True)
class ReplicaState:
    """What the process believes about the replica; gateway/replica.py keeps it current."""

    up: bool = True
    replayed: int | None = 0  # None: the read URL is not a standby
    lag_seconds: float = 0.0


class FallbackConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """A read connection opened on the primary because the replica could not be reached."""


def failover_connect(
    replica_url: str, primary_url: str, state: ReplicaState
) -> Callable[..., Awaitable[asyncpg.Connection]]:
    """An asyncpg connect for read pools: the replica while it is up, else the primary.

    Nothing has been sent when a connect fails, so moving to the primary is always safe. A
    failed connect marks the replica down at once; the watcher marks it up again.
    """

    async def connect(*_: Any, **kwargs: Any) -> asyncpg.Connection:
        if state.up:
            try:
                return await asyncpg.connect(
                    dsn(replica_url), **{**kwargs, "timeout": REPLICA_CONNECT_TIMEOUT}
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if state.up:
                    log.warning("read replica unreachable, reads use the primary: %s", exc)
                state.up = False
        connection: asyncpg.Connection = await asyncpg.connect(
            dsn(primary_url), **{**kwargs, "connection_class": FallbackConnection}
        )
        return connection

    return connect


def failover_engine(
    replica_url: str, primary_url: str, state: ReplicaState, **options: Any
) -> AsyncEngine:
    """The resolver path's read engine on the replica, whose connections fail over to the primary.

    A connection that went to the primary is replaced at checkout once the replica is up again.
    """

    def rejoin(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        # type(), not isinstance: asyncpg's metaclass makes any Connection an instance of this.
        if state.up and issubclass(type(driver), FallbackConnection):
            raise DisconnectionError("the replica is up again")

    engine = make_engine(
        replica_url, connect=failover_connect(replica_url, primary_url, state), **options
    )
    event.listen(engine.sync_engine.pool, "checkout", rejoin)
    return engine


async def failover_pool(
    replica_url: str, primary_url: str, state: ReplicaState, **options: Any
) -> asyncpg.Pool:
    """The compiled path's pool on the replica, failing over like failover_engine.

    Its connections go back to the replica through `pool.expire_connections()` (the watcher).
    """
    return await create_read_pool(
        replica_url, connect=failover_connect(replica_url, primary_url, state), **options
    )
