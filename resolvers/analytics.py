"""Incident analytics use cases (DOMAIN.md §3.17-3.20): argument caps, one connection, SQL.

Every analytic is read-only, needs VIEWER, checks its window arguments before any SQL
(BAD_USER_INPUT naming the argument), then runs a fixed number of statements on one read
connection. Caps that DOMAIN.md leaves open (§8.8) are recorded in docs/decisions.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import analytics as db
from drivers import learnings as ldb
from drivers import patterns as pdb
from drivers.rules import patterns as rules
from resolvers.auth import require_role
from resolvers.context import Context
from resolvers.errors import BadUserInput, translate_errors

__all__ = [
    "CategoryLearningsResult",
    "DistributionResult",
    "IncidentLearningsResult",
    "MetricsResult",
    "PatternReportResult",
    "RecurrenceResult",
    "category_learnings",
    "incident_cost_impact",
    "incident_cost_trend",
    "incident_distribution",
    "incident_learnings",
    "incident_metrics",
    "incident_patterns",
    "incident_recurrence",
    "incident_trend",
]

# Caps (DOMAIN.md §3.17-3.20; the §8.8 maxima are ours: one year).
MAX_WINDOW_DAYS = 365
MAX_BASELINE_DAYS = 90
MAX_WINDOW_HOURS = 168
MAX_ROWS = 100
MAX_THRESHOLD = 10_000
MAX_CATEGORY = 100

T = TypeVar("T")


def _check_range(field: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise BadUserInput(f"{field} must be between {low} and {high}, got {value}", field=field)


def _now() -> datetime:
    return datetime.now(UTC)


async def _read(ctx: Context, work: Callable[[AsyncConnection, str], Awaitable[T]]) -> T:
    """Run `work(conn, tenant)` on one read connection for the caller's tenant."""
    principal = require_role(ctx)
    with translate_errors():
        async with ctx.db.reads.connect() as conn:
            return await work(conn, principal.tenant_id)


# --- metrics, cost, trend, distribution (§3.17) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricsResult:
    window_days: int
    window_start: datetime
    window_end: datetime
    row: db.MetricsRow


async def incident_metrics(ctx: Context, *, window_days: int) -> MetricsResult:
    """Counts per status and severity, average and median time to resolution."""
    require_role(ctx)
    _check_range("windowDays", window_days, 1, MAX_WINDOW_DAYS)
    now = _now()
    row = await _read(
        ctx,
        lambda conn, tenant: db.fetch_metrics(
            conn, tenant_id=tenant, now=now, window_days=window_days
        ),
    )
    return MetricsResult(window_days, now - timedelta(days=window_days), now, row)


async def incident_cost_impact(
    ctx: Context, *, baseline_days: int, limit: int
) -> list[db.CostImpactRow]:
    """Cost by (category, resolution method), costliest first."""
    require_role(ctx)
    _check_range("baselineDays", baseline_days, 1, MAX_BASELINE_DAYS)
    _check_range("limit", limit, 1, MAX_ROWS)
    now = _now()
    return await _read(
        ctx,
        lambda conn, tenant: db.fetch_cost_impact(
            conn, tenant_id=tenant, now=now, baseline_days=baseline_days, limit=limit
        ),
    )


async def incident_trend(ctx: Context, *, window_days: int, granularity: str) -> list[db.TrendRow]:
    """Incidents per UTC period (every period of the window, empty ones included)."""
    require_role(ctx)
    _check_range("windowDays", window_days, 1, MAX_WINDOW_DAYS)
    now = _now()
    return await _read(
        ctx,
        lambda conn, tenant: db.fetch_trend(
            conn, tenant_id=tenant, now=now, window_days=window_days, granularity=granularity
        ),
    )


