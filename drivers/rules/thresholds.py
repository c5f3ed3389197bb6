"""Threshold-limit params (DOMAIN.md §3.4): defaults, validation ranges and scope precedence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from drivers.enums import RunThresholdSignal

__all__ = [
    "DEFAULTS",
    "PRECEDENCE",
    "OpsEvent",
    "ParamError",
    "ThresholdLayer",
    "ThresholdParams",
    "applicable_layers",
    "evaluate_run",
    "merge_params",
    "ops_event",
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


@dataclass(frozen=True, slots=True)
class ThresholdLayer:
    """One ACTIVE THRESHOLD limit's params and where it applies."""

    limit_id: str
    scope: str
    scope_id: str | None
    params: Any


def applicable_layers(
    layers: Sequence[ThresholdLayer], agent_id: str | None, project_id: str | None
) -> list[ThresholdLayer]:
    """The layers that apply to (agent, project), keeping their application order.

    GLOBAL and TENANT always apply; PROJECT when scope_id = project_id; AGENT when scope_id =
    agent_id. `layers` come in application order (precedence, then oldest first).
    """

    def applies(layer: ThresholdLayer) -> bool:
        if layer.scope in ("GLOBAL", "TENANT"):
            return True
        if layer.scope == "PROJECT":
            return project_id is not None and layer.scope_id == project_id
        if layer.scope == "AGENT":
            return agent_id is not None and layer.scope_id == agent_id
        return False

    return [layer for layer in layers if applies(layer)]


class MeasuredRun(Protocol):
    """What run evaluation reads of a run (RunRecord has all of it)."""

    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def completed_at(self) -> datetime | None: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def estimated_cost_usd(self) -> Decimal | None: ...


_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "HALTED", "CANCELLED"})


def evaluate_run(
    run: MeasuredRun, params: ThresholdParams, now: datetime
) -> list[RunThresholdSignal]:
    """§3.4 run evaluation, signals in RunThresholdSignal order.

    A RUNNING run is measured to now; a terminal run to completed_at and may also signal cost
    and failure. A QUEUED run yields nothing, and so does the time check without started_at (or,
    for a terminal run, without completed_at).
    """
    running = run.status == "RUNNING"
    if not running and run.status not in _TERMINAL:
        return []
    end = now if running else run.completed_at
    found: set[RunThresholdSignal] = set()
    limit = timedelta(milliseconds=params.max_execution_time_ms)
    if run.started_at is not None and end is not None and end - run.started_at > limit:
        found.add(RunThresholdSignal.EXECUTION_TIME_EXCEEDED)
    if run.input_tokens + run.output_tokens > params.max_tokens:
        found.add(RunThresholdSignal.TOKEN_LIMIT_EXCEEDED)
    if not running:
        cost = run.estimated_cost_usd
        if cost is not None and cost > Decimal(str(params.max_cost_usd)):
            found.add(RunThresholdSignal.COST_LIMIT_EXCEEDED)
        if run.status == "FAILED" and params.failure_signal:
            found.add(RunThresholdSignal.RUN_FAILED)
    return [signal for signal in RunThresholdSignal if signal in found]


@dataclass(frozen=True, slots=True)
class OpsEvent:
    """The ops-event form of one run threshold signal (§3.4)."""

    event_type: str
    severity: int
    entity_type: str
    entity_id: str
    metadata: dict[str, Any]


OPS_EVENT_DOMAIN = "llm_runs"


def ops_event(
    signal: RunThresholdSignal, *, run_id: str, state: str, params: ThresholdParams
) -> OpsEvent:
    """RUN_FAILED → LLM_CALL_FAILED (severity 3); any other signal → INFRA_LIMIT_HIT (2)."""
    failed = signal == RunThresholdSignal.RUN_FAILED
    return OpsEvent(
        event_type="LLM_CALL_FAILED" if failed else "INFRA_LIMIT_HIT",
        severity=3 if failed else 2,
        entity_type="LLM_CALL",
        entity_id=run_id,
        metadata={
            "signal": str(signal),
            "state": state,
            "params_used": asdict(params),
            "domain": OPS_EVENT_DOMAIN,
        },
    )
