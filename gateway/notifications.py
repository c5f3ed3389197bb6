"""The process's one LISTEN connection and its fan-out to WebSocket subscribers.

Changes reach this channel only after their commit, on every replica: with NOTIFY_MODE=outbox
the database's one outbox publisher (gateway/publisher.py) sends the committed change_outbox
rows, with `direct` each mutation's own pg_notify does (delivered at its commit). The hub keeps
exactly one LISTEN connection per process (outside the pool), reconnects it with jittered
exponential backoff when the database goes away, and for each notification that some
subscriber of that tenant wants, loads the changed row ONCE and puts the resulting Change on
each interested subscriber's bounded queue.

A subscriber whose queue is full is cut off (its stream ends with SERVICE_UNAVAILABLE,
reason SLOW_SUBSCRIBER) rather than silently losing events or holding memory for ever: a client
that resubscribes reads the current state again (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, cast

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers.listen import ListenConnection
from resolvers.subscriptions import (
    RESYNC,
    Accepts,
    Change,
    Notification,
    Resync,
    SubscriberTooSlow,
    load_change,
)

__all__ = ["NotificationHub"]

log = logging.getLogger("gateway.notifications")

SUBSCRIBERS = Gauge("gateway_subscribers", "Open GraphQL subscriptions on this process")
NOTIFICATIONS_RECEIVED = Counter(
    "gateway_notifications_received_total", "Change notifications received from PostgreSQL"
)
NOTIFICATIONS_DELIVERED = Counter(
    "gateway_notifications_delivered_total", "Changes queued to subscribers (one per subscriber)"
)
NOTIFICATION_LOADS = Counter(
    "gateway_notification_loads_total", "Changed rows loaded (at most one per notification)"
)
SLOW_SUBSCRIBERS = Counter(
    "gateway_subscribers_dropped_total", "Subscribers cut off because their queue overflowed"
)
LISTENER_CONNECTED = Gauge("gateway_listener_connected", "1 while the LISTEN connection is up")
LISTENER_RECONNECTS = Counter(
    "gateway_listener_reconnects_total", "Times the LISTEN connection was re-established"
)

ListenerState = Literal["stopped", "connecting", "connected", "reconnecting"]
_OVERFLOW = object()


@dataclass(eq=False, slots=True)
class _Subscriber:
    tenant_id: str
    kinds: frozenset[str]
    accepts: Accepts
    resync: bool
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)


class NotificationHub:
    """One LISTEN connection per process, fanned out to per-subscriber bounded queues."""

    def __init__(
        self,
        database_url: str,
        loads: AsyncEngine,
        *,
        queue_size: int = 256,
        ping_interval: float = 10.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
    ) -> None:
        self._url = database_url
        self._loads = loads
        self._queue_size = queue_size
        self._ping_interval = ping_interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._subscribers: dict[str, set[_Subscriber]] = defaultdict(set)
        self._inbox: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._first_attempt = asyncio.Event()
        self.state: ListenerState = "stopped"

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, *, wait: float = 5.0) -> None:
        """Start listening; waits (at most `wait` s) for the first attempt, then retries alone."""
        self.state = "connecting"
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="gateway-listen"),
            asyncio.create_task(self._dispatch_forever(), name="gateway-dispatch"),
        ]
        with suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), wait)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._set_state("stopped")

    def _set_state(self, state: ListenerState) -> None:
        self.state = state
        LISTENER_CONNECTED.set(1 if state == "connected" else 0)

    async def _listen_forever(self) -> None:
        delay = self._backoff_initial
        attempts = 0
        while True:
            try:
                conn = await ListenConnection.open(self._url, self._on_payload)
            except Exception as exc:
                self._first_attempt.set()
                attempts += 1
                pause = random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not crypto
                log.warning(
                    "LISTEN connection failed (attempt %d): %s; retrying in %.2fs",
                    attempts,
                    exc,
                    pause,
                )
                self._set_state("reconnecting")
                await asyncio.sleep(pause)
                delay = min(delay * 2, self._backoff_max)
                continue
            reconnected = self.state == "reconnecting"
            self._set_state("connected")
            if reconnected:
                LISTENER_RECONNECTS.inc()
                log.warning("LISTEN connection re-established after %d failed attempt(s)", attempts)
                self._resync()
            else:
                log.info("LISTEN connection established")
            self._first_attempt.set()
            delay, attempts = self._backoff_initial, 0
            try:
                await self._hold(conn)
            finally:
                await conn.close()
            self._set_state("reconnecting")
            log.warning("LISTEN connection lost; reconnecting")

    async def _hold(self, conn: ListenConnection) -> None:
        """Return when the connection is lost: terminated, or a ping fails (half-open socket)."""
        while not conn.lost.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(conn.lost.wait(), self._ping_interval)
                return
            try:
                await asyncio.wait_for(conn.ping(), min(self._ping_interval, 5.0))
            except Exception as exc:
                log.warning("LISTEN connection ping failed: %s", exc)
                return

    # --- fan-out --------------------------------------------------------------------------------

    def _on_payload(self, payload: str) -> None:
        NOTIFICATIONS_RECEIVED.inc()
        self._inbox.put_nowait(payload)

    async def _dispatch_forever(self) -> None:
        while True:
            payload = await self._inbox.get()
            try:
                await self._dispatch(payload)
            except Exception:
                log.exception("could not deliver notification %s", payload)

    async def _dispatch(self, payload: str) -> None:
        note = Notification.parse(payload)
        if note is None:
            log.warning("ignoring malformed notification %r", payload)
            return
        interested = [s for s in self._subscribers.get(note.tenant_id, ()) if note.kind in s.kinds]
        if not interested:
            return
        NOTIFICATION_LOADS.inc()
        change = await load_change(self._loads, note)
        if change is None:
            return
        delivered = 0
        for subscriber in interested:
            if subscriber.accepts(change) and self._offer(subscriber, change):
                delivered += 1
        NOTIFICATIONS_DELIVERED.inc(delivered)  # once per notification, not per subscriber

    def _resync(self) -> None:
        """Changes committed while LISTEN was down are lost: every resync subscriber is told.

        One Resync record per reconnect, the same object for every subscriber, so subscribers
        of an equal operation still share the execution of the signal (gateway/fanout.py).
        """
        marker = Resync(datetime.now(UTC))
        for tenant_id, subs in list(self._subscribers.items()):
            change = Change(tenant_id, RESYNC, "", marker)
            for subscriber in list(subs):
                if subscriber.resync and self._offer(subscriber, change):
                    NOTIFICATIONS_DELIVERED.inc()

    def _offer(self, subscriber: _Subscriber, change: Change) -> bool:
        """Queue the change; False when the subscriber was too slow and is cut off instead."""
        if subscriber.queue.qsize() < self._queue_size:
            subscriber.queue.put_nowait(change)
            return True
        # Too slow: drop what it has not read, tell it once, and stop feeding it.
        SLOW_SUBSCRIBERS.inc()
        log.warning("subscriber of tenant %s fell behind; cutting it off", subscriber.tenant_id)
        self._remove(subscriber)
        while not subscriber.queue.empty():
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(_OVERFLOW)
        return False

    def _remove(self, subscriber: _Subscriber) -> None:
        subs = self._subscribers.get(subscriber.tenant_id)
        if subs is not None and subscriber in subs:
            subs.discard(subscriber)
            SUBSCRIBERS.dec()
            if not subs:
                del self._subscribers[subscriber.tenant_id]

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    @asynccontextmanager
    async def subscribe(
        self, tenant_id: str, kinds: frozenset[str], accepts: Accepts, *, resync: bool = False
    ) -> AsyncIterator[AsyncIterator[Change]]:
        """Register a subscriber for the block; yields its stream of accepted changes.

        With `resync`, the stream also gets a RESYNC change after each LISTEN reconnect.
        """
        subscriber = _Subscriber(tenant_id, kinds, accepts, resync)
        self._subscribers[tenant_id].add(subscriber)
        SUBSCRIBERS.inc()
        try:
            yield self._stream(subscriber)
        finally:
            self._remove(subscriber)

    async def _stream(self, subscriber: _Subscriber) -> AsyncIterator[Change]:
        while True:
            item = await subscriber.queue.get()
            if item is _OVERFLOW:
                raise SubscriberTooSlow(
                    "this subscriber fell too far behind and was cut off; subscribe again",
                    reason="SLOW_SUBSCRIBER",
                )
            yield cast("Change", item)
