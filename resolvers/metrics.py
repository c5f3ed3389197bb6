"""Domain metrics (Prometheus), counted after the transaction that caused them commits."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = [
    "ALERT_DELIVERIES",
    "BREAKER_DISABLES",
    "BREAKER_DRIFT_WARNINGS",
    "BREAKER_ENABLES",
    "GOVERNANCE_EVENTS",
    "LIMIT_BREACHES",
]

BREAKER_DISABLES = Counter(
    "gateway_breaker_disables_total",
    "Circuit breaker trips by cause (drift or manual) and severity",
    ["reason", "severity"],
)
BREAKER_ENABLES = Counter(
    "gateway_breaker_enables_total",
    "Circuit breaker re-enables by how (manual or auto_recover)",
    ["how"],
)
BREAKER_DRIFT_WARNINGS = Counter(
    "gateway_breaker_drift_warnings_total",
    "Drift reports above the warning level (P2) that do not count as failures",
    ["breaker"],
)
ALERT_DELIVERIES = Counter(
    "gateway_alert_deliveries_total",
    "Alert outbox delivery attempts by result (sent, skipped, retry, failed)",
    ["result"],
)
LIMIT_BREACHES = Counter(
    "gateway_limit_breaches_total", "Limit breaches recorded, by breach type", ["breach_type"]
)
GOVERNANCE_EVENTS = Counter(
    "gateway_governance_events_total",
    "Mandatory governance writes committed, by domain and source (DOMAIN.md §3.12)",
    ["domain", "source"],
)
