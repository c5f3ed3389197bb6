"""Lesson rules of DOMAIN.md §3.16: titles, bands, proposed actions and the state machine.

Pure functions over plain values, so every number (the 85 % floor, the band edges, the 0.9
factor) is unit-tested without a database. Percentages are decimals rounded half-up, so
"87.25" renders as 87.3 whatever binary float the client sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from drivers.enums import LessonStatus, ThresholdBand

__all__ = [
    "NEAR_THRESHOLD_FLOOR",
    "LessonDraft",
    "allowed_from",
    "critical_success_draft",
    "failure_draft",
    "near_threshold_draft",
    "threshold_band",
]

NEAR_THRESHOLD_FLOOR = Decimal(85)
_ONE_DP = Decimal("0.1")
_ZERO_DP = Decimal(1)
_EARLY_ALERT_FACTOR = Decimal("0.9")

# The state machine: which status each transition needs. Anything else is CONFLICT.
_REQUIRED: dict[str, LessonStatus] = {
    "convert": LessonStatus.PENDING,
    "defer": LessonStatus.PENDING,
    "dismiss": LessonStatus.PENDING,
    "reactivate": LessonStatus.DEFERRED,
}


@dataclass(frozen=True, slots=True)
class LessonDraft:
    """The computed columns of a new lesson."""

    title: str
    description: str
    proposed_action: str | None
    detected_pattern: dict[str, Any]
    severity: str | None


def allowed_from(action: str) -> LessonStatus:
    """The one status from which `action` (convert/defer/dismiss/reactivate) is legal."""
    return _REQUIRED[action]


def threshold_band(utilization: Decimal) -> str | None:
    """The band of a utilization percentage, or None below 85 % (no lesson)."""
    if utilization < NEAR_THRESHOLD_FLOOR:
        return None
    if utilization < 90:
        return ThresholdBand.BAND_85_90.value
    if utilization < 95:
        return ThresholdBand.BAND_90_95.value
    return ThresholdBand.BAND_95_100.value  # 95 and above, 100 % and over included


def _dp(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_HALF_UP)


def failure_draft(
    *, error_code: str | None, severity: str | None, description: str | None
) -> LessonDraft:
    """A FAILURE lesson: blocking policy advice for CRITICAL/HIGH, warning policy otherwise."""
    code = error_code or "unknown"
    if severity in ("CRITICAL", "HIGH"):
        action = (
            f"Consider creating a blocking policy to prevent similar failures. Error code: {code}."
        )
    else:
        action = f"Consider creating a warning policy to flag similar patterns. Error code: {code}."
    return LessonDraft(
        title=f"Failure: {error_code or 'Unknown Error'}",
        description=description
        or f"A run failed with error code {code} (severity {severity or 'unknown'}).",
        proposed_action=action,
        detected_pattern={"error_code": error_code, "severity": severity},
        severity=severity,
    )


def near_threshold_draft(
    *,
    threshold_type: str,
    utilization: Decimal,
    current_value: Decimal | None,
    threshold_value: Decimal | None,
    description: str | None,
) -> LessonDraft | None:
    """A NEAR_THRESHOLD lesson, or None when utilization is below 85 %."""
    band = threshold_band(utilization)
    if band is None:
        return None
    shown = _dp(utilization, _ONE_DP)
    early = _dp(utilization * _EARLY_ALERT_FACTOR, _ZERO_DP)
    return LessonDraft(
        title=f"Near-Threshold: {threshold_type} at {shown}%",
        description=description
        or f"{threshold_type} reached {shown}% of its threshold without breaching it.",
        proposed_action=(
            f"Consider creating a warning policy for {threshold_type} at {early}% threshold "
            "to provide earlier alerts."
        ),
        detected_pattern={
            "threshold_type": threshold_type,
            "threshold_band": band,
            "utilization_percent": float(utilization),
            "current_value": None if current_value is None else str(current_value),
            "threshold_value": None if threshold_value is None else str(threshold_value),
        },
        severity=None,
    )


def critical_success_draft(*, success_type: str, description: str | None) -> LessonDraft:
    """A CRITICAL_SUCCESS lesson: severity NONE, no proposed action."""
    return LessonDraft(
        title=f"Critical Success: {success_type}",
        description=description or f"A run succeeded under critical conditions: {success_type}.",
        proposed_action=None,
        detected_pattern={"success_type": success_type},
        severity="NONE",
    )
