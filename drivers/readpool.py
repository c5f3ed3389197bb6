"""A plain asyncpg pool for the compiled read path: one statement per operation, nothing else.

SQLAlchemy's pool pings every checkout (one more round trip) and its asyncpg adapter costs a
greenlet switch per call; the compiled path sends exactly one SELECT that builds the whole
response, so it talks to asyncpg directly. Connections are AUTOCOMMIT (asyncpg never opens a
transaction by itself) and only ever run that SELECT, so there is no session state to reset on
release, and no reset query is sent. A connection that died shows up as an error on its SELECT;
asyncpg replaces it and the caller answers that request on the resolver path.
drivers/one_statement.py opens the one-statement writes' pool with the same helper.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from drivers.db import UNNAMED_STATEMENTS, timeout_setting
from drivers.errors import DriverError, Unavailable

__all__ = [
    "QUERY_HOOKS",
    "announce",
    "create_read_pool",
    "dsn",
    "fetch_json_parts",
    "fetch_json_text",
]

# Longest statement text kept prepared per connection (asyncpg's default is 15 KiB).
MAX_CACHED_STATEMENT_BYTES = 1024 * 1024

# Called with the SQL of every statement sent through these pools (tests count statements
# here), through `announce`, not as an asyncpg query logger: with a logger attached, asyncpg
# times every query and schedules a loop callback per query, even while no hook is listening.
QUERY_HOOKS: list[Callable[[str], None]] = []


def dsn(url: str) -> str:
    """A libpq DSN for asyncpg; DATABASE_URL may use the SQLAlchemy spelling."""
    scheme, sep, rest = url.partition("://")
    return ("postgresql" if scheme.lower() == "postgresql+asyncpg" else scheme) + sep + rest


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Nothing to undo: no transaction, no LISTEN, no SET on these connections."""


async def create_read_pool(
    url: str,
    *,
    size: int,
    statement_timeout_ms: int,
    connect: Callable[..., Awaitable[asyncpg.Connection]] | None = None,
    prepared_statements: bool = True,
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """A pool of up to `size` connections, opened on demand; UTC sessions like the engines.

    `connect` replaces asyncpg.connect (drivers/replication.failover_connect for a replica).
    `prepared_statements=False`: unnamed statements only, as make_engine (behind PgBouncer).
    `init` runs once on each new connection (drivers/one_statement.py: its JSON codecs).
    """
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn(url),
        min_size=0,
        max_size=size,
        reset=_no_reset,
        connect=connect,
        init=init,
        # Compiled statements are often longer than asyncpg's 15 KiB caching limit (a Float
        # field's formatting alone is ~11 KiB): keep them prepared like the short ones.
        max_cacheable_statement_size=MAX_CACHED_STATEMENT_BYTES,
        **({} if prepared_statements else UNNAMED_STATEMENTS),
        # DateStyle ISO: the compiled SQL formats timestamps from their text output.
        server_settings={
            "timezone": "UTC",
            "DateStyle": "ISO",
            **timeout_setting(statement_timeout_ms),
        },
    )
    return pool


def announce(sql: str) -> None:
    """Tell QUERY_HOOKS a statement goes out on a plain pool (this one's or one_statement's)."""
    for hook in QUERY_HOOKS:
        hook(sql)


async def _fetchval(pool: asyncpg.Pool, sql: str, params: Sequence[Any]) -> Any:
    announce(sql)
    try:
        return await pool.fetchval(sql, *params)
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
        raise Unavailable(f"database unavailable: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise DriverError(f"compiled read failed: {exc}") from exc


async def fetch_json_text(pool: asyncpg.Pool, sql: str, params: Sequence[Any]) -> str:
    """Run one statement that returns one text value (the response JSON) and return it."""
    return str(await _fetchval(pool, sql, params))


async def fetch_json_parts(pool: asyncpg.Pool, sql: str, params: Sequence[Any]) -> list[str]:
    """Run one statement that returns one text[] value (a JSON text per root field).

    A SQL NULL element is JSON's null (a point lookup that found nothing).
    """
    return ["null" if part is None else str(part) for part in await _fetchval(pool, sql, params)]
