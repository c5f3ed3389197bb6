"""Test database and app fixtures: real PostgreSQL, migrated once per run, cleaned after each test.

DATABASE_URL (libpq form) points at a server; without it an embedded PostgreSQL (pgserver) runs
in `.pgdata-test/`. The controlling process (the only one without pytest-xdist) starts that
server if it is not running (and then stops it when the run ends), and migrates one template
database per run; each worker session clones its own database from the template, so xdist
workers never share rows.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from gateway.database import start_embedded, stop_embedded
from gateway.settings import Settings
from tests.helpers import JWT_SECRET, StatementCounter, serve

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA_DIR = ROOT / ".pgdata-test"
# The controller hands the server and the template to xdist workers (spawned after it set them).
_SERVER_ENV = "GW_TEST_SERVER_URL"
_TEMPLATE_ENV = "GW_TEST_TEMPLATE_DB"
# A throwaway cluster: durability buys nothing here, and fsync made every TRUNCATE cost ~0.5 s.
_EMBEDDED_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
# Live gateways each hold pools, a LISTEN and an outbox-publisher connection, and the prepared-
# writes differential test runs the mutation tests twice in subprocesses: 100 was exhausted.
_EMBEDDED_MAX_CONNECTIONS = 400


def with_database(url: str, name: str) -> str:
    """Return the same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _on_server(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(with_database(server_url, "postgres")))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    copy = f' TEMPLATE "{template}"' if template else ""
    await _on_server(server_url, f'CREATE DATABASE "{name}"{copy}')
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    await _on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def own_database(server_url: str, label: str) -> AsyncIterator[str]:
    """A migrated database of its own (from the template), dropped afterwards: no other test's
    publisher or writes interleave with the caller's."""
    name = f"gw_test_{secrets.token_hex(4)}_{label}"
    url = await create_database(server_url, name, template=os.environ["GW_TEST_TEMPLATE_DB"])
    try:
        yield url
    finally:
        await drop_database(server_url, name)


async def _max_connections(server_url: str) -> int:
    conn = await asyncpg.connect(_asyncpg_dsn(with_database(server_url, "postgres")))
    try:
        return int(await conn.fetchval("SHOW max_connections"))
    finally:
        await conn.close()


class _Run:
    """The controller's part: the server (started here or not) and the migrated template."""

    def __init__(self) -> None:
        self.server_url = os.environ.get("DATABASE_URL", "")
        self.started_server = False
        self.template: str | None = None

    def prepare(self) -> None:
        if not self.server_url:
            self.server_url, self.started_server = start_embedded(TEST_DATA_DIR)
            settings = [f"ALTER SYSTEM SET {k} = '{v}'" for k, v in _EMBEDDED_SETTINGS.items()]
            settings.append(f"ALTER SYSTEM SET max_connections = '{_EMBEDDED_MAX_CONNECTIONS}'")
            asyncio.run(_on_server(self.server_url, *settings, "SELECT pg_reload_conf()"))
            if asyncio.run(_max_connections(self.server_url)) < _EMBEDDED_MAX_CONNECTIONS:
                # max_connections takes a restart: only the first run on a new data folder pays it.
                stop_embedded(TEST_DATA_DIR)
                self.server_url, _ = start_embedded(TEST_DATA_DIR)
        template = f"gw_test_{secrets.token_hex(4)}_template"
        asyncio.run(create_database(self.server_url, template))
        self.template = template
        upgrade_head(with_database(self.server_url, template))
        os.environ[_SERVER_ENV] = self.server_url
        os.environ[_TEMPLATE_ENV] = template

    def finish(self) -> None:
        try:
            if self.template is not None:
                asyncio.run(drop_database(self.server_url, self.template))
        finally:
            if self.started_server:
                stop_embedded(TEST_DATA_DIR)


_RUN = pytest.StashKey[_Run]()


@pytest.hookimpl(tryfirst=True)  # before xdist spawns its workers, which inherit the environment
def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        run = session.config.stash[_RUN] = _Run()
        run.prepare()  # a failure here still stops a server it started (pytest_unconfigure)


def pytest_unconfigure(config: pytest.Config) -> None:
    """After every worker is done: drop the template, stop the server if this run started it."""
    run = config.stash.get(_RUN, None)
    if run is not None:
        run.finish()


@pytest.fixture(scope="session")
def server_url() -> str:
    return os.environ[_SERVER_ENV]


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    name = f"gw_test_{secrets.token_hex(4)}"
    url = await create_database(server_url, name, template=os.environ[_TEMPLATE_ENV])
    yield url
    await drop_database(server_url, name)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url, poolclass=NullPool)
    yield eng
    await eng.dispose()


def _identity_sequences() -> dict[str, str]:
    return {
        table.name: f"{table.name}_{column.name}_seq"
        for table in tables.metadata.sorted_tables
        for column in table.columns
        if column.identity is not None
    }


# Which tables a test left dirty: rows, or an identity sequence used since its last restart.
# One cheap statement; TRUNCATE (new files for every table and index) runs only where needed.
# Table and sequence names come from our own metadata.
_DIRTY = " UNION ALL ".join(
    [
        f"SELECT '{t.name}' WHERE EXISTS (SELECT FROM {t.name})"  # noqa: S608
        for t in tables.metadata.sorted_tables
    ]
    + [
        f"SELECT '{table}' WHERE pg_sequence_last_value('{seq}') IS NOT NULL"
        for table, seq in _identity_sequences().items()
    ]
)


@pytest.fixture(autouse=True)
async def _clean_tables(engine: AsyncEngine) -> AsyncIterator[None]:
    yield
    async with engine.begin() as conn:
        # Fail loudly instead of hanging if a test leaked a connection that holds a lock.
        await conn.execute(text("SET LOCAL lock_timeout = '5s'"))
        dirty = sorted(set((await conn.execute(text(_DIRTY))).scalars()))
        if dirty:
            await conn.execute(text(f"TRUNCATE {', '.join(dirty)} RESTART IDENTITY CASCADE"))


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
    QUERY_HOOKS.append(counter.statements.append)  # the plain asyncpg pools
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
