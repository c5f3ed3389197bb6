"""Readiness probes of the database, for the gateway's /readyz."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from drivers.migrate import current_revision

__all__ = ["database_revision"]


async def database_revision(engine: AsyncEngine) -> str | None:
    """The migration revision the database is at (None: never migrated).

    Reading it is the round trip that proves the database answers; an unreachable database
    raises whatever the driver raised.
    """
    async with engine.connect() as conn:
        return await current_revision(conn)
