"""Incident analytics computed in SQL (DOMAIN.md §3.17): one statement per analytic.

Every function takes the caller's connection, the tenant and `now` (so a window's bounds are
the same for every statement of a request and tests can pin them), and aggregates in
PostgreSQL (FILTER, PERCENTILE_CONT, DATE_TRUNC, GROUPING SETS) whatever the row count.
Periods are truncated in UTC, independent of the session time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Float,
    Select,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import INTERVAL
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers.errors import map_db_errors
from drivers.tables import incidents

__all__ = [
    "GRANULARITY_UNITS",
    "CostImpactRow",
    "CostTrendRow",
    "DistributionRow",
    "MetricsRow",
    "TrendRow",
    "cost_impact_order",
    "cost_impact_select",
    "cost_trend_select",
    "distribution_select",
    "fetch_cost_impact",
    "fetch_cost_trend",
    "fetch_distribution",
    "fetch_metrics",
    "fetch_trend",
    "trend_select",
]

# Granularity enum value -> DATE_TRUNC unit (also the generate_series step).
GRANULARITY_UNITS = {"DAY": "day", "WEEK": "week", "MONTH": "month"}

# Milliseconds from creation to resolution (DOMAIN.md §1.18 time_to_resolution_ms).
TTR_MS = "(extract(epoch FROM {p}resolved_at - {p}created_at) * 1000)::float8"


@dataclass(frozen=True, slots=True)
class MetricsRow:
    open: int
    acknowledged: int
    resolved: int
    total: int
    average_resolution_ms: float | None
    median_resolution_ms: float | None
    critical: int
    high: int
    medium: int
    low: int


@dataclass(frozen=True, slots=True)
class CostImpactRow:
    category: str
    resolution_method: str | None
    count: int
    total_cost: Decimal
    average_cost: Decimal


@dataclass(frozen=True, slots=True)
class TrendRow:
    period_start: datetime
    count: int
    resolved_count: int
    average_resolution_ms: float | None


@dataclass(frozen=True, slots=True)
class DistributionRow:
    dimension: str  # "category" | "severity" | "cause_type" | "total"
    key: str | None
    count: int
    percentage: Decimal | None


@dataclass(frozen=True, slots=True)
class CostTrendRow:
    period_start: datetime
    total_cost: Decimal
    count: int
    average_cost: Decimal | None


async def _rows(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> list[Any]:
    with map_db_errors():
        return list((await conn.execute(text(sql), params)).all())


_METRICS = f"""
SELECT
  count(*) FILTER (WHERE status = 'OPEN'),
  count(*) FILTER (WHERE status = 'ACKNOWLEDGED'),
  count(*) FILTER (WHERE status = 'RESOLVED'),
  count(*),
  avg({TTR_MS.format(p="")}) FILTER (WHERE resolved_at IS NOT NULL),
  percentile_cont(0.5) WITHIN GROUP (ORDER BY {TTR_MS.format(p="")})
    FILTER (WHERE resolved_at IS NOT NULL),
  count(*) FILTER (WHERE severity = 'CRITICAL'),
  count(*) FILTER (WHERE severity = 'HIGH'),
  count(*) FILTER (WHERE severity = 'MEDIUM'),
  count(*) FILTER (WHERE severity = 'LOW')
FROM incidents
WHERE tenant_id = :tenant AND created_at >= :start
"""  # noqa: S608 - constants only; values are bound


async def fetch_metrics(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, window_days: int
) -> MetricsRow:
    """Counts per status and severity and resolution times of incidents created in the window."""
    start = now - timedelta(days=window_days)
    [row] = await _rows(conn, _METRICS, {"tenant": tenant_id, "start": start})
    return MetricsRow(*row)


# --- cost impact, trend, distribution, cost trend: one SELECT each, for both read paths -------
# Each builder takes SQL expressions (bound parameters on the resolver path, the compiled
# statement's own parameters and now() there), so both paths run the very same SQL.

_inc = incidents
_WHOLE: ColumnElement[Any] = literal_column("'UTC'")


def _ttr_ms(row: Any) -> ColumnElement[Any]:
    """Milliseconds from creation to resolution (TTR_MS) of `row`'s columns."""
    return cast(func.extract("epoch", row.c.resolved_at - row.c.created_at) * 1000, Float(53))


def cost_impact_select(tenant: Any, start: Any, limit: Any) -> Select[Any]:
    """Known cost_impact by (category, resolution_method), costliest first, `limit` rows."""
    cat = func.coalesce(_inc.c.category, literal_column("'UNCATEGORIZED'")).label("category")
    total = func.sum(_inc.c.cost_impact).label("total_cost")
    return (
        select(
            cat,
            _inc.c.resolution_method,
            func.count().label("count"),
            total,
            func.round(func.avg(_inc.c.cost_impact), 2).label("average_cost"),
        )
        .where(
            _inc.c.tenant_id == tenant, _inc.c.created_at >= start, _inc.c.cost_impact.is_not(None)
        )
        .group_by(cat, _inc.c.resolution_method)
        .order_by(*cost_impact_order(total, cat, _inc.c.resolution_method))
        .limit(limit)
    )


def cost_impact_order(total: Any, category: Any, method: Any) -> tuple[Any, ...]:
    """The order of cost impact rows: costliest first; (category, method) is unique."""
    return (total.desc(), category, method.nulls_first())


def _periods(start: Any, now: Any, unit: Any) -> Any:
    """Every UTC period from the window start's to now's, so charts get zero rows for gaps."""
    step = cast(literal_column("'1 '").op("||", return_type=Text)(unit), INTERVAL)
    series = func.generate_series(
        func.date_trunc(unit, func.timezone(_WHOLE, start)),
        func.date_trunc(unit, func.timezone(_WHOLE, now)),
        step,
    )
    return select(series.label("period")).subquery("periods")


