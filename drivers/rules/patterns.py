"""Pure formulas of pattern detection, recurrence and postmortem learnings (DOMAIN.md §3.18-3.20).

No SQL here: the drivers count in the database, these functions turn counts into confidences,
thresholds and insight texts, so the numbers can be unit-tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "CASCADE_MIN_COUNT",
    "CLUSTER_MIN_COUNT",
    "SPIKE_MIN_COUNT",
    "SPIKE_SEVERITIES",
    "Insight",
    "cascade_confidence",
    "category_insights",
    "cluster_confidence",
    "format_duration",
    "incident_insights",
    "round2",
    "spike_confidence",
]

CLUSTER_MIN_COUNT = 3
SPIKE_MIN_COUNT = 3
CASCADE_MIN_COUNT = 2
# CRITICAL first: the order in which spikes are reported.
SPIKE_SEVERITIES = ("CRITICAL", "HIGH")
_SPIKE_BASE = {"CRITICAL": 0.8, "HIGH": 0.7}


def round2(value: float) -> float:
    """Round half up to 2 decimal places (Python's round() is half-even and float-fragile)."""
    return float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def cluster_confidence(count: int) -> float:
    """CATEGORY_CLUSTER: min(0.5 + (count - 3) x 0.1, 0.95)."""
    return round2(min(0.5 + (count - CLUSTER_MIN_COUNT) * 0.1, 0.95))


def spike_confidence(severity: str, count: int) -> float:
    """SEVERITY_SPIKE: min(base + (count - 3) x 0.05, 0.98); base 0.8 CRITICAL, 0.7 HIGH."""
    return round2(min(_SPIKE_BASE[severity] + (count - SPIKE_MIN_COUNT) * 0.05, 0.98))


def cascade_confidence(count: int) -> float:
    """CASCADE_FAILURE: min(0.75 + (count - 2) x 0.1, 0.95)."""
    return round2(min(0.75 + (count - CASCADE_MIN_COUNT) * 0.1, 0.95))


@dataclass(frozen=True, slots=True)
class Insight:
    insight_type: str  # InsightType
    description: str
    confidence: float


def _fixed(value: float, places: int) -> str:
    """Fixed-point text rounded half up (f-strings round half to even)."""
    return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def format_duration(ms: float) -> str:
    """Minutes under an hour (0 dp), hours under a day (1 dp), else days (1 dp).

    The unit is chosen after rounding, so 59.7 minutes reads "1.0 hours", not "60 minutes".
    """
    minutes = ms / 60_000
    if Decimal(_fixed(minutes, 0)) < 60:
        return f"{_fixed(minutes, 0)} minutes"
    hours = minutes / 60
    if Decimal(_fixed(hours, 1)) < 24:
        return f"{_fixed(hours, 1)} hours"
    return f"{_fixed(hours / 24, 1)} days"


def incident_insights(
    *,
    resolution_method: str | None,
    same_method_count: int,
    recovery_count: int,
    resolution_times_ms: list[float],
) -> list[Insight]:
    """Insights for one incident from itself plus its similar resolved incidents (§3.20).

    `same_method_count` counts the similar incidents (not this one) that share its resolution
    method; `recovery_count` and `resolution_times_ms` cover all of them, this one included.
    """
    insights: list[Insight] = []
    n = same_method_count
    if resolution_method is not None and n >= 1:
        insights.append(
            Insight(
                "RESPONSE",
                f"Resolution method '{resolution_method}' was used in {n + 1} similar incidents",
                round2(min(0.5 + 0.1 * n, 0.9)),
            )
        )
    k = recovery_count
    if k >= 2:
        insights.append(
            Insight(
                "PREVENTION",
                f"Recovery actions were attempted in {k} similar incidents; consider an "
                "automated recovery policy",
                round2(min(0.6 + 0.08 * k, 0.85)),
            )
        )
    m = len(resolution_times_ms)
    if m >= 2:
        average = sum(resolution_times_ms) / m
        insights.append(
            Insight(
                "DETECTION",
                f"Similar incidents took {format_duration(average)} on average to resolve "
                f"({m} incidents)",
                round2(min(0.5 + 0.1 * m, 0.8)),
            )
        )
    return insights


def category_insights(
    *,
    category: str,
    total: int,
    resolved: int,
    average_resolution_ms: float | None,
    recurrence_rate: float,
    top_method: tuple[str, int] | None,
) -> list[Insight]:
    """Insights for one category over its baseline (§3.20), in the order DOMAIN.md lists them."""
    insights: list[Insight] = []
    if total > 0:
        rate = resolved / total
        percent = _fixed(rate * 100, 0)
        if rate >= 0.8:
            insights.append(
                Insight(
                    "RESPONSE",
                    f"{category} incidents are resolved reliably ({percent}% resolved)",
                    round2(0.7 + 0.2 * rate),
                )
            )
        elif rate < 0.5:
            insights.append(
                Insight(
                    "RESPONSE",
                    f"Only {percent}% of {category} incidents are resolved; review the "
                    "response process",
                    round2(0.6 + 0.2 * (1 - rate)),
                )
            )
    if average_resolution_ms is not None:
        hours = average_resolution_ms / 3_600_000
        if hours > 24:
            insights.append(
                Insight(
                    "RESPONSE",
                    f"{category} incidents take {format_duration(average_resolution_ms)} on "
                    "average to resolve; consider faster escalation",
                    round2(min(0.6 + hours / 100, 0.85)),
                )
            )
        elif hours < 1:
            insights.append(
                Insight(
                    "RESPONSE",
                    f"{category} incidents are resolved quickly "
                    f"({format_duration(average_resolution_ms)} on average)",
                    0.75,
                )
            )
    if recurrence_rate > 2:
        insights.append(
            Insight(
                "PREVENTION",
                f"{category} incidents recur {_fixed(recurrence_rate, 2)} times a day; add a "
                "preventive policy",
                round2(min(0.6 + 0.05 * recurrence_rate, 0.9)),
            )
        )
    if top_method is not None and top_method[1] >= 3:
        method, count = top_method
        insights.append(
            Insight(
                "RESPONSE",
                f"Resolution method '{method}' resolved {count} {category} incidents; "
                "make it the standard runbook",
                round2(0.6 + min(0.05 * count, 0.3)),
            )
        )
    return insights
