"""Test database and app fixtures: real PostgreSQL, migrated once, truncated after each test.

DATABASE_URL (libpq form) points at a server on which a throwaway database is created for the
session; without it an embedded PostgreSQL (pgserver) is started in `.pgdata-test/`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from drivers import tables
from drivers.db import make_engine
from drivers.migrate import upgrade_head
from drivers.readpool import QUERY_HOOKS
from gateway.settings import Settings
from tests.helpers import JWT_SECRET, StatementCounter, serve

ROOT = Path(__file__).resolve().parent.parent


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    import pgserver  # noqa: PLC0415 - only needed without DATABASE_URL

    server = pgserver.get_server(ROOT / ".pgdata-test", cleanup_mode=None)  # type: ignore[attr-defined]
    return str(server.get_uri())


def with_database(url: str, name: str) -> str:
    """Return the same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_database(server_url: str, name: str) -> str:
    conn = await asyncpg.connect(_asyncpg_dsn(with_database(server_url, "postgres")))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(with_database(server_url, "postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    name = f"gw_test_{secrets.token_hex(4)}"
    url = await create_database(server_url, name)
    await asyncio.to_thread(upgrade_head, url)
    yield url
    await drop_database(server_url, name)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url, poolclass=NullPool)
    yield eng
    await eng.dispose()


_TRUNCATE = "TRUNCATE {} RESTART IDENTITY CASCADE".format(
    ", ".join(t.name for t in tables.metadata.sorted_tables)
)


@pytest.fixture(autouse=True)
async def _clean_tables(engine: AsyncEngine) -> AsyncIterator[None]:
    yield
    async with engine.begin() as conn:
        # Fail loudly instead of hanging if a test leaked a connection that holds a lock.
        await conn.execute(text("SET LOCAL lock_timeout = '5s'"))
        await conn.execute(text(_TRUNCATE))


# --- the real ASGI app over HTTP -----------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        migrate_on_start=False,
        jwt_secret=JWT_SECRET,
        api_key_cache_seconds=0,
        db_pool_size=5,
        # Jobs would race the tests' own calls; tests/gateway/test_worker.py turns them on.
        gateway_background_jobs=False,
        # The shared `client` serves the resolver path (the reference, whose batching the
        # statement-count tests measure); `compiled_client` serves compiled reads.
        gateway_compiled_reads=False,
    )


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as http:
        yield http


@pytest.fixture(scope="session")
async def compiled_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings.model_copy(update={"gateway_compiled_reads": True})) as http:
        yield http


@pytest.fixture
def count_statements() -> Iterator[StatementCounter]:
    counter = StatementCounter()
    event.listen(Engine, "before_cursor_execute", counter)
    QUERY_HOOKS.append(counter.statements.append)  # the compiled path's plain asyncpg pool
    yield counter
    QUERY_HOOKS.remove(counter.statements.append)
    event.remove(Engine, "before_cursor_execute", counter)


@pytest.fixture
async def fresh_database_url(server_url: str) -> AsyncIterator[str]:
    """An empty, never-migrated database on the test server, dropped afterwards."""
    name = f"gw_test_{secrets.token_hex(4)}_fresh"
    url = await create_database(server_url, name)
    yield url
    await drop_database(server_url, name)