async def incident_cost_trend(
    ctx: Context, *, window_days: int, granularity: str
) -> list[db.CostTrendRow]:
    """Cost per UTC period (every period of the window, empty ones included)."""
    require_role(ctx)
    _check_range("windowDays", window_days, 1, MAX_WINDOW_DAYS)
    now = _now()
    return await _read(
        ctx,
        lambda conn, tenant: db.fetch_cost_trend(
            conn, tenant_id=tenant, now=now, window_days=window_days, granularity=granularity
        ),
    )


@dataclass(frozen=True, slots=True)
class DistributionResult:
    window_days: int
    total: int
    by_category: list[db.DistributionRow]
    by_severity: list[db.DistributionRow]
    by_cause_type: list[db.DistributionRow]


async def incident_distribution(ctx: Context, *, window_days: int) -> DistributionResult:
    """Counts and percentages by category, severity and cause type."""
    require_role(ctx)
    _check_range("windowDays", window_days, 1, MAX_WINDOW_DAYS)
    now = _now()
    rows = await _read(
        ctx,
        lambda conn, tenant: db.fetch_distribution(
            conn, tenant_id=tenant, now=now, window_days=window_days
        ),
    )
    total = next((r.count for r in rows if r.dimension == "total"), 0)
    return DistributionResult(
        window_days,
        total,
        [r for r in rows if r.dimension == "category"],
        [r for r in rows if r.dimension == "severity"],
        [r for r in rows if r.dimension == "cause_type"],
    )


# --- patterns and recurrence (§3.18-3.19) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pattern:
    pattern_type: str
    dimension: str
    count: int
    incident_ids: list[str]
    confidence: float


@dataclass(frozen=True, slots=True)
class PatternReportResult:
    window_hours: int
    window_start: datetime
    window_end: datetime
    incidents_analyzed: int
    patterns: list[Pattern]


def _confidence(row: pdb.PatternRow) -> float:
    if row.pattern_type == "CATEGORY_CLUSTER":
        return rules.cluster_confidence(row.count)
    if row.pattern_type == "SEVERITY_SPIKE":
        return rules.spike_confidence(row.dimension, row.count)
    return rules.cascade_confidence(row.count)


async def incident_patterns(ctx: Context, *, window_hours: int, limit: int) -> PatternReportResult:
    """Category clusters, severity spikes and cascade failures with their confidences."""
    require_role(ctx)
    _check_range("windowHours", window_hours, 1, MAX_WINDOW_HOURS)
    _check_range("limit", limit, 1, MAX_ROWS)
    now = _now()
    scan = await _read(
        ctx,
        lambda conn, tenant: pdb.fetch_patterns(
            conn, tenant_id=tenant, now=now, window_hours=window_hours, limit=limit
        ),
    )
    patterns = [
        Pattern(p.pattern_type, p.dimension, p.count, p.incident_ids, _confidence(p))
        for p in scan.patterns
    ]
    return PatternReportResult(
        window_hours, now - timedelta(hours=window_hours), now, scan.incidents_analyzed, patterns
    )


@dataclass(frozen=True, slots=True)
class RecurrenceResult:
    baseline_days: int
    threshold: int
    groups: list[pdb.RecurrenceRow]

    @property
    def total_recurring(self) -> int:
        return sum(g.total for g in self.groups)


async def incident_recurrence(
    ctx: Context, *, baseline_days: int, threshold: int, limit: int
) -> RecurrenceResult:
    """Groups of incidents recurring with the same category and resolution method."""
    require_role(ctx)
    _check_range("baselineDays", baseline_days, 1, MAX_BASELINE_DAYS)
    _check_range("threshold", threshold, 2, MAX_THRESHOLD)
    _check_range("limit", limit, 1, MAX_ROWS)
    now = _now()
    groups = await _read(
        ctx,
        lambda conn, tenant: pdb.fetch_recurrence_groups(
            conn,
            tenant_id=tenant,
            now=now,
            baseline_days=baseline_days,
            threshold=threshold,
            limit=limit,
        ),
    )
    return RecurrenceResult(baseline_days, threshold, groups)


