"""The process's one LISTEN connection and its fan-out to WebSocket subscribers.

Changes reach this channel only after their commit, on every replica: with NOTIFY_MODE=outbox
the database's one outbox publisher (gateway/publisher.py) sends the committed change_outbox
rows, with `direct` each mutation's own pg_notify does (delivered at its commit). The hub keeps
exactly one LISTEN connection per process (outside the pool), reconnects it with jittered
exponential backoff when the database goes away, and for each notification that some
subscriber of that tenant wants, loads the change's record ONCE - the row as that change
committed it, by the payload's seq (resolvers/subscriptions.load_change) - and puts the
resulting Change on each interested subscriber's bounded queue. A subscriber whose stream has
a horizon (the snapshot of its read of the current state) skips changes that read already saw.

A subscriber whose queue is full is cut off (its stream ends with SERVICE_UNAVAILABLE,
reason SLOW_SUBSCRIBER) rather than silently losing events or holding memory for ever: a client
that resubscribes reads the current state again (docs/decisions.md).

Every change the hub hands out carries a sequence number (one per notification or resync, in
dispatch order). A subscriber registered while a `Watcher` is set in the context (a WebSocket
operation of a fan-out group, gateway/groups.py) can be PARKED once it has read everything: the
hub then skips it, and the group's one shared stream writes its events to the socket instead,
those after the sequence number the subscriber was parked at. Unparking hands it back its own
queue, optionally with changes to replay.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, cast

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers.listen import ListenConnection
from resolvers.subscriptions import (
    RESYNC,
    Accepts,
    Change,
    ChangeStream,
    Horizon,
    Notification,
    Resync,
    SubscriberTooSlow,
    load_change,
)

__all__ = ["NOTIFICATIONS_DELIVERED", "WATCHER", "NotificationHub", "Subscription", "Watcher"]

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


class Watcher(Protocol):
    """Told what one subscriber's stream does (gateway/groups.py parks it from `idle`)."""

    def attached(self, hub: NotificationHub, subscription: Subscription) -> None:
        """The subscriber was registered with the hub."""

    def idle(self) -> None:
        """Everything queued was read (and handled by the consumer): the stream waits."""

    def taking(self, seq: int, change: Change) -> None:
        """The stream is about to yield this change."""

    def detached(self) -> None:
        """The subscriber left the hub (its stream ended or it was cut off)."""


# Set by the task that opens a subscription: the hub attaches it to the subscriber it registers.
WATCHER: ContextVar[Watcher | None] = ContextVar("gateway_hub_watcher", default=None)


