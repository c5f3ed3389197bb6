"""The benchmark database: created on DATABASE_URL's server, migrated, seeded once per version."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.peer_sql import PEER_SQL
from bench.seed import FULL, SEED_VERSION, Scale, seed
from drivers.db import make_engine
from drivers.migrate import upgrade_head

__all__ = ["bench_url", "prepare", "server_url"]

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "gw_bench"
# PostGraphile sees no foreign key from lessons to incidents (the link is source_event_id with
# source_event_type = 'INCIDENT'); this smart comment gives it the same relation ours has.
_LESSON_SMART_TAG = (
    "COMMENT ON TABLE lessons_learned IS "
    "E'@foreignKey (source_event_id) references incidents (id)|@foreignFieldName lessons'"
)


def server_url() -> str:
    """The server the benchmark runs on: DATABASE_URL, else the machine's PostgreSQL."""
    return os.environ.get("DATABASE_URL") or DEFAULT_SERVER


def bench_url(name: str = BENCH_DB) -> str:
    """The same server, database `name` (BENCH_DATABASE_URL overrides it whole)."""
    override = os.environ.get("BENCH_DATABASE_URL")
    if override:
        return override
    parts = urlsplit(server_url())
    return urlunsplit(parts._replace(path=f"/{name}"))


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


async def _marker(url: str) -> str | None:
    try:
        conn = await asyncpg.connect(_dsn(url))
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        value = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    return str(value) if value is not None else ""


async def _recreate(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(_dsn(_admin_url(url)))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _seed_and_mark(url: str, scale: Scale, marker: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            written = await seed(conn, scale)
    finally:
        await engine.dispose()
    conn2 = await asyncpg.connect(_dsn(url))
    try:
        await conn2.execute(_LESSON_SMART_TAG)
        await conn2.execute("VACUUM ANALYZE")
        name = urlsplit(url).path.lstrip("/")
        await conn2.execute(f"COMMENT ON DATABASE \"{name}\" IS '{marker}'")
    finally:
        await conn2.close()
    return written


async def _install_peer_sql(url: str) -> None:
    """PostGraphile's computed columns and Q7 triggers, and Q7's write tenant (idempotent)."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        for statement in PEER_SQL:
            await conn.execute(statement)
    finally:
        await conn.close()


def prepare(scale: Scale = FULL, url: str | None = None) -> str:
    """Make sure `url` holds exactly this seed version; returns the URL. Idempotent."""
    url = url or bench_url()
    marker = f"{SEED_VERSION} {scale.label()}"
    if asyncio.run(_marker(url)) == marker:
        # Migrations added since the seed (new tables) are applied; the seeded rows stay.
        upgrade_head(url)
        asyncio.run(_install_peer_sql(url))
        print(f"bench database already seeded ({marker})")
        return url
    print(f"seeding {urlsplit(url).path.lstrip('/')} ({marker}) ...", flush=True)
    asyncio.run(_recreate(url))
    upgrade_head(url)
    written = asyncio.run(_seed_and_mark(url, scale, marker))
    asyncio.run(_install_peer_sql(url))
    print("seeded: " + ", ".join(f"{k} {v}" for k, v in written.items()), flush=True)
    return url
