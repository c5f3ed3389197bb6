"""Rows for the roots compiled since issue 14: breakers, breaker incidents, scopes, halted runs.

Floats of every layout orjson distinguishes (plain, exponent, tiny, huge, integral, negative
zero), breaker names whose collation order differs from code point order, a breaker that was
never written, halt messages with, without and with out-of-range amounts.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t
from tests.factories import insert_rows
from tests.factories_compiler import BASE, Seeded
from tests.factories_controls import scope_row, signal_row
from tests.factories_incwrites import run_row

FLOATS = [
    0.25,
    1e-7,
    0.1 + 0.2,
    1.0,
    None,
    123456.0,
    1e16,
    1.5e16,
    2.5e-6,
    0.00001,
    1.5e-5,
    -0.0,
    -3.75,
    1e15,
    9007199254740993.0,
    5e-324,
    1.7976931348623157e308,
]

HALTS = [
    "Hard budget limit: 500c consumed >= 400c limit",
    "Hard budget limit reached (no amounts)",
    "step 3: Hard budget limit: 0007c consumed >= 5c limit, stopping",
    "Hard budget limit: 12c consumed >= 10c limit",
]


def _breaker(tenant: str, name: str, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant_id": tenant,
        "name": name,
        "updated_at": BASE,
        "disabled": False,
        "disabled_by": None,
        "disabled_reason": None,
        "disabled_until": None,
        "incident_id": None,
        "consecutive_failures": 0,
        "last_failure_at": None,
    }
    row.update(over)
    return row


async def seed_roots(engine: AsyncEngine, data: Seeded) -> None:
    """Add to the differential data set (tests/factories_compiler.seed) for tenant t1 only.

    Tenant t2 has no breaker row at all: it reads the default breaker as CLOSED.
    """
    tenant = "t1"
    incidents = []
    for i, score in enumerate(FLOATS):
        incidents.append(
            {
                "id": f"bi{i:04d}",
                "tenant_id": tenant,
                "circuit_breaker_name": ("costsim_v2", "alpha", "Zeta")[i % 3],
                "created_at": BASE + timedelta(minutes=i, microseconds=(i % 2) * 1500),
                "reason": f"drift {i}",
                "severity": ("P1", "P2", "P3")[i % 3],
                "drift_score": score,
                "sample_count": None if i % 4 == 0 else i,
                # No floats inside JSON scalars: their layout is another matter (issue 14 item 4).
                "details": None if i % 5 == 0 else {"reason": f"r{i}", "i": i},
                "resolved": i % 2 == 0,
                "resolved_at": BASE + timedelta(hours=1) if i % 2 == 0 else None,
                "resolved_by": "bob" if i % 2 == 0 else None,
            }
        )
    await insert_rows(engine, t.breaker_incidents, incidents)
    await insert_rows(
        engine,
        t.circuit_breakers,
        [
            _breaker(
                tenant,
                "costsim_v2",
                disabled=True,
                disabled_by="circuit_breaker",
                disabled_reason="drift",
                disabled_until=BASE + timedelta(days=30),
                incident_id="bi0003",
                consecutive_failures=3,
                last_failure_at=BASE,
            ),
            _breaker(tenant, "alpha", consecutive_failures=1),
            _breaker(tenant, "Zeta", incident_id="bi0002"),
            _breaker(tenant, "beta"),
        ],
    )
    await insert_rows(
        engine,
        t.threshold_signals,
        [
            signal_row(tenant, current_value=v, threshold_value=v, percentage=v)
            for v in FLOATS
            if v is not None
        ],
    )
    own = data.incidents[tenant]
    await insert_rows(
        engine,
        t.execution_scopes,
        [
            scope_row(
                own[i % 3]["id"],
                tenant,
                id=f"scope_{i:024x}",
                created_at=BASE + timedelta(minutes=i),
                max_cost_usd=Decimal("0.50") * i,
                max_attempts=3,
                attempts_used=i % 3,
                target_agents=None if i % 2 else ["a", "b"],
                executions=[{"action": "RETRY", "cost_usd": f"0.{i}", "attempt": i}],
            )
            for i in range(7)
        ],
    )
    await insert_rows(
        engine,
        t.runs,
        [
            run_row(
                tenant,
                status="HALTED",
                error_message=message,
                completed_at=None if i == 3 else BASE + timedelta(minutes=i),
                plan_step_count=None if i == 2 else 5,
                completed_step_count=i,
            )
            for i, message in enumerate(HALTS)
        ],
    )
