"""Domain metrics (Prometheus), counted after the transaction that caused them commits."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["ALERT_DELIVERIES", "BREAKER_DISABLES", "BREAKER_DRIFT_WARNINGS", "BREAKER_ENABLES"]

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
