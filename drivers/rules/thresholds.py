"""Threshold-limit params (DOMAIN.md §3.4): defaults, validation ranges and scope precedence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = [
    "DEFAULTS",
    "PRECEDENCE",
    "ParamError",
    "ThresholdParams",
    "merge_params",
    "signal_percentage",
    "validate_params",
]

# Used when nothing applies, and when the merged params are invalid.
DEFAULTS: dict[str, Any] = {
    "max_execution_time_ms": 60000,
    "max_tokens": 8192,
    "max_cost_usd": 1.00,
    "failure_signal": True,
}
# Later scopes override earlier ones: AGENT > PROJECT > TENANT > GLOBAL > defaults.
PRECEDENCE: tuple[str, ...] = ("GLOBAL", "TENANT", "PROJECT", "AGENT")

_INT_RANGES = {"max_execution_time_ms": (1000, 300000), "max_tokens": (256, 200000)}
_COST_RANGE = (Decimal("0.01"), Decimal("100.00"))


class ParamError(ValueError):
    """One params key is unknown or out of range; `key` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class ThresholdParams:
    max_execution_time_ms: int
    max_tokens: int
    max_cost_usd: float
    failure_signal: bool


def _check(key: str, value: Any) -> None:
    if key in _INT_RANGES:
        low, high = _INT_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ParamError(key, f"{key} must be an integer in {low}..{high}")
    elif key == "max_cost_usd":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamError(key, "max_cost_usd must be a number in 0.01..100.00")
        cost = Decimal(str(value))
        if not cost.is_finite() or not _COST_RANGE[0] <= cost <= _COST_RANGE[1]:
            raise ParamError(key, "max_cost_usd must be a number in 0.01..100.00")
    elif key == "failure_signal":
        if not isinstance(value, bool):
            raise ParamError(key, "failure_signal must be a boolean")
    else:
        raise ParamError(key, f"unknown threshold param {key!r}")


def validate_params(params: Any) -> None:
    """Refuse unknown keys and out-of-range values of a (partial) params object."""
    if not isinstance(params, Mapping):
        raise ParamError("params", "params must be an object")
    for key, value in params.items():
        _check(str(key), value)


def merge_params(layers: Iterable[Mapping[str, Any]]) -> ThresholdParams:
    """Overlay params key by key over the defaults; invalid results fall back to the defaults.

    `layers` come in application order (lowest precedence first, oldest first within a scope),
    so the last writer of a key wins.
    """
    merged = dict(DEFAULTS)
    for layer in layers:
        if isinstance(layer, Mapping):
            merged.update(layer)
    try:
        validate_params(merged)
    except ParamError:
        merged = dict(DEFAULTS)
    return ThresholdParams(
        max_execution_time_ms=int(merged["max_execution_time_ms"]),
        max_tokens=int(merged["max_tokens"]),
        max_cost_usd=float(merged["max_cost_usd"]),
        failure_signal=bool(merged["failure_signal"]),
    )


def signal_percentage(signal_type: str, current: float, threshold: float) -> float:
    """Current / threshold * 100; a non-positive threshold gives 0 for NEAR and 100 for BREACH."""
    if threshold <= 0:
        return 100.0 if signal_type == "BREACH" else 0.0
    return current / threshold * 100.0
