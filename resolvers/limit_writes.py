"""Limit mutations (DOMAIN.md §3.1): create with its integrity row, update, soft disable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from drivers import limits as db
from drivers.mapping import QUERY_LIMIT
from drivers.records import LimitRecord
from drivers.rules.thresholds import ParamError, validate_params
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.unit_of_work import as_json, unit_of_work
from resolvers.validation import check_length

__all__ = [
    "CreateLimitInput",
    "UpdateLimitInput",
    "check_decimal",
    "create_limit",
    "disable_limit",
    "update_limit",
]

# num(18,4): at most 14 digits before the point.
_NUMERIC_18_4_MAX = Decimal(10) ** 14
_SCOPES_WITH_ID = ("PROJECT", "AGENT", "PROVIDER")


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateLimitInput:
    name: str
    limit_category: str
    limit_type: str
    max_value: Decimal
    description: str | None = None
    scope: str = "TENANT"
    scope_id: str | None = None
    reset_period: str | None = None
    next_reset_at: datetime | None = None
    window_seconds: int | None = None
    measurement_window_seconds: int | None = None
    params: Any = None
    enforcement: str = "BLOCK"
    consequence: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateLimitInput:
    """Only the given (non-None) fields change; category and type may only repeat their value."""

    name: str | None = None
    description: str | None = None
    max_value: Decimal | None = None
    enforcement: str | None = None
    reset_period: str | None = None
    window_seconds: int | None = None
    params: Any = None
    status: str | None = None
    limit_category: str | None = None
    limit_type: str | None = None


def check_decimal(
    field: str, value: Decimal | None, *, positive: bool = True, maximum: Decimal | None = None
) -> None:
    """A finite decimal that fits its column (and is > 0 when `positive`)."""
    if value is None:
        return
    top = maximum or _NUMERIC_18_4_MAX
    if not value.is_finite() or abs(value) >= top:
        raise BadUserInput(f"{field} must be a finite number below {top}", field=field)
    if positive and value <= 0:
        raise BadUserInput(f"{field} must be greater than 0", field=field)


def _check_positive_int(field: str, value: int | None) -> None:
    if value is not None and not 0 < value <= 2**31 - 1:
        raise BadUserInput(f"{field} must be greater than 0", field=field)


def _check_params(params: Any) -> None:
    try:
        validate_params(params)
    except ParamError as exc:
        field = "params" if exc.key == "params" else f"params.{exc.key}"
        raise BadUserInput(str(exc), field=field) from exc


def _check_category_fields(category: str, given: dict[str, Any]) -> None:
    """Fields that belong to another category are refused (§3.1)."""
    owners = {
        "resetPeriod": "BUDGET",
        "nextResetAt": "BUDGET",
        "windowSeconds": "RATE",
        "params": "THRESHOLD",
        "measurementWindowSeconds": "THRESHOLD",
    }
    for field, owner in owners.items():
        if given.get(field) is not None and owner != category:
            raise BadUserInput(f"{field} is only for {owner} limits, not {category}", field=field)


def _check_create(data: CreateLimitInput) -> None:
    check_length("name", data.name, 256, 1)
    check_length("limitType", data.limit_type, 32, 1)
    check_length("description", data.description, 1024)
    check_length("scopeId", data.scope_id, 100)
    check_decimal("maxValue", data.max_value)
    _check_positive_int("windowSeconds", data.window_seconds)
    _check_positive_int("measurementWindowSeconds", data.measurement_window_seconds)
    if data.scope in _SCOPES_WITH_ID and not data.scope_id:
        raise BadUserInput(f"a {data.scope} limit needs scopeId", field="scopeId")
    _check_category_fields(
        data.limit_category,
        {
            "resetPeriod": data.reset_period,
            "nextResetAt": data.next_reset_at,
            "windowSeconds": data.window_seconds,
            "params": data.params,
            "measurementWindowSeconds": data.measurement_window_seconds,
        },
    )
    if data.limit_category == "BUDGET" and data.reset_period is None:
        raise BadUserInput("a BUDGET limit needs resetPeriod", field="resetPeriod")
    if data.limit_category == "RATE" and data.window_seconds is None:
        raise BadUserInput("a RATE limit needs windowSeconds", field="windowSeconds")
    if data.params is not None:
        _check_params(data.params)


def _now() -> datetime:
    return datetime.now(UTC)


async def create_limit(ctx: Context, data: CreateLimitInput) -> LimitRecord:
    """Insert an ACTIVE limit and its integrity row in one transaction."""
    _check_create(data)
    async with unit_of_work(ctx, "createLimit") as uow:
        values: dict[str, Any] = {
            "name": data.name,
            "description": data.description,
            "limit_category": data.limit_category,
            "limit_type": data.limit_type,
            "scope": data.scope,
            "scope_id": data.scope_id,
            "max_value": data.max_value,
            "reset_period": data.reset_period,
            "next_reset_at": data.next_reset_at,
            "window_seconds": data.window_seconds,
            "measurement_window_seconds": data.measurement_window_seconds,
            "params": data.params if data.params is not None else {},
            "enforcement": data.enforcement,
            "consequence": data.consequence,
        }
        limit_id = await db.insert_limit(
            uow.conn, tenant_id=uow.tenant_id, values=values, now=_now()
        )
        after = await db.fetch_limit(uow.conn, tenant_id=uow.tenant_id, limit_id=limit_id)
        uow.audit("limits", limit_id, before=None, after=as_json(after))
    return after


def _check_update(data: UpdateLimitInput, current: LimitRecord) -> dict[str, Any]:
    if data.limit_category is not None and data.limit_category != current.limit_category:
        raise BadUserInput("limitCategory cannot change after create", field="limitCategory")
    if data.limit_type is not None and data.limit_type != current.limit_type:
        raise BadUserInput("limitType cannot change after create", field="limitType")
    check_length("name", data.name, 256, 1)
    check_length("description", data.description, 1024)
    check_decimal("maxValue", data.max_value)
    _check_positive_int("windowSeconds", data.window_seconds)
    _check_category_fields(
        current.limit_category,
        {
            "resetPeriod": data.reset_period,
            "windowSeconds": data.window_seconds,
            "params": data.params,
        },
    )
    if data.params is not None:
        _check_params(data.params)
    changes = {
        "name": data.name,
        "description": data.description,
        "max_value": data.max_value,
        "enforcement": data.enforcement,
        "reset_period": data.reset_period,
        "window_seconds": data.window_seconds,
        "params": data.params,
        "status": data.status,
    }
    return {k: v for k, v in changes.items() if v is not None}


async def update_limit(ctx: Context, limit_id: str, data: UpdateLimitInput) -> LimitRecord:
    """Change the mutable fields of a limit; the audit row has the before and after state."""
    async with unit_of_work(ctx, "updateLimit") as uow:
        before = await db.fetch_limit(
            uow.conn, tenant_id=uow.tenant_id, limit_id=limit_id, lock=True
        )
        changes = _check_update(data, before)
        if changes:
            await db.update_limit(
                uow.conn, tenant_id=uow.tenant_id, limit_id=limit_id, values=changes, now=_now()
            )
        after = await db.fetch_limit(uow.conn, tenant_id=uow.tenant_id, limit_id=limit_id)
        uow.audit("limits", limit_id, before=as_json(before), after=as_json(after))
    ctx.loaders.one(QUERY_LIMIT).clear(limit_id)
    return after


async def disable_limit(ctx: Context, limit_id: str) -> LimitRecord:
    """Soft delete: status DISABLED (an already disabled limit stays as it is)."""
    async with unit_of_work(ctx, "disableLimit") as uow:
        before = await db.fetch_limit(
            uow.conn, tenant_id=uow.tenant_id, limit_id=limit_id, lock=True
        )
        if before.status != "DISABLED":
            await db.update_limit(
                uow.conn,
                tenant_id=uow.tenant_id,
                limit_id=limit_id,
                values={"status": "DISABLED"},
                now=_now(),
            )
        after = await db.fetch_limit(uow.conn, tenant_id=uow.tenant_id, limit_id=limit_id)
        uow.audit("limits", limit_id, before=as_json(before), after=as_json(after))
    ctx.loaders.one(QUERY_LIMIT).clear(limit_id)
    return after