# --- postmortem learnings (§3.20) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentLearningsResult:
    summary: ldb.ResolutionSummary
    similar: list[ldb.SimilarIncident]
    insights: list[rules.Insight]


async def incident_learnings(ctx: Context, incident_id: str) -> IncidentLearningsResult:
    """Resolution summary, similar resolved incidents and insights for one incident."""
    require_role(ctx)

    async def work(
        conn: AsyncConnection, tenant: str
    ) -> tuple[ldb.ResolutionSummary, list[ldb.SimilarIncident]]:
        summary = await ldb.fetch_resolution_summary(
            conn, tenant_id=tenant, incident_id=incident_id
        )
        similar = await ldb.fetch_similar_incidents(
            conn,
            tenant_id=tenant,
            incident_id=incident_id,
            category=summary.category or "UNCATEGORIZED",
        )
        return summary, similar

    summary, similar = await _read(ctx, work)
    everyone = [(summary.recovery_attempted, summary.time_to_resolution_ms)] + [
        (s.recovery_attempted, s.time_to_resolution_ms) for s in similar
    ]
    insights = rules.incident_insights(
        resolution_method=summary.resolution_method,
        same_method_count=sum(
            1
            for s in similar
            if summary.resolution_method is not None
            and s.resolution_method == summary.resolution_method
        ),
        recovery_count=sum(1 for recovered, _ in everyone if recovered),
        resolution_times_ms=[float(ms) for _, ms in everyone if ms is not None],
    )
    return IncidentLearningsResult(summary, similar, insights)


@dataclass(frozen=True, slots=True)
class CategoryLearningsResult:
    category: str
    baseline_days: int
    stats: ldb.CategoryStats
    methods: list[ldb.MethodCount]
    recurrence: pdb.RecurrenceRow | None
    insights: list[rules.Insight]

    @property
    def resolution_rate(self) -> float:
        return rules.round2(self.stats.resolved / self.stats.total) if self.stats.total else 0.0

    @property
    def recurrence_rate(self) -> float:
        return rules.round2(self.stats.total / max(self.stats.distinct_days, 1))


async def category_learnings(
    ctx: Context, *, category: str, baseline_days: int
) -> CategoryLearningsResult:
    """Resolution statistics, top methods, largest recurrence group and insights of a category."""
    require_role(ctx)
    if not 1 <= len(category) <= MAX_CATEGORY:
        raise BadUserInput(f"category must be 1..{MAX_CATEGORY} characters", field="category")
    _check_range("baselineDays", baseline_days, 1, MAX_BASELINE_DAYS)
    now = _now()

    async def work(
        conn: AsyncConnection, tenant: str
    ) -> tuple[ldb.CategoryStats, list[ldb.MethodCount], list[pdb.RecurrenceRow]]:
        stats = await ldb.fetch_category_stats(
            conn, tenant_id=tenant, now=now, baseline_days=baseline_days, category=category
        )
        methods = await ldb.fetch_resolution_methods(
            conn, tenant_id=tenant, now=now, baseline_days=baseline_days, category=category
        )
        groups = await pdb.fetch_recurrence_groups(
            conn,
            tenant_id=tenant,
            now=now,
            baseline_days=baseline_days,
            threshold=1,
            limit=1,
            category=category,
        )
        return stats, methods, groups

    stats, methods, groups = await _read(ctx, work)
    recurrence_rate = stats.total / max(stats.distinct_days, 1)
    insights = rules.category_insights(
        category=category,
        total=stats.total,
        resolved=stats.resolved,
        average_resolution_ms=stats.average_resolution_ms,
        recurrence_rate=recurrence_rate,
        top_method=(methods[0].resolution_method, methods[0].count) if methods else None,
    )
    return CategoryLearningsResult(
        category, baseline_days, stats, methods, groups[0] if groups else None, insights
    )
