"""Circuit-breaker transition rules and Alertmanager payloads (DOMAIN.md §3.7-3.8), pure.

The resolvers lock the breaker row and then ask these functions what to do; keeping the decisions
free of I/O lets the state machine be tested exhaustively without a database.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "DEFAULT_BREAKER",
    "DISABLED_BY_BREAKER",
    "RECOVERED_BY",
    "BreakerSettings",
    "DriftOutcome",
    "backoff_seconds",
    "check_score",
    "disable_alert",
    "disabled_until",
    "drift_outcome",
    "drift_reason",
    "enable_alert",
    "manual_disable_action",
    "new_incident_id",
    "recovery_due",
    "schema_error_reason",
    "schema_errors_trip",
]

DEFAULT_BREAKER = "costsim_v2"
DISABLED_BY_BREAKER = "circuit_breaker"
RECOVERED_BY = "system-auto-recover"
MAX_BACKOFF_SECONDS = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerSettings:
    """The COSTSIM_* and ALERTMANAGER_* knobs; the gateway fills it from the environment."""

    drift_threshold: float = 0.2
    drift_warning_threshold: float = 0.15
    failure_threshold: int = 3
    schema_error_threshold: int = 5
    auto_disable: bool = True
    auto_recover: bool = True
    disable_ttl_hours: float = 24.0
    alertmanager_url: str | None = None
    alertmanager_timeout: float = 10.0
    instance_id: str = "aos-unknown"
    runbook_url: str = "https://runbooks.example.com/costsim/circuit-breaker"
    alert_max_attempts: int = 10
    alert_retention_days: int = 30


@dataclass(frozen=True, slots=True)
class DriftOutcome:
    """What a drift report does to a breaker: new counter, whether it failed, whether it trips."""

    consecutive_failures: int
    failed: bool
    counter_changed: bool
    trip: bool
    warning: bool


def check_score(score: float) -> bool:
    """Whether a drift score is a finite number in 0..1."""
    return math.isfinite(score) and 0.0 <= score <= 1.0


def drift_outcome(
    *, disabled: bool, consecutive_failures: int, score: float, settings: BreakerSettings
) -> DriftOutcome:
    """Apply one drift report: > threshold counts a failure, a good report resets the count.

    While OPEN the counter still moves but the breaker never trips again.
    """
    if score > settings.drift_threshold:
        failures = consecutive_failures + 1
        trip = not disabled and settings.auto_disable and failures >= settings.failure_threshold
        return DriftOutcome(failures, True, True, trip, False)
    warning = score > settings.drift_warning_threshold
    if consecutive_failures > 0:
        return DriftOutcome(0, False, True, False, warning)
    return DriftOutcome(0, False, False, False, warning)


def drift_reason(score: float, threshold: float) -> str:
    """The exact reason text of a drift trip."""
    return f"Drift exceeded threshold: {score:.4f} > {threshold}"


def schema_errors_trip(*, disabled: bool, count: int, settings: BreakerSettings) -> bool:
    """Schema errors trip a CLOSED breaker when one report carries at least the threshold."""
    return not disabled and count >= settings.schema_error_threshold


def schema_error_reason(count: int, threshold: int) -> str:
    """The exact reason text of a schema-error trip."""
    return f"Schema error threshold exceeded: {count} >= {threshold}"


def manual_disable_action(*, disabled: bool, current_reason: str | None, reason: str) -> str:
    """`noop` (already OPEN for this reason), `supersede` (OPEN for another) or `trip`."""
    if disabled and current_reason == reason:
        return "noop"
    return "supersede" if disabled else "trip"


def disabled_until(
    now: datetime, given: datetime | None, settings: BreakerSettings
) -> datetime | None:
    """The given time, else now + TTL when the TTL is positive, else None (manual reset)."""
    if given is not None:
        return given
    if settings.disable_ttl_hours > 0:
        return now + timedelta(hours=settings.disable_ttl_hours)
    return None


def recovery_due(
    *, disabled: bool, until: datetime | None, now: datetime, settings: BreakerSettings
) -> bool:
    """An OPEN breaker whose TTL has passed recovers (when auto-recovery is on)."""
    return settings.auto_recover and disabled and until is not None and until <= now


def new_incident_id() -> str:
    """A breaker incident id: the first 12 characters of a uuid4 string."""
    return str(uuid.uuid4())[:12]


def backoff_seconds(attempts: int) -> int:
    """Delay before the next delivery attempt: min(2^attempts, 300) seconds."""
    return MAX_BACKOFF_SECONDS if attempts >= 9 else min(2**attempts, MAX_BACKOFF_SECONDS)


def disable_alert(
    *,
    tenant_id: str,
    name: str,
    incident_id: str,
    severity: str,
    reason: str,
    drift_score: float,
    sample_count: int,
    until: datetime | None,
    now: datetime,
    settings: BreakerSettings,
) -> list[dict[str, Any]]:
    """The Alertmanager v2 payload of a trip (one alert)."""
    until_text = until.isoformat() if until is not None else "manual reset required"
    return [
        {
            "labels": {
                "alertname": "CostSimV2Disabled",
                "severity": severity.lower(),
                "component": "costsim",
                "circuit_breaker": name,
                "instance": settings.instance_id,
                "incident_id": incident_id,
                "tenant_id": tenant_id,
            },
            "annotations": {
                "summary": f"CostSim V2 circuit breaker tripped ({severity})",
                "description": (
                    f"Reason: {reason}\nDrift score: {drift_score:.4f}\n"
                    f"Sample count: {sample_count}\nDisabled until: {until_text}"
                ),
                "runbook_url": settings.runbook_url,
            },
            "startsAt": now.isoformat(),
        }
    ]


def enable_alert(
    *,
    tenant_id: str,
    name: str,
    enabled_by: str,
    reason: str | None,
    now: datetime,
    settings: BreakerSettings,
) -> list[dict[str, Any]]:
    """The Alertmanager v2 payload of a re-enable (one alert that starts and ends now)."""
    return [
        {
            "labels": {
                "alertname": "CostSimV2Reenabled",
                "severity": "info",
                "component": "costsim",
                "circuit_breaker": name,
                "instance": settings.instance_id,
                "tenant_id": tenant_id,
            },
            "annotations": {
                "summary": "CostSim V2 circuit breaker re-enabled",
                "description": (
                    f"Re-enabled by: {enabled_by}\nReason: {reason or 'Not specified'}"
                ),
            },
            "startsAt": now.isoformat(),
            "endsAt": now.isoformat(),
        }
    ]
