"""Limit overrides (DOMAIN.md §1.4, §3.3): reads for checks, guarded state changes, job claims."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import audit
from drivers import tables as t
from drivers.errors import NotFound, StaleState, map_db_errors
from drivers.mapping import LIMIT_OVERRIDE
from drivers.one_statement import StatementConnection
from drivers.records import LimitOverrideRecord
from drivers.rules.overrides import OPEN_STATUSES

__all__ = [
    "OverriddenLimit",
    "RequestOutcome",
    "active_after_lock",
    "claim_due",
    "fetch_overridden_limit",
    "fetch_override",
    "insert_requested_override",
    "set_override_status",
]

_ovr = t.limit_overrides


async def fetch_override(
    conn: AsyncConnection, *, tenant_id: str, override_id: str, lock: bool = False
) -> LimitOverrideRecord:
    """One override of the tenant (optionally row-locked, in the same statement), or NotFound."""
    stmt = select(*LIMIT_OVERRIDE.columns).where(
        _ovr.c.tenant_id == tenant_id, _ovr.c.id == override_id
    )
    if lock:
        stmt = stmt.with_for_update(of=_ovr)
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("LimitOverride", override_id)
    return LIMIT_OVERRIDE.record(*row)


async def active_after_lock(conn: AsyncConnection, *, tenant_id: str) -> int:
    """Take the tenant's override lock (until commit), then count its ACTIVE overrides.

    Every path to ACTIVE (request, approval, activation job) counts through this, so "at most 5
    ACTIVE per tenant" is exact under concurrency in any number of processes: the SQL function
    limit_overrides_active_after_lock (migration 0005) serializes them on one advisory lock and
    counts in a snapshot taken after the lock. One-open-per-limit is also guaranteed by the
    unique index, whatever takes this lock.
    """
    with map_db_errors():
        return int(
            (
                await conn.execute(select(func.limit_overrides_active_after_lock(tenant_id)))
            ).scalar_one()
        )


@dataclass(frozen=True, slots=True)
class OverriddenLimit:
    """What an override request copies from its limit: the row, the audit document and payload."""

    id: str
    name: str
    max_value: Decimal


_LIMIT_SQL = "SELECT id, name, max_value FROM limits WHERE tenant_id = $1 AND id = $2"


async def fetch_overridden_limit(
    conn: StatementConnection, *, tenant_id: str, limit_id: str
) -> OverriddenLimit:
    """The three values of the limit a request needs, or NotFound (no derived columns).

    Why not limits.fetch_limit: that one computes every derived value of a Limit (breach counts,
    effective value), which a request never shows; this is a plain primary-key read sent as is.
    """
    with map_db_errors():
        row = await conn.first_row(_LIMIT_SQL, (tenant_id, limit_id))
    if row is None:
        raise NotFound("Limit", limit_id)
    limit_row, name, max_value = tuple(row)
    return OverriddenLimit(str(limit_row), str(name), max_value)


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What requestOverride's statement found and did: the rules' inputs and the stored row."""

    active: int  # the tenant's ACTIVE overrides, counted under its lock
    open_taken: bool  # the limit already had a PENDING/APPROVED/ACTIVE override
    stored: LimitOverrideRecord | None  # the inserted row, None when a rule or a lost limit refused


_BASE = tuple(
    f.name for f in dataclasses.fields(LimitOverrideRecord) if f.name not in LIMIT_OVERRIDE.derived
)
_WRITTEN = (
    "id",
    "original_value",
    "override_value",
    "status",
    "requested_at",
    "requested_by",
    "reason",
    "starts_at",
    "expires_at",
    "approved_at",
    "approved_by",
)
_CASTS = {
    "original_value": "numeric",
    "override_value": "numeric",
    "requested_at": "timestamptz",
    "starts_at": "timestamptz",
    "expires_at": "timestamptz",
    "approved_at": "timestamptz",
}


