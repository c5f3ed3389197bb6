"""Limit overrides (DOMAIN.md §3.3): request, approve, reject, cancel, lists and the two jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from drivers import audit
from drivers import overrides as db
from drivers.errors import NotFound, UniqueViolation
from drivers.incidents import new_id
from drivers.mapping import QUERY_OVERRIDE
from drivers.records import LimitOverrideRecord
from drivers.rules import overrides as rules
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, RateLimited
from resolvers.limit_writes import check_decimal
from resolvers.lists import root_one
from resolvers.unit_of_work import as_json, unit_of_work
from resolvers.validation import check_length

__all__ = [
    "RequestOverrideInput",
    "activate_due_overrides",
    "approve_override",
    "cancel_override",
    "expire_overrides",
    "get_override",
    "reject_override",
    "request_override",
]

# num(20,4): at most 16 digits before the point.
_NUMERIC_20_4_MAX = Decimal(10) ** 16
_NUMERIC_SCALE = Decimal("0.0001")
_ENTITY = "limit_overrides"

log = logging.getLogger("gateway.overrides")


def _now() -> datetime:
    return datetime.now(UTC)


async def get_override(ctx: Context, override_id: str) -> LimitOverrideRecord | None:
    """One override of the tenant, or None (also for another tenant's id)."""
    return await root_one(ctx, QUERY_OVERRIDE, override_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestOverrideInput:
    limit_id: str
    override_value: Decimal
    duration_hours: int
    reason: str
    start_immediately: bool = True
    scheduled_start: datetime | None = None


def _check_duration(field: str, hours: int | None) -> None:
    if hours is not None and not rules.MIN_DURATION_HOURS <= hours <= rules.MAX_DURATION_HOURS:
        raise BadUserInput(
            f"{field} must be {rules.MIN_DURATION_HOURS}..{rules.MAX_DURATION_HOURS} hours",
            field=field,
        )


def _check_request(data: RequestOverrideInput) -> None:
    check_decimal("overrideValue", data.override_value, maximum=_NUMERIC_20_4_MAX)
    _check_duration("durationHours", data.duration_hours)
    check_length("reason", data.reason, rules.REASON_MAX, rules.REASON_MIN)
    if not data.start_immediately and data.scheduled_start is None:
        raise BadUserInput(
            "scheduledStart is required when startImmediately is false", field="scheduledStart"
        )


def _stacking(limit_id: str) -> Conflict:
    return Conflict(
        f"limit {limit_id} already has a pending, approved or active override",
        reason="OVERRIDE_ALREADY_OPEN",
    )


async def _active_slots_left(conn: AsyncConnection, tenant_id: str) -> int:
    """Lock the tenant's overrides (until commit), then count its free ACTIVE slots.

    Every path to ACTIVE (request, approval, activation job) counts under that lock, so the cap
    of §3.3 holds under concurrency across processes.
    """
    return rules.MAX_ACTIVE_PER_TENANT - await db.active_after_lock(conn, tenant_id=tenant_id)


def _cap_reached() -> RateLimited:
    return RateLimited(
        f"the tenant already has {rules.MAX_ACTIVE_PER_TENANT} active overrides "
        f"(at most {rules.MAX_ACTIVE_PER_TENANT})",
        reason="TOO_MANY_ACTIVE_OVERRIDES",
    )


def _planned(
    data: RequestOverrideInput, limit: db.OverriddenLimit, actor: str, now: datetime
) -> LimitOverrideRecord:
    """The override a request inserts, exactly as PostgreSQL will store it.

    Built before the write so its audit document travels in the same statement: the value is
    rounded like numeric(20,4) rounds, times are converted to UTC as the driver sends them.
    """
    starts = now if data.start_immediately or data.scheduled_start is None else data.scheduled_start
    starts = starts.astimezone(UTC)
    status = "ACTIVE" if data.start_immediately else "PENDING"
    value = data.override_value.quantize(_NUMERIC_SCALE, rounding=ROUND_HALF_UP)
    return LimitOverrideRecord(
        id=new_id(),
        limit_id=limit.id,
        original_value=limit.max_value,
        override_value=value,
        status=status,
        requested_at=now,
        requested_by=actor,
        reason=data.reason,
        starts_at=starts,
        expires_at=starts + timedelta(hours=data.duration_hours),
        approved_at=now if data.start_immediately else None,
        approved_by=actor if data.start_immediately else None,
        rejection_reason=None,
        cancelled_at=None,
        cancelled_by=None,
        effective_value=rules.effective_value(status, value, limit.max_value),
        limit_name=limit.name,
    )


async def request_override(ctx: Context, data: RequestOverrideInput) -> LimitOverrideRecord:
    """Checks in the order of §3.3; an immediate request approves itself and is ACTIVE.

    Two round trips, no BEGIN/COMMIT (unit_of_work one_statement=True): the limit is read (its
    value and name go into the row and the audit document), then ONE statement takes the
    tenant's lock, counts the cap, checks stacking and inserts the override and its audit row
    (drivers/overrides.py insert_requested_override); the lock is never held across a round trip.
    """
    _check_request(data)
    async with unit_of_work(ctx, "requestOverride", one_statement=True) as uow:
        limit = await db.fetch_overridden_limit(
            uow.conn, tenant_id=uow.tenant_id, limit_id=data.limit_id
        )
        planned = _planned(data, limit, uow.principal.subject, _now())
        uow.audit(_ENTITY, planned.id, before=None, after=as_json(planned))
        try:
            outcome = await db.insert_requested_override(
                uow.conn,
                tenant_id=uow.tenant_id,
                planned=planned,
                max_active=rules.MAX_ACTIVE_PER_TENANT,
                entry=uow.take_audit(),
            )
        except UniqueViolation as exc:  # a concurrent request won the race
            raise _stacking(limit.id) from exc
        if outcome.active >= rules.MAX_ACTIVE_PER_TENANT:
            raise _cap_reached()
        if outcome.open_taken:
            raise _stacking(limit.id)
        if outcome.stored is None:  # the limit was deleted since it was read
            raise NotFound("Limit", limit.id)
    return outcome.stored


def _illegal(
    action: str, record: LimitOverrideRecord, reason: str = "ILLEGAL_TRANSITION"
) -> Conflict:
    return Conflict(
        f"cannot {action} an override in status {record.status}",
        reason=reason,
        status=record.status,
    )


async def approve_override(
    ctx: Context,
    override_id: str,
    adjusted_value: Decimal | None,
    adjusted_duration_hours: int | None,
) -> LimitOverrideRecord:
    """PENDING → ACTIVE (starts_at ≤ now) or APPROVED, optionally adjusting value/duration.

    Becoming ACTIVE takes one of the tenant's 5 slots: a full tenant is RATE_LIMITED and the
    override stays PENDING.
    """
    check_decimal("adjustedValue", adjusted_value, maximum=_NUMERIC_20_4_MAX)
    _check_duration("adjustedDurationHours", adjusted_duration_hours)
    async with unit_of_work(ctx, "approveOverride") as uow:
        before = await db.fetch_override(
            uow.conn, tenant_id=uow.tenant_id, override_id=override_id, lock=True
        )
        if before.status != "PENDING":
            raise _illegal("approve", before)
        now = _now()
        activates = before.starts_at <= now
        if activates and await _active_slots_left(uow.conn, uow.tenant_id) <= 0:
            raise _cap_reached()
        values: dict[str, object] = {
            "status": "ACTIVE" if activates else "APPROVED",
            "approved_at": now,
            "approved_by": uow.principal.subject,
        }
        if adjusted_value is not None:
            values["override_value"] = adjusted_value
        if adjusted_duration_hours is not None:
            base = max(before.starts_at, now)
            values["expires_at"] = base + timedelta(hours=adjusted_duration_hours)
        after = await db.set_override_status(
            uow.conn,
            tenant_id=uow.tenant_id,
            override_id=override_id,
            expected=("PENDING",),
            values=values,
        )
        uow.audit(_ENTITY, override_id, before=as_json(before), after=as_json(after))
    return after


async def reject_override(ctx: Context, override_id: str, reason: str) -> LimitOverrideRecord:
    """PENDING → REJECTED; approved_by/approved_at record the rejecter."""
    check_length("reason", reason, rules.REASON_MAX, 1)
    async with unit_of_work(ctx, "rejectOverride") as uow:
        before = await db.fetch_override(
            uow.conn, tenant_id=uow.tenant_id, override_id=override_id, lock=True
        )
        if before.status != "PENDING":
            raise _illegal("reject", before)
        after = await db.set_override_status(
            uow.conn,
            tenant_id=uow.tenant_id,
            override_id=override_id,
            expected=("PENDING",),
            values={
                "status": "REJECTED",
                "rejection_reason": reason,
                "approved_at": _now(),
                "approved_by": uow.principal.subject,
            },
        )
        uow.audit(_ENTITY, override_id, before=as_json(before), after=as_json(after))
    return after


async def cancel_override(ctx: Context, override_id: str) -> LimitOverrideRecord:
    """PENDING/APPROVED/ACTIVE → CANCELLED; any other status is CONFLICT (CANNOT_CANCEL)."""
    async with unit_of_work(ctx, "cancelOverride") as uow:
        before = await db.fetch_override(
            uow.conn, tenant_id=uow.tenant_id, override_id=override_id, lock=True
        )
        if before.status not in rules.CANCELLABLE:
            raise _illegal("cancel", before, reason="CANNOT_CANCEL")
        after = await db.set_override_status(
            uow.conn,
            tenant_id=uow.tenant_id,
            override_id=override_id,
            expected=rules.CANCELLABLE,
            values={
                "status": "CANCELLED",
                "cancelled_at": _now(),
                "cancelled_by": uow.principal.subject,
            },
        )
        uow.audit(_ENTITY, override_id, before=as_json(before), after=as_json(after))
    return after


# --- jobs (DOMAIN.md §7) --------------------------------------------------------------------------


async def _move_due(
    engine: AsyncEngine, *, job: str, status: str, column: str, to: str, now: datetime | None
) -> int:
    """Move due overrides one by one, each in its own short transaction with its audit row.

    Activation respects the cap of 5 ACTIVE per tenant: a due override of a full tenant stays
    APPROVED (logged with the reason, no audit row since nothing changed) and is tried again on
    the next tick.
    """
    moved = 0
    deferred: set[str] = set()
    while True:
        at = now or _now()
        async with engine.begin() as conn:
            claimed = await db.claim_due(
                conn, status=status, column=column, now=at, skip=frozenset(deferred)
            )
            if claimed is None:
                return moved
            tenant_id, override_id = claimed
            if to == "ACTIVE" and await _active_slots_left(conn, tenant_id) <= 0:
                deferred.add(override_id)
                log.warning(
                    "override %s/%s stays APPROVED: the tenant already has %d ACTIVE overrides",
                    tenant_id,
                    override_id,
                    rules.MAX_ACTIVE_PER_TENANT,
                )
                continue
            before = await db.fetch_override(conn, tenant_id=tenant_id, override_id=override_id)
            after = await db.set_override_status(
                conn,
                tenant_id=tenant_id,
                override_id=override_id,
                expected=(status,),
                values={"status": to},
            )
            await audit.insert_audit(
                conn,
                tenant_id=tenant_id,
                actor=job,
                actor_role="SYSTEM",
                operation=job,
                entity_type=_ENTITY,
                entity_id=override_id,
                before=as_json(before),
                after=as_json(after),
                request_id=None,
            )
        moved += 1


async def activate_due_overrides(engine: AsyncEngine, *, now: datetime | None = None) -> int:
    """APPROVED overrides whose starts_at has come → ACTIVE; returns how many moved."""
    return await _move_due(
        engine,
        job="activate_due_overrides",
        status="APPROVED",
        column="starts_at",
        to="ACTIVE",
        now=now,
    )


async def expire_overrides(engine: AsyncEngine, *, now: datetime | None = None) -> int:
    """ACTIVE overrides whose expires_at has passed → EXPIRED; returns how many moved."""
    return await _move_due(
        engine,
        job="expire_overrides",
        status="ACTIVE",
        column="expires_at",
        to="EXPIRED",
        now=now,
    )
