"""Fan-out groups: one task writes each event of equal subscriptions to every socket of the group.

A WebSocket operation with a group key (gateway/fanout.py: same principal, document,
operationName and variables) starts as any other: its own stream, hub queue and task send its
current state and whatever changes arrive meanwhile. Once that stream has sent everything and
waits (the hub calls its watcher's `idle`), it is PARKED: the hub stops queueing changes for it,
its task sleeps, and the group's one shared stream — a hidden subscription of the same operation,
run once per group — executes each later change once and writes the framed `next` straight to
the transport of every parked member, in one synchronous loop (no per-subscriber task, await or
Strawberry hook per event).

No event is lost or sent twice: the hub numbers every change, a member parks only at a moment when
both it and the shared stream have handled every change so far (both idle), and the shared stream
writes change N only to members parked before N. Order is the hub's order on both paths. The
shared stream keeps every change; a member skips those its own first read already showed (its
horizon, checked in the write loop).

What stays per subscriber: anything that is not a plain shared result. A result with errors,
an error that ends the shared stream, or the shared stream ending for any reason DISSOLVES the
group: every member is unparked and handed the changes it did not get (the failing one included),
so its own stream executes them as before (its own error, masking, RESYNC end, `complete`). A
member whose socket has more than `hub.queue_size` frames (at least 64 KiB) unsent is too slow:
it alone is cut off as before (its own stream ends with SLOW_SUBSCRIBER).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import Counter, Gauge
from strawberry.types import ExecutionResult
from strawberry.utils.aio import aclosing
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from gateway import fanout
from gateway.notifications import (
    NOTIFICATIONS_DELIVERED,
    WATCHER,
    NotificationHub,
    Subscription,
)
from resolvers.subscriptions import Change

if TYPE_CHECKING:
    from starlette.websockets import WebSocket
    from strawberry.schema import BaseSchema

    from resolvers.context import Context

__all__ = ["ASGI_SEND", "Member", "OperationSpec", "SocketSink", "group_count", "text_frame"]

log = logging.getLogger("gateway.notifications")

GROUPS = Gauge("gateway_fanout_groups", "Groups of equal subscriptions with a shared stream")
PARKED = Gauge("gateway_fanout_parked", "Subscribers served by their group's shared stream")
WRITES = Counter(
    "gateway_fanout_frames_total", "Event frames written by a group's shared stream (per socket)"
)
DISSOLVED = Counter(
    "gateway_fanout_dissolved_total",
    "Groups handed back to their members' own streams (an error or the shared stream ended)",
)

# Scope state: the server's own ASGI `send` of a WebSocket (set by gateway/request_context.py)
ASGI_SEND = "asgi_send"
_MIN_BACKLOG = 64 * 1024  # bytes a member's socket may have unsent before it counts as slow
# Members before a group runs its shared stream: a lone subscriber (e.g. one per user) keeps its
# own stream, as a shared one would only double its stream, task and memory.
_SHARED_FROM = 2

_groups: dict[tuple[int, Hashable], _Group] = {}


def group_count() -> int:
    """Groups alive in this process (tests)."""
    return len(_groups)


def text_frame(body: bytes) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455 § 5.2), as a server sends it."""
    n = len(body)
    if n < 126:
        return bytes((0x81, n)) + body
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + body
    return b"\x81\x7f" + n.to_bytes(8, "big") + body