def _request_sql(mode: audit.NotifyMode) -> str:
    """The checks and write of requestOverride as ONE statement; see insert_requested_override."""
    # $1 tenant, $2 limit, $3.. the other written values in _WRITTEN order, then the cap, then
    # the audit row's placeholders.
    values = [f"${3 + i}::{_CASTS.get(name, 'text')}" for i, name in enumerate(_WRITTEN)]
    cap = 3 + len(_WRITTEN)
    audit_sql, _ = audit.audit_cte(cap + 1, 0, "ins", mode=mode)
    open_list = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
    return (
        "WITH slots AS (SELECT limit_overrides_active_after_lock($1::text) AS active), "  # noqa: S608 - constants only, values are bind parameters
        "taken AS (SELECT EXISTS (SELECT FROM limit_overrides o "
        f"WHERE o.tenant_id = $1 AND o.limit_id = $2 AND o.status IN ({open_list})) AS open), "
        f"ins AS (INSERT INTO limit_overrides (tenant_id, limit_id, {', '.join(_WRITTEN)}) "
        f"SELECT l.tenant_id, l.id, {', '.join(values)} FROM limits l, slots, taken "
        f"WHERE l.tenant_id = $1 AND l.id = $2 AND slots.active < ${cap}::bigint "
        f"AND NOT taken.open RETURNING {', '.join(_BASE)}), "
        f"{audit_sql} "
        "SELECT slots.active, taken.open, ins.* FROM slots CROSS JOIN taken LEFT JOIN ins ON true"
    )


_REQUEST_SQL: dict[audit.NotifyMode, str] = {
    "outbox": _request_sql("outbox"),
    "direct": _request_sql("direct"),
}


async def insert_requested_override(
    conn: StatementConnection,
    *,
    tenant_id: str,
    planned: LimitOverrideRecord,
    max_active: int,
    entry: audit.AuditEntry,
) -> RequestOutcome:
    """An override request in ONE statement: lock, cap count, stacking, insert, audit row.

    The tenant's advisory lock is taken inside the statement (limit_overrides_active_after_lock),
    so on an AUTOCOMMIT connection it is held from that call to the statement's own commit and
    never across a round trip. The override (values from `planned`, id included) is inserted
    only when the limit exists, fewer than `max_active` overrides are ACTIVE and the limit has
    no open one; the audit row only when the override was. The stacking check reads the
    statement's snapshot; a request committed after it is refused by the unique index
    (UniqueViolation for the caller). The caller maps the outcome to the rules' errors.
    """
    if entry.notifications:
        raise ValueError("an override request publishes no notification")
    written = tuple(getattr(planned, name) for name in _WRITTEN)
    params = (tenant_id, planned.limit_id, *written, max_active, *entry.params())
    with map_db_errors():
        first = await conn.first_row(_REQUEST_SQL[entry.mode], params)
    if first is None:  # pragma: no cover - the statement always answers one row
        raise RuntimeError("requestOverride's statement answered no row")
    row: tuple[Any, ...] = tuple(first)
    stored = None
    if row[2] is not None:
        base = dict(zip(_BASE, row[2:], strict=True))
        derived = {name: getattr(planned, name) for name in LIMIT_OVERRIDE.derived}
        stored = LimitOverrideRecord(**base, **derived)
    return RequestOutcome(active=int(row[0]), open_taken=bool(row[1]), stored=stored)


async def set_override_status(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    override_id: str,
    expected: tuple[str, ...],
    values: dict[str, Any],
) -> LimitOverrideRecord:
    """Update an override guarded by its expected status; the row as stored after it.

    StaleState if it moved on. The record comes back from the UPDATE (RETURNING), so the
    payload and the audit document need no second read.
    """
    stmt = (
        update(_ovr)
        .where(
            _ovr.c.tenant_id == tenant_id,
            _ovr.c.id == override_id,
            _ovr.c.status.in_(expected),
        )
        .values(**values)
        .returning(*LIMIT_OVERRIDE.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise StaleState(f"override {override_id} is no longer {'/'.join(expected)}")
    return LIMIT_OVERRIDE.record(*row)


async def claim_due(
    conn: AsyncConnection,
    *,
    status: str,
    column: str,
    now: datetime,
    skip: frozenset[str] = frozenset(),
) -> tuple[str, str] | None:
    """Lock one override of any tenant in `status` whose `column` ≤ now (SKIP LOCKED).

    `skip` holds ids this run already left where they were (activation deferred by the cap).
    Returns (tenant_id, id) or None when nothing is due.
    """
    due_col = _ovr.c[column]
    clauses = [_ovr.c.status == status, due_col <= now]
    if skip:
        clauses.append(_ovr.c.id.not_in(skip))
    stmt = (
        select(_ovr.c.tenant_id, _ovr.c.id)
        .where(*clauses)
        .order_by(due_col)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else (str(row[0]), str(row[1]))