def trend_select(tenant: Any, start: Any, now: Any, unit: Any) -> Select[Any]:
    """Per UTC period of the window: incidents created, how many resolved, average ms."""
    periods = _periods(start, now, unit)
    w = (
        select(
            func.date_trunc(unit, func.timezone(_WHOLE, _inc.c.created_at)).label("period"),
            _inc.c.resolved_at,
            _inc.c.created_at,
        )
        .where(_inc.c.tenant_id == tenant, _inc.c.created_at >= start)
        .subquery("w")
    )
    resolved = w.c.resolved_at.is_not(None)
    return (
        select(
            func.timezone(_WHOLE, periods.c.period).label("period_start"),
            func.count(w.c.period).label("count"),
            func.count(w.c.period).filter(resolved).label("resolved_count"),
            func.avg(_ttr_ms(w)).filter(resolved).label("average_resolution_ms"),
        )
        .select_from(periods.outerjoin(w, w.c.period == periods.c.period))
        .group_by(periods.c.period)
        .order_by(periods.c.period)
    )


def distribution_select(tenant: Any, start: Any) -> Select[Any]:
    """Counts and percentages by category, severity and cause type, plus a `total` row.

    The total is the grouping set () row's count, the largest of all: max(count) over ().
    """
    w = (
        select(
            func.coalesce(_inc.c.category, literal_column("'UNCATEGORIZED'")).label("category"),
            _inc.c.severity,
            _inc.c.cause_type,
        )
        .where(_inc.c.tenant_id == tenant, _inc.c.created_at >= start)
        .subquery("w")
    )
    dim = case(
        (func.grouping(w.c.category) == 0, literal_column("'category'")),
        (func.grouping(w.c.severity) == 0, literal_column("'severity'")),
        (func.grouping(w.c.cause_type) == 0, literal_column("'cause_type'")),
        else_=literal_column("'total'"),
    ).label("dimension")
    n = func.count()
    total = func.max(n).over()
    pct = func.round(n * literal_column("100.0") / func.nullif(total, 0), 2)
    key = func.coalesce(w.c.category, w.c.severity, w.c.cause_type).label("key")
    return (
        select(dim, key, n.label("count"), pct.label("percentage"))
        .select_from(w)
        .group_by(
            func.grouping_sets(
                tuple_(w.c.category), tuple_(w.c.severity), tuple_(w.c.cause_type), tuple_()
            )
        )
        .order_by(dim, n.desc(), key)
    )


def cost_trend_select(tenant: Any, start: Any, now: Any, unit: Any) -> Select[Any]:
    """Per UTC period: sum of cost_impact, incidents with a known cost, average per incident."""
    periods = _periods(start, now, unit)
    w = (
        select(
            func.date_trunc(unit, func.timezone(_WHOLE, _inc.c.created_at)).label("period"),
            _inc.c.cost_impact,
        )
        .where(
            _inc.c.tenant_id == tenant,
            _inc.c.created_at >= start,
            _inc.c.cost_impact.is_not(None),
        )
        .subquery("w")
    )
    return (
        select(
            func.timezone(_WHOLE, periods.c.period).label("period_start"),
            func.coalesce(func.sum(w.c.cost_impact), literal_column("0.00")).label("total_cost"),
            func.count(w.c.period).label("count"),
            func.round(func.avg(w.c.cost_impact), 2).label("average_cost"),
        )
        .select_from(periods.outerjoin(w, w.c.period == periods.c.period))
        .group_by(periods.c.period)
        .order_by(periods.c.period)
    )


def _bound(tenant_id: str, start: datetime) -> tuple[Any, Any]:
    return (
        bindparam("tenant", tenant_id, type_=Text),
        bindparam("start", start, type_=DateTime(timezone=True)),
    )


async def _run(conn: AsyncConnection, stmt: Select[Any]) -> list[Any]:
    with map_db_errors():
        return list((await conn.execute(stmt)).all())


async def fetch_cost_impact(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, baseline_days: int, limit: int
) -> list[CostImpactRow]:
    """Known cost_impact by (category, resolution_method), costliest first."""
    tenant, start = _bound(tenant_id, now - timedelta(days=baseline_days))
    rows = await _run(conn, cost_impact_select(tenant, start, bindparam("limit", limit)))
    return [CostImpactRow(*r) for r in rows]


def _period_args(
    tenant_id: str, now: datetime, window_days: int, granularity: str
) -> tuple[Any, Any, Any, Any]:
    tenant, start = _bound(tenant_id, now - timedelta(days=window_days))
    return (
        tenant,
        start,
        bindparam("now", now, type_=DateTime(timezone=True)),
        bindparam("unit", GRANULARITY_UNITS[granularity], type_=Text),
    )


async def fetch_trend(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, window_days: int, granularity: str
) -> list[TrendRow]:
    """Per UTC period of the window: incidents created, how many are resolved, average ms."""
    stmt = trend_select(*_period_args(tenant_id, now, window_days, granularity))
    return [TrendRow(*r) for r in await _run(conn, stmt)]


async def fetch_distribution(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, window_days: int
) -> list[DistributionRow]:
    """Counts and percentages by category, severity and cause type, plus a `total` row."""
    stmt = distribution_select(*_bound(tenant_id, now - timedelta(days=window_days)))
    return [DistributionRow(*r) for r in await _run(conn, stmt)]


async def fetch_cost_trend(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, window_days: int, granularity: str
) -> list[CostTrendRow]:
    """Per UTC period: sum of cost_impact, incidents with a known cost, average per incident."""
    stmt = cost_trend_select(*_period_args(tenant_id, now, window_days, granularity))
    return [CostTrendRow(*r) for r in await _run(conn, stmt)]
