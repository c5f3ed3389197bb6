"""SQL text built once, sent on the driver's prepared-statement cache without SQLAlchemy's layers.

The one-statement writes (addIncidentEvent, requestOverride) build their SQL text once at import
with its parameter order fixed; `exec_driver_sql` then still ran SQLAlchemy's Connection per
call: an execution context, a cursor, a CursorResult whose metadata is rebuilt column by column
for every text statement (a third of the mutation's gateway CPU in py-spy, issue #16). `first_row`
sends the text through the same SQLAlchemy asyncpg adapter cursor (its prepared-statement
cache, its lock, its error translation) and skips only those layers, on an AUTOCOMMIT
connection, where there is no transaction for SQLAlchemy's Connection to track; elsewhere it is
exec_driver_sql. What the Connection would still do is done here: before/after_cursor_execute
listeners hear the statement (statement counters), a driver error is wrapped as SQLAlchemy
wraps it (map_db_errors reads the same DBAPIError), and a connection found closed is
invalidated so the pool does not hand it out again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import util
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util.concurrency import greenlet_spawn

__all__ = ["first_row"]


async def first_row(
    conn: AsyncConnection, sql: str, params: tuple[Any, ...]
) -> Sequence[Any] | None:
    """The first row `sql` answers with `params` ($1.. in order), or None; every row is read.

    The row indexes and slices like a tuple (an asyncpg Record, or a SQLAlchemy Row on the
    exec_driver_sql path).
    """
    sync: Any = conn.sync_connection  # started: the caller's connection is open
    fairy = sync.connection
    adapted: Any = fairy.dbapi_connection
    dialect: Any = sync.dialect
    if (
        not getattr(adapted, "autocommit", False)
        or not hasattr(adapted, "_execute_mutex")  # not SQLAlchemy's asyncpg adapter
        or dialect._has_events  # handle_error listeners: let the Connection call them
    ):
        return (await conn.exec_driver_sql(sql, params)).first()
    cursor = adapted.cursor()
    cursor._invalidate_schema_cache_asof = dialect._invalidate_schema_cache_asof
    dispatch = sync.dispatch
    dispatch.before_cursor_execute(sync, cursor, sql, params, None, False)
    try:
        await cursor._prepare_and_execute(sql, params)
    except BaseException as error:
        await _failed(conn, fairy, cursor, sql=sql, params=params, error=error)
        raise
    dispatch.after_cursor_execute(sync, cursor, sql, params, None, False)
    rows = cursor._rows
    return rows[0] if rows else None


async def _failed(
    conn: AsyncConnection, fairy: Any, cursor: Any, *, sql: str, params: Any, error: BaseException
) -> None:
    """Connection._handle_dbapi_exception for this path: invalidate, wrap (raises) or return.

    A disconnect invalidates the connection and, unless the error is the task's own exit
    (cancellation), every older connection of the pool; a driver error is raised as SQLAlchemy's
    DBAPIError; anything else is left to the caller to re-raise.
    """
    sync: Any = conn.sync_connection
    dialect: Any = sync.dialect
    exiting = util.is_exit_exception(error)
    is_dbapi = isinstance(error, dialect.loaded_dbapi.Error)
    disconnect = (is_dbapi and dialect.is_disconnect(error, fairy.dbapi_connection, cursor)) or (
        exiting
    )
    if disconnect:
        if not exiting:
            await greenlet_spawn(sync.engine.pool._invalidate, fairy, error, False)
        await conn.invalidate(error)
    if is_dbapi:
        raise sa_exc.DBAPIError.instance(
            sql,
            params,
            error,
            dialect.loaded_dbapi.Error,
            hide_parameters=sync.engine.hide_parameters,
            connection_invalidated=disconnect,
            dialect=dialect,
        ) from error
