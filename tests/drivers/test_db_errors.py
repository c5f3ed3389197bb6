"""Database failures the client did not cause read as Unavailable (SERVICE_UNAVAILABLE), not INTERNAL."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from drivers.db import make_engine
from drivers.errors import Unavailable, map_db_errors


async def test_a_statement_cancelled_by_statement_timeout_is_unavailable(engine: AsyncEngine):
    with pytest.raises(Unavailable):
        async with engine.connect() as conn:
            with map_db_errors():
                await conn.execute(text("SET statement_timeout = 50"))
                await conn.execute(text("SELECT pg_sleep(2)"))


async def test_too_many_connections_is_unavailable(engine: AsyncEngine, database_url: str):
    # given a role that may open no connection at all (SQLSTATE 53300 when it tries)
    role = f"gw_full_{secrets.token_hex(3)}"
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0'))
        await conn.commit()
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    url = urlunsplit(parts._replace(netloc=f"{role}@{host}"))
    full = make_engine(url, poolclass=NullPool)
    try:
        with pytest.raises(Unavailable), map_db_errors():
            async with full.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await full.dispose()
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP ROLE "{role}"'))
            await conn.commit()


async def test_an_exhausted_pool_is_unavailable(database_url: str):
    small = make_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    try:
        async with small.connect():
            with pytest.raises(Unavailable), map_db_errors():
                async with small.connect():
                    pass
    finally:
        await small.dispose()
