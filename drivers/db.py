"""Engine and URL plumbing shared by the gateway, the migrations and the tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import MetaData, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from drivers.stored_json import json_dumps, load_stored

__all__ = [
    "NAMING_CONVENTION",
    "UNNAMED_STATEMENTS",
    "async_url",
    "discard_closed_on_checkout",
    "json_dumps",
    "make_engine",
    "metadata",
    "timeout_setting",
]

# Stable constraint names, so migrations can refer to them and errors name them.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def async_url(url: str) -> str:
    """Turn a libpq URL (postgresql://…) into the SQLAlchemy asyncpg form.

    Accepts `postgres://`, `postgresql://`, `postgresql+asyncpg://`; other schemes are refused so a
    typo in DATABASE_URL fails at start-up rather than at the first query.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        # libpq says sslmode=…, asyncpg says ssl=… with the same mode names.
        query = "&".join(
            "ssl=" + p.split("=", 1)[1] if p.startswith("sslmode=") else p
            for p in parts.query.split("&")
            if p
        )
        return urlunsplit(parts._replace(scheme="postgresql+asyncpg", query=query))
    raise ValueError(f"unsupported database URL scheme {parts.scheme!r}; use postgresql://")


def discard_closed_on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool `checkout` hook: replace a connection the driver already knows is closed.

    Why: it replaces the pool's pre-ping (three round trips per checkout with SQLAlchemy's
    asyncpg ping, which wraps `;` in BEGIN/ROLLBACK) for the common way a pooled connection dies:
    the server ends it (restart, pg_terminate_backend, idle timeouts, a proxy) and asyncpg sees
    the FIN while the connection sits idle in the pool. It looks at local state only. Raising
    DisconnectionError makes the pool reconnect before the caller has sent anything, so this is
    the one retry that is always safe. A connection that died silently (no FIN yet) is not
    caught: its first statement fails, the error is Unavailable and nothing is retried, because
    that statement may have reached the server.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("connection closed while idle in the pool")


# asyncpg with its statement cache at 0 prepares every statement as the unnamed one and sends
# Parse again with each Bind, so nothing outlives one round trip on the server connection.
UNNAMED_STATEMENTS: dict[str, int] = {"statement_cache_size": 0}


def timeout_setting(statement_timeout_ms: int) -> dict[str, str]:
    """The statement_timeout startup parameter; none for 0, so the server's own setting applies.

    PgBouncer refuses startup parameters it does not track (statement_timeout among them), so
    behind it the timeout is set server-side and the gateway's is 0 (README § Deploy).
    """
    return {"statement_timeout": str(statement_timeout_ms)} if statement_timeout_ms else {}


def make_engine(
    url: str,
    *,
    connect: Callable[..., Awaitable[Any]] | None = None,
    prepared_statements: bool = True,
    **kwargs: Any,
) -> AsyncEngine:
    """Create the async engine for a libpq-style URL; sessions run in UTC.

    Every engine discards connections found closed at checkout (discard_closed_on_checkout),
    whether or not `pool_pre_ping` is also set. `connect` replaces asyncpg.connect and gets the
    same arguments (drivers/replication.failover_connect: a replica, else the primary).
    `prepared_statements=False` is for PgBouncer in transaction mode without
    max_prepared_statements (< 1.21): there consecutive transactions of one client connection
    may run on different server connections, so a named statement prepared on one is missing
    (or already taken) on the next. SQLAlchemy's own statement cache is turned off with it,
    since it holds asyncpg's prepared statement objects.
    """
    connect_args = kwargs.pop("connect_args", {})
    if not prepared_statements:
        connect_args = {**connect_args, **UNNAMED_STATEMENTS, "prepared_statement_cache_size": 0}
    server_settings = {"timezone": "UTC", **connect_args.pop("server_settings", {})}
    connect_args = {**connect_args, "server_settings": server_settings}
    if connect is not None:
        # SQLAlchemy's `async_creator` would drop connect_args; its asyncpg adapter takes both.
        def creator() -> Any:
            dbapi: Any = engine.sync_engine.dialect.dbapi
            return dbapi.connect(async_creator_fn=connect, **connect_args)

        kwargs["creator"] = creator
    engine = create_async_engine(
        async_url(url),
        json_serializer=json_dumps,
        json_deserializer=load_stored,
        connect_args=connect_args,
        **kwargs,
    )
    event.listen(engine.sync_engine.pool, "checkout", discard_closed_on_checkout)
    return engine
