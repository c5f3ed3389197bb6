"""The raw LISTEN connection: one asyncpg connection outside the pool, for change notifications.

A pooled SQLAlchemy connection cannot hold a LISTEN (the pool would hand it to a request and
reset it), so the listener owns a plain asyncpg connection. The gateway's hub decides when to
open, ping and reopen it; this module only speaks to PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg

from drivers.audit import NOTIFY_CHANNEL
from drivers.db import async_url

__all__ = ["LISTEN_APPLICATION_NAME", "ListenConnection", "asyncpg_dsn"]

LISTEN_APPLICATION_NAME = "gateway-listen"  # its application_name in pg_stat_activity


def asyncpg_dsn(url: str) -> str:
    """The URL for asyncpg.connect (a connection outside the SQLAlchemy pool)."""
    # async_url validates the scheme and turns sslmode= into asyncpg's ssl=.
    return async_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


class ListenConnection:
    """One open LISTEN on NOTIFY_CHANNEL; `lost` is set when PostgreSQL drops the connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.lost = asyncio.Event()

    @classmethod
    async def open(
        cls, url: str, on_payload: Callable[[str], None], *, connect_timeout: float = 5.0
    ) -> ListenConnection:
        """Connect and LISTEN; `on_payload` gets each notification's payload string."""
        conn = await asyncpg.connect(
            asyncpg_dsn(url),
            timeout=connect_timeout,
            # named, so that operators (and tests) can find it in pg_stat_activity
            server_settings={"application_name": LISTEN_APPLICATION_NAME},
        )
        listener = cls(conn)

        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            on_payload(payload)

        def on_terminate(_conn: Any) -> None:
            listener.lost.set()

        try:
            conn.add_termination_listener(on_terminate)
            await conn.add_listener(NOTIFY_CHANNEL, on_notify)
        except BaseException:
            conn.terminate()
            raise
        return listener

    async def ping(self) -> None:
        """Round-trip once; raises if the connection is dead (the caller bounds the wait)."""
        await self._conn.fetchval("SELECT 1")

    def is_closed(self) -> bool:
        return bool(self._conn.is_closed())

    async def close(self) -> None:
        """Close politely; a dead connection is simply dropped."""
        try:
            await asyncio.wait_for(self._conn.close(), 2.0)
        except Exception:
            self._conn.terminate()
