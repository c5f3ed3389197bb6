"""The change outbox publisher: one per database, any gateway or worker process may be it.

Every process with OUTBOX_PUBLISHER on runs one of these. Each waits for the publisher's
advisory lock on a connection of its own (drivers/outbox.py); the one that holds it polls the
change_outbox table every OUTBOX_POLL_SECONDS and sends what committed through NOTIFY, which
every replica's LISTEN hub (gateway/notifications.py) receives like a direct pg_notify. The
others wait on the lock: when the holder's process or connection dies, PostgreSQL releases
the lock and the next waiter publishes at once, from the rows the dead holder did not commit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from contextlib import suppress
from typing import Any

from prometheus_client import Counter, Gauge

from drivers.audit import NOTIFY_MODE_OPTION
from drivers.outbox import OutboxConnection
from gateway.settings import Settings

__all__ = ["OutboxPublisher", "notify_mode_options", "publisher_for"]

log = logging.getLogger("gateway.publisher")

PUBLISHER_ACTIVE = Gauge(
    "gateway_outbox_publisher_active", "1 while this process is the database's outbox publisher"
)
OUTBOX_PUBLISHED = Counter(
    "gateway_outbox_published_total", "Change notifications this process sent from the outbox"
)
OUTBOX_BATCHES = Counter(
    "gateway_outbox_batches_total", "Outbox transactions (batches) this process committed"
)


class OutboxPublisher:
    """Holds (or waits for) the publisher lock and drains the outbox while it holds it."""

    def __init__(
        self,
        database_url: str,
        *,
        poll_seconds: float = 0.01,
        batch_size: int = 1000,
        lock_wait: float = 10.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        snapshot_seconds: float = 60.0,
    ) -> None:
        self._url = database_url
        self._poll = poll_seconds
        self._batch = batch_size
        self._lock_wait = lock_wait
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._keep = snapshot_seconds
        self._task: asyncio.Task[None] | None = None
        self.active = False  # this process holds the lock right now

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="gateway-outbox-publisher")

    async def stop(self) -> None:
        """Stop publishing; closing the connection hands the lock to another process."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._set_active(False)

    def _set_active(self, active: bool) -> None:
        self.active = active
        PUBLISHER_ACTIVE.set(1 if active else 0)

    async def _run_forever(self) -> None:
        delay = self._backoff_initial
        while True:
            conn: OutboxConnection | None = None
            try:
                conn = await OutboxConnection.open(self._url, lock_wait=self._lock_wait)
                while not await conn.wait_for_lock():
                    pass  # the holder is alive; the bounded wait only proves our connection is
                self._set_active(True)
                log.info("this process is now the outbox publisher")
                delay = self._backoff_initial
                await self._publish_forever(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                pause = random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not crypto
                log.warning("outbox publisher: %s; retrying in %.2fs", exc, pause)
                self._set_active(False)
                await asyncio.sleep(pause)
                delay = min(delay * 2, self._backoff_max)
            finally:
                if conn is not None:
                    await asyncio.shield(conn.close())

    async def _publish_forever(self, conn: OutboxConnection) -> None:
        """Publish until the connection fails; poll again at once after a batch that sent rows.

        Every tenth of the snapshot lifetime it also prunes change_snapshots: the seqs handed
        out at least `snapshot_seconds` ago (by its own samples of the sequence) are deleted.
        A hub reads a change's snapshot within milliseconds of its NOTIFY; one that finds none
        (it fell a minute behind) reads the current row instead (resolvers/subscriptions.py).
        """
        loop = asyncio.get_running_loop()
        samples: deque[tuple[float, int]] = deque()  # (when, last seq then), oldest first
        next_sample = loop.time()
        while True:
            sent = await conn.publish(self._batch)
            if sent:
                OUTBOX_PUBLISHED.inc(sent)
                OUTBOX_BATCHES.inc()
            else:
                await asyncio.sleep(self._poll)
            now = loop.time()
            if now >= next_sample:
                next_sample = now + self._keep / 10
                samples.append((now, await conn.last_seq()))
                up_to = None
                while samples and samples[0][0] <= now - self._keep:
                    up_to = samples.popleft()[1]
                if up_to is not None:
                    await conn.prune(up_to, self._keep)


def notify_mode_options(settings: Settings) -> dict[str, Any]:
    """The write engine's execution options that carry NOTIFY_MODE to drivers/audit.py."""
    return {NOTIFY_MODE_OPTION: settings.notify_mode}


def publisher_for(settings: Settings, direct_url: str) -> OutboxPublisher | None:
    """This process's publisher candidate (None with OUTBOX_PUBLISHER off), not yet started.

    It runs in direct mode too: rows a writer of the other mode left (a rolling switch, a CLI
    command) are still published. `direct_url` must not go through a transaction pooler: the
    lock belongs to the session.
    """
    if not settings.outbox_publisher:
        return None
    return OutboxPublisher(
        direct_url,
        poll_seconds=settings.outbox_poll_seconds,
        batch_size=settings.outbox_batch_size,
    )
