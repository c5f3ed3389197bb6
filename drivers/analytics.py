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

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers.errors import map_db_errors

__all__ = [
    "GRANULARITY_UNITS",
    "CostImpactRow",
    "CostTrendRow",
    "DistributionRow",
    "MetricsRow",
    "TrendRow",
    "fetch_cost_impact",
    "fetch_cost_trend",
    "fetch_distribution",
    "fetch_metrics",
    "fetch_trend",
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


_COST_IMPACT = """
SELECT coalesce(category, 'UNCATEGORIZED') AS cat, resolution_method,
       count(*) AS n, sum(cost_impact) AS total, round(avg(cost_impact), 2)
FROM incidents
WHERE tenant_id = :tenant AND created_at >= :start AND cost_impact IS NOT NULL
GROUP BY cat, resolution_method
ORDER BY total DESC, cat, resolution_method NULLS FIRST
LIMIT :limit
"""


async def fetch_cost_impact(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, baseline_days: int, limit: int
) -> list[CostImpactRow]:
    """Known cost_impact by (category, resolution_method), costliest first."""
    start = now - timedelta(days=baseline_days)
    rows = await _rows(conn, _COST_IMPACT, {"tenant": tenant_id, "start": start, "limit": limit})
    return [CostImpactRow(*r) for r in rows]


# Every period from the window start's period to now's, so charts get zero rows for gaps.
_PERIODS = """
periods AS (
  SELECT generate_series(
    date_trunc(:unit, CAST(:start AS timestamptz) AT TIME ZONE 'UTC'),
    date_trunc(:unit, CAST(:now AS timestamptz) AT TIME ZONE 'UTC'),
    CAST(CAST(:step AS text) AS interval)
  ) AS period
)"""

_TREND = f"""
WITH {_PERIODS},
w AS (
  SELECT date_trunc(:unit, created_at AT TIME ZONE 'UTC') AS period, resolved_at, created_at
  FROM incidents WHERE tenant_id = :tenant AND created_at >= :start
)
SELECT p.period AT TIME ZONE 'UTC', count(w.period),
       count(w.period) FILTER (WHERE w.resolved_at IS NOT NULL),
       avg({TTR_MS.format(p="w.")}) FILTER (WHERE w.resolved_at IS NOT NULL)
FROM periods p LEFT JOIN w ON w.period = p.period
GROUP BY p.period ORDER BY p.period
"""  # noqa: S608 - constants only; values are bound


def _period_params(
    tenant_id: str, now: datetime, window_days: int, granularity: str
) -> dict[str, Any]:
    unit = GRANULARITY_UNITS[granularity]
    return {
        "tenant": tenant_id,
        "start": now - timedelta(days=window_days),
        "now": now,
        "unit": unit,
        "step": f"1 {unit}",
    }


async def fetch_trend(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, window_days: int, granularity: str
) -> list[TrendRow]:
    """Per UTC period of the window: incidents created, how many are resolved, average ms."""
    rows = await _rows(conn, _TREND, _period_params(tenant_id, now, window_days, granularity))
    return [TrendRow(*r) for r in rows]


_DISTRIBUTION = """
WITH w AS (
  SELECT coalesce(category, 'UNCATEGORIZED') AS category, severity, cause_type
  FROM incidents WHERE tenant_id = :tenant AND created_at >= :start
)
SELECT CASE WHEN GROUPING(category) = 0 THEN 'category'
            WHEN GROUPING(severity) = 0 THEN 'severity'
            WHEN GROUPING(cause_type) = 0 THEN 'cause_type'
            ELSE 'total' END AS dim,
       coalesce(category, severity, cause_type) AS key,
       count(*) AS n,
       round(count(*) * 100.0 / nullif((SELECT count(*) FROM w), 0), 2)
FROM w
GROUP BY GROUPING SETS ((category), (severity), (cause_type), ())
ORDER BY dim, n DESC, key
"""


async def fetch_distribution(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, window_days: int
) -> list[DistributionRow]:
    """Counts and percentages by category, severity and cause type, plus a `total` row."""
    start = now - timedelta(days=window_days)
    rows = await _rows(conn, _DISTRIBUTION, {"tenant": tenant_id, "start": start})
    return [DistributionRow(*r) for r in rows]


_COST_TREND = f"""
WITH {_PERIODS},
w AS (
  SELECT date_trunc(:unit, created_at AT TIME ZONE 'UTC') AS period, cost_impact
  FROM incidents
  WHERE tenant_id = :tenant AND created_at >= :start AND cost_impact IS NOT NULL
)
SELECT p.period AT TIME ZONE 'UTC', coalesce(sum(w.cost_impact), 0.00), count(w.period),
       round(avg(w.cost_impact), 2)
FROM periods p LEFT JOIN w ON w.period = p.period
GROUP BY p.period ORDER BY p.period
"""  # noqa: S608 - constants only; values are bound


async def fetch_cost_trend(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, window_days: int, granularity: str
) -> list[CostTrendRow]:
    """Per UTC period: sum of cost_impact, incidents with a known cost, average per incident."""
    rows = await _rows(conn, _COST_TREND, _period_params(tenant_id, now, window_days, granularity))
    return [CostTrendRow(*r) for r in rows]
