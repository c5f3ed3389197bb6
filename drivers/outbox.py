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

from drivers.audit import NOTIFY_CHANNEL, payload_sql
from drivers.listen import asyncpg_dsn

__all__ = ["OUTBOX_LOCK_KEY", "POLL_STATEMENT", "PUBLISHER_APPLICATION_NAME", "OutboxConnection"]

PUBLISHER_APPLICATION_NAME = "gateway-outbox-publisher"  # in pg_stat_activity
# pg_advisory_lock key of the publisher role (any fixed bigint; advisory locks are per database).
OUTBOX_LOCK_KEY = 0x6761_7465_7761_7921  # "gateway!"

_WAIT_FOR_LOCK = "SELECT pg_advisory_lock($1)"
POLL_STATEMENT = "SELECT EXISTS (SELECT FROM change_outbox)"
_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ"


def _take_and_send(batch: int) -> str:
    """ONE statement: NOTIFY the lowest `batch` ids the snapshot sees, in id order, and delete them.

    The CTE calls pg_notify (volatile: PostgreSQL materializes the CTE, row by row over the
    sorted rows) and the DELETE reads all of it; its status `DELETE n` says how many were sent.
    The payload is drivers/audit.payload_sql's with "seq", the row id: PostgreSQL folds
    identical payloads of one transaction into one, and a batch holds many writers' changes
    (the same breaker changed twice must arrive twice). The writer stored the change's row in
    change_snapshots under that seq; the payload only names it (NOTIFY stops at 8000 bytes).
    """
    send = payload_sql("b.tenant_id", "b.kind", "b.entity_id", "b.id", "b.xid")
    return (
        f"WITH sent AS (SELECT id, pg_notify('{NOTIFY_CHANNEL}', {send}) "  # noqa: S608 - constants
        f"FROM (SELECT * FROM change_outbox ORDER BY id LIMIT {int(batch)}) AS b ORDER BY id) "
        "DELETE FROM change_outbox WHERE id IN (SELECT id FROM sent)"
    )


_LAST_SEQ = "SELECT last_value FROM change_outbox_id_seq"
# By seq (a PK range) and age: a sequence restarted since the sample (tests truncate with
# RESTART IDENTITY) must not take the new, low seqs with it.
_PRUNE = (
    "DELETE FROM change_snapshots "
    "WHERE seq <= $1 AND created_at < now() - make_interval(secs => $2::float8)"
)


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
                # A batch's commit need not wait for its WAL flush: if the server crashes before
                # the flush, the deleted rows come back and are sent again after the restart
                # (when every LISTEN connection reconnects and resyncs anyway). Subscribers may
                # see a change twice then, never miss one; every batch saves an fsync of latency.
                "synchronous_commit": "off",
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
        """Send and delete every row committed so far (`batch` rows a statement); how many.

        Round trips: the idle poll is one (no transaction); a batch is BEGIN with its first
        statement in one simple-query message, then COMMIT (or the next chunk when it was full).
        """
        if not await self._conn.fetchval(POLL_STATEMENT):
            return 0
        take = _take_and_send(batch)
        # REPEATABLE READ: every chunk sees the same snapshot, so a row committed after the first
        # chunk waits for the next batch instead of overtaking rows committed before it.
        status = await self._conn.execute(f"{_BEGIN}; {take}")
        try:
            sent = chunk = _deleted(status)
            while chunk == batch:
                chunk = _deleted(await self._conn.execute(take))
                sent += chunk
            await self._conn.execute("COMMIT")
        except BaseException:
            if not self._conn.is_closed():
                self._conn.terminate()  # the caller reconnects; the batch rolled back
            raise
        return sent

    async def last_seq(self) -> int:
        """The outbox sequence's last value: every seq handed out so far is at most this."""
        return int(await self._conn.fetchval(_LAST_SEQ))

    async def prune(self, up_to: int, older_than: float) -> int:
        """Delete snapshots up to seq `up_to`, older than `older_than` s (one statement)."""
        return _deleted(await self._conn.execute(_PRUNE, up_to, older_than))

    async def close(self) -> None:
        """Close politely (the lock goes with the session); a dead connection is dropped."""
        try:
            await self._conn.close(timeout=2.0)
        except Exception:
            self._conn.terminate()


def _deleted(status: str) -> int:
    """The row count of a `DELETE n` command status."""
    return int(status.rsplit(" ", 1)[1])
