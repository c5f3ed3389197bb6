"""The change outbox's publisher connection: the advisory lock, and one batch sent with NOTIFY.

Writers insert change_outbox rows in their transaction (drivers/audit.py). One connection per
database - the holder of an advisory lock - moves them to the LISTEN channel: in ONE
transaction it deletes the rows it can see and sends one pg_notify per row, so a batch is
published exactly once or not at all (a publisher that dies mid-batch rolls back, and the next
holder sends the same rows). Only that transaction's commit takes PostgreSQL's NOTIFY lock.

Order (docs/decisions.md § Change notifications through an outbox): a batch is every row
committed before the batch's snapshot, so each row of a later batch committed after every row
of an earlier one; within a batch rows go out by id, which is commit order for transactions
that touched the same row (the second one wrote its outbox rows after the first committed).
A row whose id is lower but whose transaction commits later simply goes out in a later batch.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from drivers.audit import NOTIFY_CHANNEL, payload
from drivers.listen import asyncpg_dsn

__all__ = ["OUTBOX_LOCK_KEY", "PUBLISHER_APPLICATION_NAME", "OutboxConnection"]

PUBLISHER_APPLICATION_NAME = "gateway-outbox-publisher"  # in pg_stat_activity
# pg_advisory_lock key of the publisher role (any fixed bigint; advisory locks are per database).
OUTBOX_LOCK_KEY = 0x6761_7465_7761_7921  # "gateway!"

_WAIT_FOR_LOCK = "SELECT pg_advisory_lock($1)"
_ANY_ROW = "SELECT EXISTS (SELECT FROM change_outbox)"
# The lowest ids the batch's snapshot sees, deleted; RETURNING order is not defined (sorted here).
_TAKE = (
    "DELETE FROM change_outbox WHERE id IN "
    "(SELECT id FROM change_outbox ORDER BY id LIMIT $1) "
    "RETURNING id, tenant_id, kind, entity_id"
)
# unnest yields the payloads in array order and nothing reorders them: NOTIFYs go out in order.
_SEND = f"SELECT pg_notify('{NOTIFY_CHANNEL}', p) FROM unnest($1::text[]) AS p"  # noqa: S608


class OutboxConnection:
    """One plain asyncpg connection (outside the pool: it holds a session-level advisory lock)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @classmethod
    async def open(
        cls, url: str, *, lock_wait: float, connect_timeout: float = 5.0
    ) -> OutboxConnection:
        """Connect; `lock_wait` bounds each wait for the lock (then wait_for_lock says False)."""
        conn = await asyncpg.connect(
            asyncpg_dsn(url),
            timeout=connect_timeout,
            server_settings={
                "application_name": PUBLISHER_APPLICATION_NAME,
                "lock_timeout": str(max(1, int(lock_wait * 1000))),
            },
        )
        return cls(conn)

    async def wait_for_lock(self) -> bool:
        """Block until this connection holds the publisher lock (True), or lock_wait passed.

        The lock is the connection's until it closes: when the holding process dies, its
        connection ends and PostgreSQL hands the lock to the next waiter at once.
        """
        try:
            await self._conn.execute(_WAIT_FOR_LOCK, OUTBOX_LOCK_KEY)
        except asyncpg.LockNotAvailableError:
            return False
        return True

    async def publish(self, batch: int) -> int:
        """Send and delete every row committed so far (`batch` rows a statement); how many."""
        if not await self._conn.fetchval(_ANY_ROW):
            return 0  # the idle poll: one index probe, no transaction
        sent = 0
        # REPEATABLE READ: every chunk sees the same snapshot, so a row committed after the first
        # chunk waits for the next batch instead of overtaking rows committed before it.
        async with self._conn.transaction(isolation="repeatable_read"):
            while True:
                rows = sorted(await self._conn.fetch(_TAKE, batch), key=lambda r: r["id"])
                if rows:
                    payloads = [
                        payload(r["tenant_id"], r["kind"], r["entity_id"], r["id"]) for r in rows
                    ]
                    await self._conn.execute(_SEND, payloads)
                    sent += len(rows)
                if len(rows) < batch:
                    return sent

    async def close(self) -> None:
        """Close politely (the lock goes with the session); a dead connection is dropped."""
        try:
            await self._conn.close(timeout=2.0)
        except Exception:
            self._conn.terminate()
