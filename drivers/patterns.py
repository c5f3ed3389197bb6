"""Pattern detection and recurrence groups in SQL (DOMAIN.md §3.18-3.19).

Patterns are one statement: the three grouped queries and the analyzed count are UNION ALL-ed,
each part ranked so the caller gets them in report order. Confidences are pure formulas
(drivers/rules/patterns.py) applied by the caller to the counts returned here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Float,
    Numeric,
    Select,
    Text,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers.errors import map_db_errors
from drivers.rules.patterns import CASCADE_MIN_COUNT, CLUSTER_MIN_COUNT, SPIKE_MIN_COUNT
from drivers.tables import incidents

__all__ = [
    "PatternRow",
    "PatternScan",
    "RecurrenceRow",
    "fetch_patterns",
    "fetch_recurrence_groups",
    "recurrence_order",
    "recurrence_select",
]

# SEVERITY_SPIKE looks at the last hour whatever the window (DOMAIN.md §3.18).
SPIKE_WINDOW = timedelta(hours=1)
PATTERN_IDS = 10
RECURRENCE_IDS = 5


@dataclass(frozen=True, slots=True)
class PatternRow:
    pattern_type: str
    dimension: str
    count: int
    incident_ids: list[str]


@dataclass(frozen=True, slots=True)
class PatternScan:
    incidents_analyzed: int
    patterns: list[PatternRow]


_PATTERNS = f"""
(SELECT 0 AS part, row_number() OVER (ORDER BY count(*) DESC, category) AS rk,
        'CATEGORY_CLUSTER' AS kind, category AS dim, count(*) AS n,
        (array_agg(id ORDER BY created_at DESC, id DESC))[1:{PATTERN_IDS}] AS ids
 FROM incidents
 WHERE tenant_id = :tenant AND created_at >= :start AND category IS NOT NULL
 GROUP BY category HAVING count(*) >= {CLUSTER_MIN_COUNT}
 ORDER BY rk LIMIT :limit)
UNION ALL
(SELECT 1, row_number() OVER (ORDER BY CASE severity WHEN 'CRITICAL' THEN 0 ELSE 1 END),
        'SEVERITY_SPIKE', severity, count(*),
        (array_agg(id ORDER BY created_at DESC, id DESC))[1:{PATTERN_IDS}]
 FROM incidents
 WHERE tenant_id = :tenant AND created_at >= :spike_start AND status = 'OPEN'
   AND severity IN ('CRITICAL', 'HIGH')
 GROUP BY severity HAVING count(*) >= {SPIKE_MIN_COUNT}
 ORDER BY 2 LIMIT :limit)
UNION ALL
(SELECT 2, row_number() OVER (ORDER BY count(*) DESC, max(created_at) DESC, source_run_id),
        'CASCADE_FAILURE', source_run_id, count(*),
        (array_agg(id ORDER BY created_at DESC, id DESC))[1:{PATTERN_IDS}]
 FROM incidents
 WHERE tenant_id = :tenant AND created_at >= :start AND source_run_id IS NOT NULL
 GROUP BY source_run_id HAVING count(*) >= {CASCADE_MIN_COUNT}
 ORDER BY 2 LIMIT :limit)
UNION ALL
(SELECT 3, 1, 'ANALYZED', NULL, count(*), NULL
 FROM incidents WHERE tenant_id = :tenant AND created_at >= :start)
ORDER BY part, rk
"""  # noqa: S608 - constants only; values are bound


async def fetch_patterns(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, window_hours: int, limit: int
) -> PatternScan:
    """Category clusters, severity spikes and cascade failures (≤ `limit` each), one statement."""
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "start": now - timedelta(hours=window_hours),
        "spike_start": now - SPIKE_WINDOW,
        "limit": limit,
    }
    with map_db_errors():
        rows = (await conn.execute(text(_PATTERNS), params)).all()
    analyzed = 0
    patterns: list[PatternRow] = []
    for _part, _rank, kind, dim, n, ids in rows:
        if kind == "ANALYZED":
            analyzed = int(n)
        else:
            patterns.append(PatternRow(kind, dim, int(n), list(ids)))
    return PatternScan(analyzed, patterns)


@dataclass(frozen=True, slots=True)
class RecurrenceRow:
    category: str
    resolution_method: str | None
    total: int
    distinct_days: int
    occurrences_per_day: float
    first_occurrence: datetime
    last_occurrence: datetime
    recent_incident_ids: list[str]


_inc = incidents


def recurrence_order(total: Any, category: Any, method: Any) -> tuple[Any, ...]:
    """The order of recurrence groups: largest first; (category, method) is unique."""
    return (total.desc(), category, method.nulls_first())


def recurrence_select(
    tenant: Any, start: Any, threshold: Any, limit: Any, category: Any = None
) -> Select[Any]:
    """Groups of (category or UNCATEGORIZED, resolution_method) with >= threshold incidents.

    Both read paths run it: the resolver path with bound values, the compiled path with its own
    parameters. `category` (None: every category) keeps that category's groups only.
    """
    cat = func.coalesce(_inc.c.category, literal_column("'UNCATEGORIZED'")).label("category")
    day = cast(func.timezone(literal_column("'UTC'"), _inc.c.created_at), Date)
    total = func.count().label("total")
    days = func.count(day.distinct())
    ids = func.array_agg(
        aggregate_order_by(_inc.c.id, _inc.c.created_at.desc(), _inc.c.id.desc()),
        type_=ARRAY(Text),
    )
    where = [_inc.c.tenant_id == tenant, _inc.c.created_at >= start]
    if category is not None:
        where.append(cat == category)
    return (
        select(
            cat,
            _inc.c.resolution_method,
            total,
            days.label("distinct_days"),
            cast(
                func.round(cast(func.count(), Numeric) / func.greatest(days, 1), 2), Float(53)
            ).label("occurrences_per_day"),
            func.min(_inc.c.created_at).label("first_occurrence"),
            func.max(_inc.c.created_at).label("last_occurrence"),
            ids[1:RECURRENCE_IDS].label("recent_incident_ids"),
        )
        .where(*where)
        .group_by(cat, _inc.c.resolution_method)
        .having(func.count() >= threshold)
        .order_by(*recurrence_order(total, cat, _inc.c.resolution_method))
        .limit(limit)
    )


async def fetch_recurrence_groups(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    now: datetime,
    baseline_days: int,
    threshold: int,
    limit: int,
    category: str | None = None,
) -> list[RecurrenceRow]:
    """Groups of (category or UNCATEGORIZED, resolution_method) with ≥ threshold incidents.

    With `category`, only that category's groups (the per-category variant asks for the largest
    one with threshold 1 and limit 1).
    """
    stmt = recurrence_select(
        bindparam("tenant", tenant_id, type_=Text),
        bindparam("start", now - timedelta(days=baseline_days), type_=DateTime(timezone=True)),
        bindparam("threshold", threshold),
        bindparam("limit", limit),
        None if category is None else bindparam("category", category, type_=Text),
    )
    with map_db_errors():
        rows = (await conn.execute(stmt)).all()
    return [
        RecurrenceRow(cat, method, total, days, per_day, first, last, list(ids))
        for cat, method, total, days, per_day, first, last, ids in rows
    ]
