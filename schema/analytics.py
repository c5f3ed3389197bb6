"""Incident analytics types and the AnalyticsQueries mixin (API.md; DOMAIN.md §3.17-3.20)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from drivers import enums as e
from drivers.analytics import DistributionRow
from drivers.patterns import RecurrenceRow
from drivers.rules.patterns import Insight
from resolvers import analytics as uc
from schema.base import Info
from schema.enums import IncidentStatus, ResolutionMethod, Severity

__all__ = ["AnalyticsQueries", "Granularity", "InsightType", "PatternType"]

Granularity = e.Granularity
strawberry.enum(Granularity, description="Period of a trend (DATE_TRUNC unit, UTC)")
PatternType = e.PatternType
strawberry.enum(PatternType, description="Kind of detected incident pattern")
InsightType = e.InsightType
strawberry.enum(InsightType, description="Kind of postmortem insight")


def _method(value: str | None) -> ResolutionMethod | None:
    return None if value is None else ResolutionMethod(value)


@strawberry.type(description="Incidents of one severity.")
class SeverityCount:
    severity: Severity = strawberry.field(description="The severity.")
    count: int = strawberry.field(description="Incidents with it.")


@strawberry.type(description="Incident counts and resolution times over a window (by createdAt).")
class IncidentMetrics:
    window_days: int = strawberry.field(description="Window length in days.")
    window_start: datetime = strawberry.field(description="Incidents created since this time.")
    window_end: datetime = strawberry.field(description="When the metrics were computed.")
    open: int = strawberry.field(description="OPEN incidents.")
    acknowledged: int = strawberry.field(description="ACKNOWLEDGED incidents.")
    active: int = strawberry.field(description="OPEN + ACKNOWLEDGED.")
    resolved: int = strawberry.field(description="RESOLVED incidents.")
    total: int = strawberry.field(description="All incidents of the window.")
    average_resolution_ms: float | None = strawberry.field(
        description="Average resolvedAt - createdAt in ms; null without resolved incidents."
    )
    median_resolution_ms: float | None = strawberry.field(
        description="Median (PERCENTILE_CONT 0.5) resolvedAt - createdAt in ms."
    )
    by_severity: list[SeverityCount] = strawberry.field(
        description="Count per severity, CRITICAL first, zeros included."
    )


@strawberry.type(description="Cost of incidents sharing a category and resolution method.")
class CostImpactRow:
    category: str = strawberry.field(description="Category, UNCATEGORIZED when null.")
    resolution_method: ResolutionMethod | None = strawberry.field(
        description="Resolution method; null for unresolved incidents."
    )
    count: int = strawberry.field(description="Incidents with a known costImpact.")
    total_cost: Decimal = strawberry.field(description="Sum of costImpact (USD, 2 dp).")
    average_cost: Decimal = strawberry.field(description="Average costImpact (USD, 2 dp).")


@strawberry.type(description="Incidents created in one UTC period.")
class TrendPoint:
    period_start: datetime = strawberry.field(description="Start of the period (UTC).")
    count: int = strawberry.field(description="Incidents created in the period.")
    resolved_count: int = strawberry.field(description="Of those, how many are resolved.")
    average_resolution_ms: float | None = strawberry.field(
        description="Their average time to resolution in ms; null if none resolved."
    )


@strawberry.type(description="Cost of incidents created in one UTC period.")
class CostTrendPoint:
    period_start: datetime = strawberry.field(description="Start of the period (UTC).")
    total_cost: Decimal = strawberry.field(description="Sum of costImpact (USD, 2 dp).")
    count: int = strawberry.field(description="Incidents with a known costImpact.")
    average_cost: Decimal | None = strawberry.field(
        description="totalCost / count (2 dp); null when count is 0."
    )


@strawberry.type(description="One value of a distribution.")
class DistributionBucket:
    key: str = strawberry.field(description="Category, severity or cause type.")
    count: int = strawberry.field(description="Incidents with this value.")
    percentage: float = strawberry.field(description="Share of the window's incidents (2 dp).")


@strawberry.type(description="How the window's incidents split by category, severity, cause.")
class IncidentDistribution:
    window_days: int = strawberry.field(description="Window length in days.")
    total: int = strawberry.field(description="Incidents created in the window.")
    by_category: list[DistributionBucket] = strawberry.field(
        description="Per category (null = UNCATEGORIZED), largest first."
    )
    by_severity: list[DistributionBucket] = strawberry.field(
        description="Per severity, largest first."
    )
    by_cause_type: list[DistributionBucket] = strawberry.field(
        description="Per cause type, largest first."
    )


@strawberry.type(description="A detected incident pattern.")
class IncidentPattern:
    pattern_type: PatternType = strawberry.field(description="Kind of pattern.")
    dimension: str = strawberry.field(
        description="The category, severity or source run id the incidents share."
    )
    count: int = strawberry.field(description="Incidents in the pattern.")
    incident_ids: list[strawberry.ID] = strawberry.field(description="Up to 10, newest first.")
    confidence: float = strawberry.field(description="Confidence 0..1 (2 dp), DOMAIN.md §3.18.")


@strawberry.type(description="Patterns found among recent incidents.")
class PatternReport:
    window_hours: int = strawberry.field(description="Window length in hours.")
    window_start: datetime = strawberry.field(description="Start of the window.")
    window_end: datetime = strawberry.field(description="End of the window (now).")
    incidents_analyzed: int = strawberry.field(description="Incidents created since windowStart.")
    patterns: list[IncidentPattern] = strawberry.field(
        description="Clusters, then spikes, then cascades (at most `limit` of each)."
    )

    @strawberry.field(description="CATEGORY_CLUSTER patterns, largest first.")
    def category_clusters(self) -> list[IncidentPattern]:
        return [p for p in self.patterns if p.pattern_type == PatternType.CATEGORY_CLUSTER]

    @strawberry.field(description="SEVERITY_SPIKE patterns (last hour), CRITICAL first.")
    def severity_spikes(self) -> list[IncidentPattern]:
        return [p for p in self.patterns if p.pattern_type == PatternType.SEVERITY_SPIKE]

    @strawberry.field(description="CASCADE_FAILURE patterns, largest first.")
    def cascade_failures(self) -> list[IncidentPattern]:
        return [p for p in self.patterns if p.pattern_type == PatternType.CASCADE_FAILURE]


@strawberry.type(description="Incidents recurring with one category and resolution method.")
class RecurrenceGroup:
    category: str = strawberry.field(description="Category, UNCATEGORIZED when null.")
    resolution_method: ResolutionMethod | None = strawberry.field(
        description="Resolution method; null for unresolved incidents."
    )
    total: int = strawberry.field(description="Incidents in the group.")
    distinct_days: int = strawberry.field(description="Distinct UTC calendar days they span.")
    occurrences_per_day: float = strawberry.field(description="total / max(days, 1), 2 dp.")
    first_occurrence: datetime = strawberry.field(description="Oldest createdAt.")
    last_occurrence: datetime = strawberry.field(description="Newest createdAt.")
    recent_incident_ids: list[strawberry.ID] = strawberry.field(
        description="The 5 most recent ids, newest first."
    )


def _group(row: RecurrenceRow) -> RecurrenceGroup:
    return RecurrenceGroup(
        category=row.category,
        resolution_method=_method(row.resolution_method),
        total=row.total,
        distinct_days=row.distinct_days,
        occurrences_per_day=row.occurrences_per_day,
        first_occurrence=row.first_occurrence,
        last_occurrence=row.last_occurrence,
        recent_incident_ids=[strawberry.ID(i) for i in row.recent_incident_ids],
    )


@strawberry.type(description="Recurring incident groups over a baseline.")
class RecurrenceReport:
    baseline_days: int = strawberry.field(description="Baseline length in days.")
    threshold: int = strawberry.field(description="Minimum incidents per group.")
    total_recurring: int = strawberry.field(description="Sum of the listed groups' totals.")
    groups: list[RecurrenceGroup] = strawberry.field(description="Largest group first.")


@strawberry.type(description="One postmortem insight.")
class LearningInsight:
    insight_type: InsightType = strawberry.field(description="Kind of insight.")
    description: str = strawberry.field(description="What was learned.")
    confidence: float = strawberry.field(description="Confidence 0..1 (2 dp), DOMAIN.md §3.20.")


def _insights(rows: list[Insight]) -> list[LearningInsight]:
    return [
        LearningInsight(
            insight_type=InsightType(i.insight_type),
            description=i.description,
            confidence=i.confidence,
        )
        for i in rows
    ]


@strawberry.type(description="How one incident was resolved.")
class ResolutionSummary:
    title: str = strawberry.field(description="Incident title.")
    category: str = strawberry.field(description="Category, UNCATEGORIZED when null.")
    severity: Severity = strawberry.field(description="Severity.")
    status: IncidentStatus = strawberry.field(description="Current status.")
    resolution_method: ResolutionMethod | None = strawberry.field(
        description="How it was resolved; null while unresolved."
    )
    time_to_resolution_ms: float | None = strawberry.field(
        description="resolvedAt - createdAt in ms; null while unresolved."
    )
    evidence_count: int = strawberry.field(description="Evidence rows of the incident.")
    recovery_attempted: bool = strawberry.field(
        description="Whether any evidence records an executed recovery action."
    )


@strawberry.type(description="A resolved incident of the same category.")
class SimilarIncident:
    id: strawberry.ID = strawberry.field(description="Incident id.")
    title: str = strawberry.field(description="Incident title.")
    severity: Severity = strawberry.field(description="Severity.")
    resolution_method: ResolutionMethod | None = strawberry.field(description="How resolved.")
    resolved_at: datetime = strawberry.field(description="When resolved.")
    time_to_resolution_ms: float | None = strawberry.field(
        description="resolvedAt - createdAt in ms."
    )
    recovery_attempted: bool = strawberry.field(description="Whether recovery was executed.")


@strawberry.type(description="Postmortem learnings of one incident (DOMAIN.md §3.20).")
class IncidentLearnings:
    incident_id: strawberry.ID = strawberry.field(description="The incident.")
    summary: ResolutionSummary = strawberry.field(description="Its resolution summary.")
    similar_incidents: list[SimilarIncident] = strawberry.field(
        description="Up to 5 resolved incidents of the same category, newest resolution first."
    )
    insights: list[LearningInsight] = strawberry.field(
        description="RESPONSE, PREVENTION, DETECTION insights that apply."
    )


@strawberry.type(description="How often a resolution method closed a category's incidents.")
class ResolutionMethodCount:
    resolution_method: ResolutionMethod = strawberry.field(description="The method.")
    count: int = strawberry.field(description="Incidents it resolved.")


@strawberry.type(description="Postmortem learnings of one category over a baseline (§3.20).")
class CategoryLearnings:
    category: str = strawberry.field(description="The category (UNCATEGORIZED = null).")
    baseline_days: int = strawberry.field(description="Baseline length in days.")
    total_incidents: int = strawberry.field(description="Incidents created in the baseline.")
    resolved_count: int = strawberry.field(description="Of those, RESOLVED.")
    resolution_rate: float = strawberry.field(description="resolved / total (2 dp); 0 if none.")
    average_resolution_ms: float | None = strawberry.field(
        description="Average time to resolution in ms."
    )
    recurrence_rate: float = strawberry.field(
        description="total / max(distinct UTC days, 1), 2 dp."
    )
    top_resolution_methods: list[ResolutionMethodCount] = strawberry.field(
        description="Up to 5 methods, most used first."
    )
    recurrence: RecurrenceGroup | None = strawberry.field(
        description="The category's largest (category, resolution method) group."
    )
    insights: list[LearningInsight] = strawberry.field(description="Insights that apply.")


def _ms(value: int | None) -> float | None:
    return None if value is None else float(value)


_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


@strawberry.type
class AnalyticsQueries:
    @strawberry.field(description="Incident counts and resolution times. windowDays 1..365.")
    async def incident_metrics(
        self,
        info: Info,
        window_days: Annotated[int, strawberry.argument(description="Days back, 1..365.")] = 30,
    ) -> IncidentMetrics:
        m = await uc.incident_metrics(info.context, window_days=window_days)
        r = m.row
        counts = (r.critical, r.high, r.medium, r.low)
        return IncidentMetrics(
            window_days=m.window_days,
            window_start=m.window_start,
            window_end=m.window_end,
            open=r.open,
            acknowledged=r.acknowledged,
            active=r.open + r.acknowledged,
            resolved=r.resolved,
            total=r.total,
            average_resolution_ms=r.average_resolution_ms,
            median_resolution_ms=r.median_resolution_ms,
            by_severity=[
                SeverityCount(severity=Severity(s), count=n)
                for s, n in zip(_SEVERITIES, counts, strict=True)
            ],
        )

    @strawberry.field(description="Cost by category and resolution method, costliest first.")
    async def incident_cost_impact(
        self,
        info: Info,
        baseline_days: Annotated[int, strawberry.argument(description="Days back, 1..90.")] = 30,
        limit: Annotated[int, strawberry.argument(description="Rows, 1..100.")] = 20,
    ) -> list[CostImpactRow]:
        rows = await uc.incident_cost_impact(info.context, baseline_days=baseline_days, limit=limit)
        return [
            CostImpactRow(
                category=r.category,
                resolution_method=_method(r.resolution_method),
                count=r.count,
                total_cost=r.total_cost,
                average_cost=r.average_cost,
            )
            for r in rows
        ]

    @strawberry.field(description="Incidents per UTC period, oldest first, empty periods included.")
    async def incident_trend(
        self,
        info: Info,
        window_days: Annotated[int, strawberry.argument(description="Days back, 1..365.")] = 90,
        granularity: Annotated[
            Granularity, strawberry.argument(description="DAY, WEEK (ISO, Monday) or MONTH.")
        ] = Granularity.WEEK,
    ) -> list[TrendPoint]:
        rows = await uc.incident_trend(
            info.context, window_days=window_days, granularity=str(granularity)
        )
        return [
            TrendPoint(
                period_start=r.period_start,
                count=r.count,
                resolved_count=r.resolved_count,
                average_resolution_ms=r.average_resolution_ms,
            )
            for r in rows
        ]

    @strawberry.field(description="Counts and percentages by category, severity and cause type.")
    async def incident_distribution(
        self,
        info: Info,
        window_days: Annotated[int, strawberry.argument(description="Days back, 1..365.")] = 90,
    ) -> IncidentDistribution:
        d = await uc.incident_distribution(info.context, window_days=window_days)

        def buckets(rows: list[DistributionRow]) -> list[DistributionBucket]:
            return [
                DistributionBucket(
                    key=r.key or "", count=r.count, percentage=float(r.percentage or 0)
                )
                for r in rows
            ]

        return IncidentDistribution(
            window_days=d.window_days,
            total=d.total,
            by_category=buckets(d.by_category),
            by_severity=buckets(d.by_severity),
            by_cause_type=buckets(d.by_cause_type),
        )

    @strawberry.field(description="Cost per UTC period, oldest first, empty periods included.")
    async def incident_cost_trend(
        self,
        info: Info,
        window_days: Annotated[int, strawberry.argument(description="Days back, 1..365.")] = 90,
        granularity: Annotated[
            Granularity, strawberry.argument(description="DAY, WEEK (ISO, Monday) or MONTH.")
        ] = Granularity.WEEK,
    ) -> list[CostTrendPoint]:
        rows = await uc.incident_cost_trend(
            info.context, window_days=window_days, granularity=str(granularity)
        )
        return [
            CostTrendPoint(
                period_start=r.period_start,
                total_cost=r.total_cost,
                count=r.count,
                average_cost=r.average_cost,
            )
            for r in rows
        ]

    @strawberry.field(description="Category clusters, severity spikes and cascade failures.")
    async def incident_patterns(
        self,
        info: Info,
        window_hours: Annotated[int, strawberry.argument(description="Hours back, 1..168.")] = 24,
        limit: Annotated[int, strawberry.argument(description="Per pattern type, 1..100.")] = 10,
    ) -> PatternReport:
        rep = await uc.incident_patterns(info.context, window_hours=window_hours, limit=limit)
        return PatternReport(
            window_hours=rep.window_hours,
            window_start=rep.window_start,
            window_end=rep.window_end,
            incidents_analyzed=rep.incidents_analyzed,
            patterns=[
                IncidentPattern(
                    pattern_type=PatternType(p.pattern_type),
                    dimension=p.dimension,
                    count=p.count,
                    incident_ids=[strawberry.ID(i) for i in p.incident_ids],
                    confidence=p.confidence,
                )
                for p in rep.patterns
            ],
        )

    @strawberry.field(description="Incidents recurring with one category and resolution method.")
    async def incident_recurrence(
        self,
        info: Info,
        baseline_days: Annotated[int, strawberry.argument(description="Days back, 1..90.")] = 30,
        threshold: Annotated[int, strawberry.argument(description="Minimum group size, >= 2.")] = 3,
        limit: Annotated[int, strawberry.argument(description="Groups, 1..100.")] = 20,
    ) -> RecurrenceReport:
        rep = await uc.incident_recurrence(
            info.context, baseline_days=baseline_days, threshold=threshold, limit=limit
        )
        return RecurrenceReport(
            baseline_days=rep.baseline_days,
            threshold=rep.threshold,
            total_recurring=rep.total_recurring,
            groups=[_group(g) for g in rep.groups],
        )

    @strawberry.field(description="Postmortem for one incident; NOT_FOUND for unknown ids.")
    async def incident_learnings(
        self,
        info: Info,
        incident_id: Annotated[strawberry.ID, strawberry.argument(description="The incident.")],
    ) -> IncidentLearnings:
        res = await uc.incident_learnings(info.context, str(incident_id))
        s = res.summary
        return IncidentLearnings(
            incident_id=strawberry.ID(s.incident_id),
            summary=ResolutionSummary(
                title=s.title,
                category=s.category or "UNCATEGORIZED",
                severity=Severity(s.severity),
                status=IncidentStatus(s.status),
                resolution_method=_method(s.resolution_method),
                time_to_resolution_ms=_ms(s.time_to_resolution_ms),
                evidence_count=s.evidence_count,
                recovery_attempted=s.recovery_attempted,
            ),
            similar_incidents=[
                SimilarIncident(
                    id=strawberry.ID(x.incident_id),
                    title=x.title,
                    severity=Severity(x.severity),
                    resolution_method=_method(x.resolution_method),
                    resolved_at=x.resolved_at,
                    time_to_resolution_ms=_ms(x.time_to_resolution_ms),
                    recovery_attempted=x.recovery_attempted,
                )
                for x in res.similar
            ],
            insights=_insights(res.insights),
        )

    @strawberry.field(description="Postmortem learnings of a category over a baseline.")
    async def category_learnings(
        self,
        info: Info,
        category: Annotated[
            str, strawberry.argument(description="Category; UNCATEGORIZED for null.")
        ],
        baseline_days: Annotated[int, strawberry.argument(description="Days back, 1..90.")] = 30,
    ) -> CategoryLearnings:
        res = await uc.category_learnings(
            info.context, category=category, baseline_days=baseline_days
        )
        return CategoryLearnings(
            category=res.category,
            baseline_days=res.baseline_days,
            total_incidents=res.stats.total,
            resolved_count=res.stats.resolved,
            resolution_rate=res.resolution_rate,
            average_resolution_ms=res.stats.average_resolution_ms,
            recurrence_rate=res.recurrence_rate,
            top_resolution_methods=[
                ResolutionMethodCount(
                    resolution_method=ResolutionMethod(m.resolution_method), count=m.count
                )
                for m in res.methods
            ],
            recurrence=None if res.recurrence is None else _group(res.recurrence),
            insights=_insights(res.insights),
        )
