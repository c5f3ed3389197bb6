"""Incident severity, titles, escalation and aggregation windows (DOMAIN.md §3.9-3.11).

Pure functions: the aggregator (drivers/aggregation.py) and the governance resolvers share them,
and unit tests pin the numbers without a database.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from drivers.enums import IncidentSeverity, IncidentTriggerType

__all__ = [
    "AGGREGATION_WINDOW_SECONDS",
    "AUTO_RESOLVE_AFTER_SECONDS",
    "MAX_INCIDENTS_PER_HOUR",
    "MAX_RELATED_CALL_IDS",
    "OVERFLOW_TITLE",
    "OVERFLOW_TRIGGER_VALUE",
    "SIGNATURE_VERSION",
    "TITLE_MAX",
    "escalation",
    "initial_severity",
    "recurrence_signature",
    "severity_for_calls",
    "title_for",
    "window_start",
]

AGGREGATION_WINDOW_SECONDS = 300
MAX_INCIDENTS_PER_HOUR = 20
MAX_RELATED_CALL_IDS = 1000
AUTO_RESOLVE_AFTER_SECONDS = 900
TITLE_MAX = 255
OVERFLOW_TITLE = "Incident Rate Limit Reached - Events Aggregated"
OVERFLOW_TRIGGER_VALUE = f">{MAX_INCIDENTS_PER_HOUR} incidents/hour"

_T = IncidentTriggerType
_S = IncidentSeverity

_INITIAL: dict[str, IncidentSeverity] = {
    _T.BUDGET_BREACH: _S.CRITICAL,
    _T.FAILURE_SPIKE: _S.HIGH,
    _T.RATE_LIMIT: _S.MEDIUM,
    _T.CONTENT_POLICY: _S.HIGH,
    _T.FREEZE: _S.CRITICAL,
}

_TITLES: dict[str, str] = {
    _T.BUDGET_BREACH: "Budget limit exceeded",
    _T.FAILURE_SPIKE: "Failure rate spike detected",
    _T.RATE_LIMIT: "Rate limit triggered",
    _T.CONTENT_POLICY: "Content policy violation",
    _T.FREEZE: "Traffic stopped",
}

# (minimum affected calls, severity), most severe first.
_BY_CALLS: tuple[tuple[int, IncidentSeverity], ...] = (
    (200, _S.CRITICAL),
    (50, _S.HIGH),
    (10, _S.MEDIUM),
)


def initial_severity(trigger_type: str) -> IncidentSeverity:
    """Severity of a new incident of this trigger type; MEDIUM for any other type."""
    return _INITIAL.get(trigger_type, _S.MEDIUM)


def severity_for_calls(calls_affected: int) -> IncidentSeverity:
    """≥ 200 CRITICAL, ≥ 50 HIGH, ≥ 10 MEDIUM, else LOW."""
    for minimum, severity in _BY_CALLS:
        if calls_affected >= minimum:
            return severity
    return _S.LOW


def escalation(current: str, calls_affected: int) -> IncidentSeverity | None:
    """The higher severity the affected calls call for, or None (severity only goes up)."""
    wanted = severity_for_calls(calls_affected)
    return wanted if wanted.rank > IncidentSeverity(current).rank else None


def title_for(trigger_type: str, trigger_value: str | None) -> str:
    """The incident title for a trigger, cut to 255 characters."""
    value = "" if trigger_value is None else trigger_value
    prefix = _TITLES.get(trigger_type, str(trigger_type))
    return f"{prefix}: {value}"[:TITLE_MAX]


def window_start(now: datetime) -> datetime:
    """Start of the 300 s aggregation window holding `now` (floor(epoch / 300) * 300, UTC)."""
    epoch = int(now.timestamp())
    start = epoch - epoch % AGGREGATION_WINDOW_SECONDS
    return datetime.fromtimestamp(start, UTC)


# DOMAIN.md §8.4: the incidents that share a signature are recurrences of one problem.
SIGNATURE_VERSION = "v1"


def recurrence_signature(trigger_type: str, category: str | None, error_code: str | None) -> str:
    """v1: first 32 hex of SHA-256 of "v1|<trigger_type>|<category>|<error_code>".

    A null category reads as UNCATEGORIZED and a null error code as "-"; anyone can recompute it.
    """
    text = f"{SIGNATURE_VERSION}|{trigger_type}|{category or 'UNCATEGORIZED'}|{error_code or '-'}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]
