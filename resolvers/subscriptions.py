"""Live subscriptions, framework-free: what a notification means, loading it, who may see it.

A mutation publishes `{"tenant_id", "kind", "id"}` from inside its transaction
(resolvers/unit_of_work.py; an outbox row or a pg_notify, drivers/audit.py), and it is
delivered only after commit. Each process has one
listener (the gateway's hub); for every notification somebody of that tenant wants, the hub calls
`load_change` ONCE and hands the resulting `Change` to every interested subscriber. The functions
here turn that feed into the records each root subscription field yields.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from drivers import breakers as breaker_rows
from drivers import changes
from drivers.records import CircuitBreakerRecord, IncidentEventRecord, IncidentRecord
from resolvers import breakers
from resolvers.auth import Role, require_role
from resolvers.context import Context
from resolvers.errors import Unavailable, translate_errors
from resolvers.loaders import Loaders

__all__ = [
    "BREAKER_KINDS",
    "EVENT_KINDS",
    "INCIDENT_KINDS",
    "RESYNC",
    "Change",
    "ChangeFeed",
    "ChangeStream",
    "Horizon",
    "ListenerResynced",
    "Notification",
    "Resync",
    "SubscriberTooSlow",
    "breaker_changes",
    "incident_changes",
    "incident_events_added",
    "load_change",
]

# Notification kind -> the IncidentChange.kind clients see.
INCIDENT_KINDS: dict[str, str] = {
    "INCIDENT_CREATED": "CREATED",
    "INCIDENT_UPDATED": "UPDATED",
    "INCIDENT_ESCALATED": "ESCALATED",
    "INCIDENT_ACKNOWLEDGED": "ACKNOWLEDGED",
    "INCIDENT_RESOLVED": "RESOLVED",
}
EVENT_KINDS = frozenset({"INCIDENT_EVENT_ADDED"})
BREAKER_KINDS = frozenset({"BREAKER_CHANGED"})
# Not a notification: the feed's signal that LISTEN reconnected and changes may have been missed.
RESYNC = "RESYNC"


@dataclass(frozen=True, slots=True, eq=False)
class Resync:
    """The record of a RESYNC change: when LISTEN came back (one object per reconnect)."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Notification:
    """One pg_notify payload: which tenant's what changed, and which change it was.

    `seq` names the change's snapshot (drivers/audit.py) and `xid` its transaction; both are
    None in a payload without them (written before they existed).
    """

    tenant_id: str
    kind: str
    id: str
    seq: int | None = None
    xid: int | None = None

    @classmethod
    def parse(cls, payload: str) -> Notification | None:
        """Decode a payload; anything malformed is None (logged and skipped by the hub)."""
        try:
            data = orjson.loads(payload)
            note = cls(
                str(data["tenant_id"]),
                str(data["kind"]),
                str(data["id"]),
                _int(data.get("seq")),
                _int(data.get("xid")),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None
        return note if note.tenant_id and note.kind and note.id else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class Change:
    """A committed change: its row as the change committed it, and its transaction's id.

    Without a snapshot the row is as loaded right after the notification arrived.
    """

    tenant_id: str
    kind: str
    id: str
    record: Any
    xid: int | None = None


Accepts = Callable[[Change], bool]


@dataclass(frozen=True, slots=True)
class Horizon:
    """What a read saw: its PostgreSQL snapshot (pg_current_snapshot(), "xmin:xmax:xip,...").

    A change whose transaction the snapshot sees is already in that read's result, so a
    subscriber that sent the read's result first skips it (its notification may arrive later:
    the outbox publisher polls). Exact whatever the commit order, unlike comparing rows.
    """

    xmin: int
    xmax: int
    running: frozenset[int]

    @classmethod
    def parse(cls, snapshot: str) -> Horizon:
        xmin, xmax, xip = snapshot.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def saw(self, xid: int | None) -> bool:
        """The transaction committed before the read (pg_visible_in_snapshot); unknown: no."""
        if xid is None:
            return False
        return xid < self.xmin or (xid < self.xmax and xid not in self.running)


class ChangeStream(Protocol):
    """A subscriber's stream of changes (the feed's); `seen` drops what a read already showed."""

    def __aiter__(self) -> ChangeStream: ...

    async def __anext__(self) -> Change: ...

    def seen(self, horizon: Horizon) -> None:
        """From now on skip changes whose transaction `horizon` saw (replaces the previous)."""


class ChangeFeed(Protocol):
    """What the subscription resolvers need from the process's notification hub."""

    def subscribe(
        self, tenant_id: str, kinds: frozenset[str], accepts: Accepts, *, resync: bool = False
    ) -> AbstractAsyncContextManager[ChangeStream]: ...


class SubscriberTooSlow(Unavailable):
    """The subscriber's queue overflowed; it must resubscribe (and re-read current state)."""


class ListenerResynced(Unavailable):
    """LISTEN reconnected and this stream cannot signal a gap in-band; it must resubscribe."""


Load = Callable[[AsyncConnection, str, str], Awaitable[Any]]


async def _incident(conn: AsyncConnection, tenant_id: str, entity_id: str) -> Any:
    return (await changes.fetch_incidents(conn, tenant_id=tenant_id, ids=[entity_id])).get(
        entity_id
    )


async def _breaker(conn: AsyncConnection, tenant_id: str, entity_id: str) -> Any:
    if not entity_id.isdigit():
        return None
    key = int(entity_id)
    found = await breaker_rows.fetch_breakers_by_ids(conn, tenant_id=tenant_id, ids=[key])
    return found.get(key)


async def _event(conn: AsyncConnection, tenant_id: str, entity_id: str) -> Any:
    return (await changes.fetch_events(conn, tenant_id=tenant_id, ids=[entity_id])).get(entity_id)


# kind -> how to load its row (one statement); extended by other domains' kinds.
LOADERS: dict[str, Load] = {
    **dict.fromkeys(INCIDENT_KINDS, _incident),
    "INCIDENT_EVENT_ADDED": _event,
    "BREAKER_CHANGED": _breaker,
}


async def load_change(reads: AsyncEngine, note: Notification) -> Change | None:
    """The change's record, filtered by the notification's tenant; None if gone/unknown.

    The change's own snapshot when it has one (each of several changes of one row committed
    before the hub reads is delivered as its own state, in commit order); otherwise - a kind
    without snapshots (timeline events never change), a payload without a seq, or a snapshot
    already pruned - the row as it is now. One statement, two when the snapshot was pruned.
    """
    load = LOADERS.get(note.kind)
    if load is None:
        return None
    with translate_errors():
        async with reads.connect() as conn:
            record = None
            if note.seq is not None:
                record = await changes.fetch_snapshot(
                    conn, tenant_id=note.tenant_id, kind=note.kind, seq=note.seq
                )
            if record is None:
                record = await load(conn, note.tenant_id, note.id)
    return None if record is None else Change(note.tenant_id, note.kind, note.id, record, note.xid)


def _feed(ctx: Context) -> ChangeFeed:
    if ctx.feed is None:
        raise Unavailable("live subscriptions are not available in this process")
    return ctx.feed


def _renew_loaders(ctx: Context) -> None:
    # A subscription lives for hours; its nested fields must not read a cache from an earlier
    # event, so every delivered event resolves with fresh loaders.
    tenant = ctx.principal.tenant_id if ctx.principal else ""
    object.__setattr__(ctx, "loaders", Loaders(ctx.db.reads, tenant))


async def incident_changes(
    ctx: Context, severities: tuple[str, ...] | None
) -> AsyncIterator[tuple[str, IncidentRecord | Resync]]:
    """(IncidentChange kind, incident) for every committed change of the tenant's incidents.

    After the process's LISTEN connection reconnects, ("RESYNC", Resync) instead: changes made
    while it was down were not heard, so the client re-reads the incidents it shows.
    """
    principal = require_role(ctx, Role.VIEWER)
    wanted = None if severities is None else frozenset(severities)

    def accepts(change: Change) -> bool:
        return wanted is None or change.record.severity in wanted

    kinds = frozenset(INCIDENT_KINDS)
    async with _feed(ctx).subscribe(principal.tenant_id, kinds, accepts, resync=True) as stream:
        async for change in stream:
            _renew_loaders(ctx)
            if change.kind == RESYNC:
                yield RESYNC, change.record
            else:
                yield INCIDENT_KINDS[change.kind], change.record


async def incident_events_added(
    ctx: Context, incident_id: str
) -> AsyncIterator[IncidentEventRecord]:
    """Every timeline event committed for one of the tenant's incidents.

    An unknown or foreign incident id is not an error: it simply never yields (existence does
    not leak, and an incident created later is followed from its first event).
    """
    principal = require_role(ctx, Role.VIEWER)

    def accepts(change: Change) -> bool:
        return bool(change.record.incident_id == incident_id)

    feed = _feed(ctx)
    async with feed.subscribe(principal.tenant_id, EVENT_KINDS, accepts, resync=True) as stream:
        async for change in stream:
            if change.kind == RESYNC:
                # An IncidentEvent cannot say "you may have missed some": end the stream.
                raise ListenerResynced(
                    "events may have been missed while the change listener reconnected; "
                    "re-read the incident's timeline and subscribe again",
                    reason="LISTENER_RESYNC",
                )
            _renew_loaders(ctx)
            yield change.record


async def breaker_changes(ctx: Context, name: str | None) -> AsyncIterator[CircuitBreakerRecord]:
    """The breaker's current state first (every breaker's, without a name), then each change.

    The subscriber registers with the feed BEFORE reading the current state, so a change that
    commits in between is delivered after it, never lost. The read also returns its snapshot
    (a Horizon): a change it already saw is skipped, however late its notification arrives
    (through the outbox publisher, tens of milliseconds), and every other change is delivered
    as its own committed state, in commit order. After the process's LISTEN connection
    reconnects, the current state is sent again, even unchanged (changes made while it was
    down were not heard).
    """
    principal = require_role(ctx, Role.VIEWER)

    def accepts(change: Change) -> bool:
        return name is None or bool(change.record.name == name)

    feed = _feed(ctx)
    async with feed.subscribe(principal.tenant_id, BREAKER_KINDS, accepts, resync=True) as stream:
        records, snapshot = await breakers.current_breakers(ctx, name)
        stream.seen(Horizon.parse(snapshot))
        for record in records:
            yield record
        async for change in stream:
            _renew_loaders(ctx)
            if change.kind == RESYNC:
                # LISTEN was down for a while: send the current state again.
                records, snapshot = await breakers.current_breakers(ctx, name)
                stream.seen(Horizon.parse(snapshot))
                for record in records:
                    yield record
            else:
                yield change.record
