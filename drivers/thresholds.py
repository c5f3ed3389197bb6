"""Threshold limits and signals (DOMAIN.md §1.5, §3.4): resolution inputs, signal writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, StaleState, map_db_errors
from drivers.mapping import THRESHOLD_SIGNAL
from drivers.records import ThresholdSignalRecord
from drivers.rules.thresholds import PRECEDENCE, ThresholdLayer

__all__ = [
    "acknowledge_signal",
    "fetch_signal",
    "fetch_threshold_layers",
    "insert_signal",
    "mark_signal_alerted",
]

_lim, _sig = t.limits, t.threshold_signals


async def fetch_threshold_layers(conn: AsyncConnection, *, tenant_id: str) -> list[ThresholdLayer]:
    """Every ACTIVE THRESHOLD limit of the tenant, in application order.

    GLOBAL, TENANT, PROJECT, AGENT; oldest first within a scope, so overlaying the applicable
    ones in order (rules.applicable_layers) lets the newest of the strongest scope win. Tenants
    hold few of them: one read serves every run of a request.
    """
    rank = case({scope: i for i, scope in enumerate(PRECEDENCE)}, value=_lim.c.scope, else_=-1)
    stmt = (
        select(_lim.c.id, _lim.c.scope, _lim.c.scope_id, _lim.c.params)
        .where(
            _lim.c.tenant_id == tenant_id,
            _lim.c.limit_category == "THRESHOLD",
            _lim.c.status == "ACTIVE",
        )
        .order_by(rank, _lim.c.created_at, _lim.c.id)
    )
    with map_db_errors():
        result = await conn.execute(stmt)
    return [ThresholdLayer(str(r[0]), str(r[1]), r[2], r[3]) for r in result]


async def insert_signal(
    conn: AsyncConnection, *, tenant_id: str, values: dict[str, Any]
) -> ThresholdSignalRecord:
    """Append one threshold signal (immutable afterwards except ack and alert fields)."""
    stmt = insert(_sig).values(tenant_id=tenant_id, **values).returning(*THRESHOLD_SIGNAL.columns)
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return THRESHOLD_SIGNAL.record(*row)


async def fetch_signal(
    conn: AsyncConnection, *, tenant_id: str, signal_id: str, lock: bool = False
) -> ThresholdSignalRecord:
    """One signal of the tenant by its `SIG-…` id, or NotFound."""
    stmt = select(*THRESHOLD_SIGNAL.columns).where(
        _sig.c.tenant_id == tenant_id, _sig.c.signal_id == signal_id
    )
    if lock:
        stmt = stmt.with_for_update()
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("ThresholdSignal", signal_id)
    return THRESHOLD_SIGNAL.record(*row)


async def _guarded(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    signal_id: str,
    guard: ColumnElement[bool],
    values: dict[str, Any],
) -> ThresholdSignalRecord:
    stmt = (
        update(_sig)
        .where(_sig.c.tenant_id == tenant_id, _sig.c.signal_id == signal_id, guard)
        .values(**values)
        .returning(*THRESHOLD_SIGNAL.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise StaleState(f"signal {signal_id} changed meanwhile")
    return THRESHOLD_SIGNAL.record(*row)


async def acknowledge_signal(
    conn: AsyncConnection, *, tenant_id: str, signal_id: str, actor: str, now: datetime
) -> ThresholdSignalRecord:
    """Set the acknowledgement once (guarded by acknowledged = false)."""
    return await _guarded(
        conn,
        tenant_id=tenant_id,
        signal_id=signal_id,
        guard=_sig.c.acknowledged.is_(False),
        values={"acknowledged": True, "acknowledged_by": actor, "acknowledged_at": now},
    )


async def mark_signal_alerted(
    conn: AsyncConnection, *, tenant_id: str, signal_id: str, channels: list[str], now: datetime
) -> ThresholdSignalRecord:
    """Record that an alert went out for the signal on these channels."""
    return await _guarded(
        conn,
        tenant_id=tenant_id,
        signal_id=signal_id,
        guard=_sig.c.alert_sent.is_(False),
        values={"alert_sent": True, "alert_sent_at": now, "alert_channels": channels},
    )
