"""Scoped-execution rules (DOMAIN.md §3.6): action cost estimates and the dry-run clamp."""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "ACTION_COST_CENTS",
    "DEFAULT_ACTION_COST_CENTS",
    "clamp_fraction",
    "estimated_cost_cents",
    "estimated_cost_usd",
]

ACTION_COST_CENTS: dict[str, int] = {"RETRY": 10, "FALLBACK": 5, "CIRCUIT_BREAK": 0, "SCALE": 100}
DEFAULT_ACTION_COST_CENTS = 20


def estimated_cost_cents(action: str) -> int:
    """The estimated cost of one execution of `action`, in cents."""
    return ACTION_COST_CENTS.get(action, DEFAULT_ACTION_COST_CENTS)


def estimated_cost_usd(action: str) -> Decimal:
    """The estimated cost in dollars (cents / 100)."""
    return Decimal(estimated_cost_cents(action)) / 100


def clamp_fraction(fraction: float | None) -> float:
    """Scope fraction for a dry run: default 0.1, clamped to 0.01..1.0."""
    value = 0.1 if fraction is None else fraction
    return min(max(value, 0.01), 1.0)