class _Inbox:
    """A subscriber's FIFO of (sequence number, change): asyncio.Queue's part that is used.

    An idle subscriber holds no buffer and no waiter list (a Queue holds four deques, ~2 KiB,
    for as long as the subscription lives); one reader only.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[tuple[int, object]] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: tuple[int, object]) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> tuple[int, object]:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    async def get(self) -> tuple[int, object]:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.get_nowait()


@dataclass(eq=False, slots=True)
class Subscription:
    """One registered subscriber: what it wants, its queue of (sequence number, change)."""

    tenant_id: str
    kinds: frozenset[str]
    accepts: Accepts
    resync: bool
    watcher: Watcher | None = None
    counted: bool = True  # in gateway_subscribers; a group's shared stream is not a subscriber
    bounded: bool = True  # cut off when its queue overflows; a group's shared stream never is
    parked: bool = False  # the hub skips it: its group's shared stream writes to its socket
    # Changes whose transaction this subscriber's last read of the current state saw: skipped.
    horizon: Horizon | None = None
    # A group's shared stream keeps every change (each member skips what its own read saw).
    keeps_all: bool = False
    queue: _Inbox = field(default_factory=_Inbox)

    def skips(self, change: Change) -> bool:
        """Its last read already showed this change (resolvers/subscriptions.Horizon)."""
        return self.horizon is not None and self.horizon.saw(change.xid)


class _ChangeStream:
    """What `subscribe` yields: the subscriber's changes, and `seen` to set its horizon."""

    __slots__ = ("_changes", "_subscriber")

    def __init__(self, hub: NotificationHub, subscriber: Subscription) -> None:
        self._subscriber = subscriber
        self._changes = hub._stream(subscriber)

    def __aiter__(self) -> _ChangeStream:
        return self

    async def __anext__(self) -> Change:
        return await anext(self._changes)

    async def aclose(self) -> None:
        await self._changes.aclose()

    def seen(self, horizon: Horizon) -> None:
        if not self._subscriber.keeps_all:
            self._subscriber.horizon = horizon


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
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._seq = 0  # sequence number of the last change handed out
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
        if not any(note.kind in s.kinds for s in self._subscribers.get(note.tenant_id, ())):
            return
        NOTIFICATION_LOADS.inc()
        change = await load_change(self._loads, note)
        if change is None:
            return
        # Who gets it is decided after the load, in one step with its sequence number: a
        # subscriber parked meanwhile gets it from its group's stream, never twice or not at all.
        self._seq += 1
        delivered = 0
        for subscriber in list(self._subscribers.get(note.tenant_id, ())):
            if subscriber.parked or note.kind not in subscriber.kinds:
                continue
            if subscriber.accepts(change) and self._offer(subscriber, self._seq, change):
                delivered += subscriber.counted  # a group's stream counts its members itself
        NOTIFICATIONS_DELIVERED.inc(delivered)  # once per notification, not per subscriber

    def _resync(self) -> None:
        """Changes committed while LISTEN was down are lost: every resync subscriber is told.

        One Resync record per reconnect, the same object for every subscriber, so subscribers
        of an equal operation still share the execution of the signal (gateway/fanout.py).
        """
        marker = Resync(datetime.now(UTC))
        self._seq += 1
        for tenant_id, subs in list(self._subscribers.items()):
            change = Change(tenant_id, RESYNC, "", marker)
            for subscriber in list(subs):
                if (
                    subscriber.resync
                    and not subscriber.parked
                    and self._offer(subscriber, self._seq, change)
                ):
                    NOTIFICATIONS_DELIVERED.inc(subscriber.counted)

    def _offer(self, subscriber: Subscription, seq: int, change: Change) -> bool:
        """Queue the change; False when the subscriber was too slow and is cut off instead."""
        if not subscriber.bounded or subscriber.queue.qsize() < self._queue_size:
            subscriber.queue.put_nowait((seq, change))
            return True
        self.cut_off(subscriber)
        return False

    def cut_off(self, subscriber: Subscription) -> None:
        """Too slow: drop what it has not read, tell it once (SLOW_SUBSCRIBER), stop feeding it."""
        SLOW_SUBSCRIBERS.inc()
        log.warning("subscriber of tenant %s fell behind; cutting it off", subscriber.tenant_id)
        self._remove(subscriber)
        subscriber.parked = False
        while not subscriber.queue.empty():
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait((self._seq, _OVERFLOW))

    # --- parking (gateway/groups.py) ------------------------------------------------------------

    def park(self, subscriber: Subscription) -> int:
        """Stop queueing changes for it; returns the sequence number it has seen everything up to.

        Only for a subscriber that has read its whole queue (its watcher's `idle`).
        """
        subscriber.parked = True
        return self._seq

    def unpark(self, subscriber: Subscription, replay: Iterable[tuple[int, Change]] = ()) -> None:
        """Queue its changes again, first `replay` (changes its group did not deliver to it)."""
        subscriber.parked = False
        if not self._registered(subscriber):
            return  # cut off or gone meanwhile
        for seq, change in replay:
            self._offer(subscriber, seq, change)

    def _registered(self, subscriber: Subscription) -> bool:
        return subscriber in self._subscribers.get(subscriber.tenant_id, ())

    def _remove(self, subscriber: Subscription) -> None:
        subs = self._subscribers.get(subscriber.tenant_id)
        if subs is not None and subscriber in subs:
            subs.discard(subscriber)
            if subscriber.counted:
                SUBSCRIBERS.dec()
            if not subs:
                del self._subscribers[subscriber.tenant_id]
            if subscriber.watcher is not None:
                subscriber.watcher.detached()

    @property
    def queue_size(self) -> int:
        """Changes a subscriber may leave unread before it is cut off."""
        return self._queue_size

    def subscriber_count(self) -> int:
        return sum(s.counted for subs in self._subscribers.values() for s in subs)

    @asynccontextmanager
    async def subscribe(
        self, tenant_id: str, kinds: frozenset[str], accepts: Accepts, *, resync: bool = False
    ) -> AsyncIterator[ChangeStream]:
        """Register a subscriber for the block; yields its stream of accepted changes.

        With `resync`, the stream also gets a RESYNC change after each LISTEN reconnect.
        """
        watcher = WATCHER.get()
        subscriber = Subscription(tenant_id, kinds, accepts, resync, watcher)
        if watcher is not None:
            watcher.attached(self, subscriber)  # may mark it a group's stream (not counted)
        self._subscribers[tenant_id].add(subscriber)
        if subscriber.counted:
            SUBSCRIBERS.inc()
        try:
            yield _ChangeStream(self, subscriber)
        finally:
            self._remove(subscriber)

    async def _stream(self, subscriber: Subscription) -> AsyncGenerator[Change]:
        watcher = subscriber.watcher
        while True:
            if watcher is not None and subscriber.queue.empty():
                watcher.idle()
            seq, item = await subscriber.queue.get()
            if item is _OVERFLOW:
                raise SubscriberTooSlow(
                    "this subscriber fell too far behind and was cut off; subscribe again",
                    reason="SLOW_SUBSCRIBER",
                )
            change = cast("Change", item)
            if subscriber.skips(change):
                continue  # queued before (or while) its current state was read, and in it
            if watcher is not None:
                watcher.taking(seq, change)
            yield change
