"""Domain counters, named here and exported by whoever owns metrics (the gateway).

Resolvers stay free of prometheus_client (the gateway owns /metrics and the registry): they call
`increment(LIMIT_BREACHES, breach_type=...)`, and the gateway installs a sink at import time that
forwards to its Prometheus counters. Without a sink (CLI, jobs in a bare worker) it is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["COUNTERS", "LIMIT_BREACHES", "CounterSpec", "increment", "install_sink"]


@dataclass(frozen=True, slots=True)
class CounterSpec:
    name: str
    description: str
    labels: tuple[str, ...]


LIMIT_BREACHES = CounterSpec(
    "gateway_limit_breaches_total", "Limit breaches recorded, by breach type", ("breach_type",)
)
COUNTERS: tuple[CounterSpec, ...] = (LIMIT_BREACHES,)

Sink = Callable[[CounterSpec, dict[str, str]], None]
_sinks: list[Sink] = []


def install_sink(sink: Sink) -> None:
    """Forward every increment to `sink` (called once by the metrics owner)."""
    if sink not in _sinks:
        _sinks.append(sink)


def increment(spec: CounterSpec, **labels: str) -> None:
    """Count one occurrence of `spec` with these label values."""
    for sink in _sinks:
        sink(spec, labels)
