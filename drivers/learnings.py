"""Postmortem learnings data in SQL (DOMAIN.md §3.20): a fixed few statements per request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers.errors import NotFound, map_db_errors

__all__ = [
    "CategoryStats",
    "MethodCount",
    "ResolutionSummary",
    "SimilarIncident",
    "fetch_category_stats",
    "fetch_resolution_methods",
    "fetch_resolution_summary",
    "fetch_similar_incidents",
]

SIMILAR_LIMIT = 5
METHODS_LIMIT = 5
# Truncated like Incident.timeToResolutionMs (whole milliseconds).
_TTR = "trunc(extract(epoch FROM {p}resolved_at - {p}created_at) * 1000)::bigint"
_RECOVERY = """EXISTS (SELECT 1 FROM incident_evidence e
  WHERE e.tenant_id = i.tenant_id AND e.incident_id = i.id AND e.recovery_executed)"""


@dataclass(frozen=True, slots=True)
class ResolutionSummary:
    incident_id: str
    title: str
    category: str | None
    severity: str
    status: str
    resolution_method: str | None
    time_to_resolution_ms: int | None
    evidence_count: int
    recovery_attempted: bool


@dataclass(frozen=True, slots=True)
class SimilarIncident:
    incident_id: str
    title: str
    severity: str
    resolution_method: str | None
    resolved_at: datetime
    time_to_resolution_ms: int | None
    recovery_attempted: bool


async def _rows(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> list[Any]:
    with map_db_errors():
        return list((await conn.execute(text(sql), params)).all())


_SUMMARY = f"""
SELECT i.id, i.title, i.category, i.severity, i.status, i.resolution_method,
       {_TTR.format(p="i.")},
       (SELECT count(*) FROM incident_evidence e
         WHERE e.tenant_id = i.tenant_id AND e.incident_id = i.id),
       {_RECOVERY}
FROM incidents i WHERE i.tenant_id = :tenant AND i.id = :id
"""  # noqa: S608 - constants only; values are bound


async def fetch_resolution_summary(
    conn: AsyncConnection, *, tenant_id: str, incident_id: str
) -> ResolutionSummary:
    """The incident's resolution summary with its evidence facts, or NotFound."""
    rows = await _rows(conn, _SUMMARY, {"tenant": tenant_id, "id": incident_id})
    if not rows:
        raise NotFound("Incident", incident_id)
    return ResolutionSummary(*rows[0])


_SIMILAR = f"""
SELECT i.id, i.title, i.severity, i.resolution_method, i.resolved_at,
       {_TTR.format(p="i.")}, {_RECOVERY}
FROM incidents i
WHERE i.tenant_id = :tenant AND i.id <> :id AND i.status = 'RESOLVED'
  AND coalesce(i.category, 'UNCATEGORIZED') = :category
ORDER BY i.resolved_at DESC, i.id DESC
LIMIT {SIMILAR_LIMIT}
"""  # noqa: S608 - constants only; values are bound


async def fetch_similar_incidents(
    conn: AsyncConnection, *, tenant_id: str, incident_id: str, category: str
) -> list[SimilarIncident]:
    """Up to 5 other RESOLVED incidents of the same category, newest resolution first."""
    rows = await _rows(
        conn, _SIMILAR, {"tenant": tenant_id, "id": incident_id, "category": category}
    )
    return [SimilarIncident(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class CategoryStats:
    total: int
    resolved: int
    average_resolution_ms: float | None
    distinct_days: int


_CATEGORY_STATS = """
SELECT count(*), count(*) FILTER (WHERE status = 'RESOLVED'),
       avg((extract(epoch FROM resolved_at - created_at) * 1000)::float8)
         FILTER (WHERE resolved_at IS NOT NULL),
       count(DISTINCT (created_at AT TIME ZONE 'UTC')::date)
FROM incidents
WHERE tenant_id = :tenant AND created_at >= :start
  AND coalesce(category, 'UNCATEGORIZED') = :category
"""


async def fetch_category_stats(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, baseline_days: int, category: str
) -> CategoryStats:
    """Totals and resolution times of one category (UNCATEGORIZED = null) over the baseline."""
    start = now - timedelta(days=baseline_days)
    [row] = await _rows(
        conn, _CATEGORY_STATS, {"tenant": tenant_id, "start": start, "category": category}
    )
    return CategoryStats(*row)


@dataclass(frozen=True, slots=True)
class MethodCount:
    resolution_method: str
    count: int


_METHODS = f"""
SELECT resolution_method, count(*) AS n
FROM incidents
WHERE tenant_id = :tenant AND created_at >= :start AND resolution_method IS NOT NULL
  AND coalesce(category, 'UNCATEGORIZED') = :category
GROUP BY resolution_method ORDER BY n DESC, resolution_method
LIMIT {METHODS_LIMIT}
"""  # noqa: S608 - constants only; values are bound


async def fetch_resolution_methods(
    conn: AsyncConnection, *, tenant_id: str, now: datetime, baseline_days: int, category: str
) -> list[MethodCount]:
    """The category's 5 most used resolution methods over the baseline."""
    start = now - timedelta(days=baseline_days)
    rows = await _rows(conn, _METHODS, {"tenant": tenant_id, "start": start, "category": category})
    return [MethodCount(*r) for r in rows]
