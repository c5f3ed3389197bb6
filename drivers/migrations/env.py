"""Alembic environment, driven programmatically by drivers/migrate.py (there is no alembic.ini).

Migrations run on asyncpg, the same driver as the gateway, so no second PostgreSQL driver is needed.
A transaction-level advisory lock serializes concurrent `migrate` runs (several replicas starting
at once, parallel test workers): the second runner waits, then finds the database at head.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from drivers.tables import metadata

# sha256("governance-gateway:alembic")[:8] as a signed bigint: fixed, and unlikely to collide with
# advisory keys the application takes (aggregation keys are hashed from tenant and trigger).
MIGRATION_LOCK_KEY = -786311309810016167

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set; use drivers.migrate.alembic_config(url)")
    return url


def run_migrations_offline() -> None:
    """Emit SQL instead of executing it (`alembic upgrade --sql`)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        # Taken before alembic reads alembic_version; released at commit or rollback.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def run_async_migrations() -> None:
    connectable = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with connectable.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