class SocketSink:
    """Where a parked member's frames go: its connection's transport, if it is still open."""

    __slots__ = ("handler_operations", "id_json", "operation", "protocol")

    def __init__(
        self, protocol: WebSocketsSansIOProtocol, operations: dict[str, Any], operation: Any
    ) -> None:
        self.protocol = protocol
        self.handler_operations = operations
        self.operation = operation
        self.id_json = orjson.dumps(operation.id).decode().encode()  # exact size, not 4 KiB

    @classmethod
    def of(
        cls, websocket: WebSocket, operations: dict[str, Any], operation: Any
    ) -> SocketSink | None:
        """The sink of a socket served by uvicorn's sans-I/O protocol; None for any other server."""
        send = websocket.scope.get("state", {}).get(ASGI_SEND)
        protocol = getattr(send, "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol):
            return None
        return cls(protocol, operations, operation)

    def open(self) -> bool:
        """The operation is still running on a socket that is not closing."""
        protocol = self.protocol
        return not (
            protocol.close_sent
            or protocol.disconnected
            or protocol.transport.is_closing()
            or self.operation.completed
            or self.handler_operations.get(self.operation.id) is not self.operation
        )


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """What the group's shared stream runs: the members' operation, with a copy of a context."""

    schema: BaseSchema
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    context: Context
    root_value: Any


class Member:
    """The hub watcher of one WebSocket operation of a group: parks it when it is idle."""

    __slots__ = ("group", "hub", "idle_now", "key", "since", "sink", "spec", "subscription")

    def __init__(self, key: Hashable, sink: SocketSink, spec: OperationSpec) -> None:
        self.key = key
        self.sink = sink
        self.spec = spec
        self.hub: NotificationHub | None = None
        self.subscription: Subscription | None = None
        self.group: _Group | None = None
        self.idle_now = False
        self.since = 0  # parked after this sequence number

    def attached(self, hub: NotificationHub, subscription: Subscription) -> None:
        self.hub, self.subscription = hub, subscription

    def idle(self) -> None:
        self.idle_now = True
        group = self.group
        if group is None and self.hub is not None:
            group = self.group = _Group.of(self.hub, self.key, self.spec)
            group.waiting[self] = None
        if group is not None:
            if group.task is None and len(group.waiting) + len(group.members) >= _SHARED_FROM:
                group.start()
            group.try_park(self)

    def taking(self, seq: int, change: Change) -> None:
        self.idle_now = False

    def detached(self) -> None:
        if self.group is not None:
            self.group.leave(self)


class _Group:
    """The members of one group key on one hub, and the shared stream serving the parked ones."""

    def __init__(self, hub: NotificationHub, key: Hashable, spec: OperationSpec) -> None:
        self.hub = hub
        self.key = key
        self.spec = spec
        self.members: dict[Member, None] = {}  # parked (insertion order: who joined first)
        self.waiting: dict[Member, None] = {}  # joined, parked once both sides are idle
        self.subscription: Subscription | None = None  # the shared stream's, once registered
        self.stream_idle = False
        self.live = False  # the shared stream has sent (discarded) its own initial results
        self.seq = 0  # the change the shared stream is executing
        self.change: Change | None = None
        self.done = 0  # every change up to this one was delivered to the parked members
        self.dissolved = False
        self.task: asyncio.Task[None] | None = None  # the shared stream, once a second member came

    @classmethod
    def of(cls, hub: NotificationHub, key: Hashable, spec: OperationSpec) -> _Group:
        found = _groups.get((id(hub), key))
        if found is None or found.hub is not hub:
            found = _groups[(id(hub), key)] = cls(hub, key, spec)
        return found

    def start(self) -> None:
        """Run the shared stream (members park once it has caught up)."""
        if self.task is None and not self.dissolved:
            self.task = asyncio.create_task(self._run(), name="gateway-fanout-group")
            GROUPS.inc()

    # --- the shared stream's watcher ------------------------------------------------------------

    def attached(self, hub: NotificationHub, subscription: Subscription) -> None:
        subscription.counted = False  # not a subscriber: gateway_subscribers counts sockets
        subscription.bounded = False  # never cut off: it only writes, it never waits on a socket
        subscription.keeps_all = True  # its own read is not the members': they skip per member
        self.subscription = subscription

    def idle(self) -> None:
        self.stream_idle = True
        self.live = True
        self.done = self.seq
        for member in list(self.waiting):
            self.try_park(member)

    def taking(self, seq: int, change: Change) -> None:
        self.stream_idle = False
        self.done = self.seq
        self.seq, self.change = seq, change
        NOTIFICATIONS_DELIVERED.inc(sum(m.since < seq for m in self.members))

    def detached(self) -> None:
        self.dissolve()

    # --- members --------------------------------------------------------------------------------

    def try_park(self, member: Member) -> None:
        """Park the member if it and the shared stream have both handled every change so far."""
        shared, own = self.subscription, member.subscription
        if (
            self.dissolved
            or not self.stream_idle
            or shared is None
            or not shared.queue.empty()
            or own is None
            or not member.idle_now
            or not own.queue.empty()
            or member not in self.waiting
        ):
            return
        del self.waiting[member]
        member.since = self.hub.park(own)
        self.members[member] = None
        PARKED.inc()

    def leave(self, member: Member) -> None:
        if self.members.pop(member, 0) is None:
            PARKED.dec()
        self.waiting.pop(member, None)
        member.group = None
        if not self.members and not self.waiting:
            self.dissolve()

    def dissolve(self, *, failed: bool = False) -> None:
        """Hand every member back to its own stream, with the changes it did not get."""
        if self.dissolved:
            return
        self.dissolved = True
        if self.task is not None:
            GROUPS.dec()
        if _groups.get((id(self.hub), self.key)) is self:
            del _groups[(id(self.hub), self.key)]
        replay: list[tuple[int, Change]] = []
        if self.change is not None and (failed or self.done < self.seq):
            replay.append((self.seq, self.change))
        shared = self.subscription
        while shared is not None and not shared.queue.empty():
            seq, item = shared.queue.get_nowait()
            if isinstance(item, Change):
                replay.append((seq, item))
        if self.members:
            DISSOLVED.inc()
        for member in list(self.members):
            PARKED.dec()
            member.group = None
            if member.subscription is not None:
                self.hub.unpark(
                    member.subscription, [(s, c) for s, c in replay if s > member.since]
                )
        for member in self.waiting:
            member.group = None
        self.members.clear()
        self.waiting.clear()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    # --- the shared stream ----------------------------------------------------------------------

    async def _run(self) -> None:
        WATCHER.set(self)
        spec = self.spec
        try:
            stream = await spec.schema.stream(
                spec.query,
                variable_values=spec.variables,
                context_value=dataclasses.replace(spec.context),
                root_value=spec.root_value,
                operation_name=spec.operation_name,
                operation_extensions={fanout.SHARE_KEY: self.key},
            )
            async with aclosing(stream):
                async for result in stream:
                    if not self.live:
                        continue  # its own current state: the members sent theirs
                    if (
                        not isinstance(result, ExecutionResult)
                        or result.errors
                        or result.extensions
                        or result.data is None
                    ):
                        self.dissolve(failed=True)  # each member executes it on its own
                        return
                    self._deliver(result.data)
        except Exception:
            log.exception("a fan-out group's shared stream failed; its members go on alone")
        finally:
            self.dissolve()

    def _deliver(self, data: Any) -> None:
        """Frame the event once per operation id; write it to every member parked before it."""
        seq, change = self.seq, self.change
        text = fanout.results.payload(data)
        payload = text.encode() if text is not None else orjson.dumps({"data": data})
        tail = b',"type":"next","payload":' + payload + b"}"
        limit = max(_MIN_BACKLOG, self.hub.queue_size * (len(tail) + 16))
        frames: dict[bytes, bytes] = {}
        slow: list[Member] = []
        written = 0
        for member in self.members:
            sink = member.sink
            if member.since >= seq or not sink.open():
                continue
            own = member.subscription
            if own is not None and change is not None and own.skips(change):
                continue  # its own read of the current state already showed this change
            transport = sink.protocol.transport
            if transport.get_write_buffer_size() > limit:
                slow.append(member)
                continue
            frame = frames.get(sink.id_json)
            if frame is None:
                frame = frames[sink.id_json] = text_frame(b'{"id":' + sink.id_json + tail)
            transport.write(frame)
            written += 1
        WRITES.inc(written)
        for member in slow:
            self.members.pop(member, None)
            PARKED.dec()
            member.group = None
            if member.subscription is not None:
                self.hub.cut_off(member.subscription)
