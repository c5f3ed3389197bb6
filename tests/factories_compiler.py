"""One deterministic data set for the differential tests of the two read paths.

Two tenants; incidents of every status and severity, events with tied timestamps (keyset
tie-breaks), timestamps with and without microseconds, nulls, decimals of several scales,
nested JSON; limits of several categories with breaches, overrides and integrity rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t
from tests.factories import (
    breach_row,
    event_row,
    incident_row,
    insert_limits,
    insert_rows,
    lesson_row,
    limit_row,
    override_row,
)

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


@dataclass
class Seeded:
    incidents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    limits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    breaches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _incident(tenant: str, i: int, rnd: random.Random) -> dict[str, Any]:
    created = BASE + timedelta(
        minutes=7 * i, microseconds=0 if i % 3 == 0 else rnd.randint(1, 999_999)
    )
    status = ("OPEN", "ACKNOWLEDGED", "RESOLVED")[i % 3]
    over: dict[str, Any] = {
        "title": f'Incident {i} ü "quoted"',
        "severity": ("LOW", "MEDIUM", "HIGH", "CRITICAL")[i % 4],
        "status": status,
        "category": None if i % 5 == 0 else ("BUDGET_EXCEEDED", "RATE_LIMIT")[i % 2],
        "cause_type": ("SYSTEM", "HUMAN")[i % 2] if i % 7 else "SYSTEM",
        "created_at": created,
        "started_at": created,
        "updated_at": created + timedelta(seconds=5),
        "related_call_ids": [f"call-{i}", i, {"n": i / 4}],
        "cost_delta_cents": Decimal(i) / Decimal(8),
        "cost_impact": None if i % 2 else Decimal("12.5"),
        "error_rate": Decimal("0.0001") * i,
        "action_details": None if i % 4 else {"k": [1, 2.5, None, "x"], "nested": {"a": True}},
        "calls_affected": i * 3,
        # executemany takes its columns from the first row: every row names every column.
        "acknowledged_at": None,
        "acknowledged_by": None,
        "resolved_at": None,
        "ended_at": None,
        "resolution_method": None,
        "duration_seconds": None,
    }
    if status == "ACKNOWLEDGED":
        over |= {"acknowledged_at": created + timedelta(minutes=1), "acknowledged_by": "ann"}
    if status == "RESOLVED":
        resolved = created + timedelta(minutes=30, microseconds=0 if i % 2 else 1234)
        over |= {
            "resolved_at": resolved,
            "ended_at": resolved,
            "resolution_method": "MANUAL",
            "duration_seconds": 1800,
        }
    return incident_row(tenant, **over)


async def seed(engine: AsyncEngine, n_incidents: int = 14) -> Seeded:
    """Insert the data set; return the rows per tenant."""
    rnd = random.Random(7)  # noqa: S311 - deterministic test data
    out = Seeded()
    for tenant, n in (("t1", n_incidents), ("t2", 4)):
        incidents = [_incident(tenant, i, rnd) for i in range(n)]
        await insert_rows(engine, t.incidents, incidents)
        events = []
        for k, inc in enumerate(incidents):
            for j in range(k % 6):
                # Pairs of events share a timestamp, so the id breaks the tie.
                at = inc["created_at"] + timedelta(seconds=10 * (j // 2))
                events.append(
                    event_row(
                        inc["id"],
                        tenant,
                        created_at=at,
                        description=f"e{j}",
                        data={"j": j, "list": [j, "x"]},
                        event_type=("NOTE", "INCIDENT_CREATED")[j % 2],
                    )
                )
        await insert_rows(engine, t.incident_events, events)
        limits = [
            limit_row(
                tenant,
                name=f"limit {i}",
                limit_category=("BUDGET", "RATE", "THRESHOLD")[i % 3],
                status=("ACTIVE", "ACTIVE", "DISABLED")[i % 3] if i % 4 else "ACTIVE",
                limit_type=("COST_USD", "TOKENS_IN", "TOKENS_OUT", "CALLS_50%")[i % 4],
                max_value=Decimal("100.0000") + i,
                created_at=BASE + timedelta(hours=i, microseconds=i * 10),
                params={"i": i, "deep": {"x": [i]}},
                description=None if i % 2 else f"d{i}",
            )
            for i in range(9 if tenant == "t1" else 3)
        ]
        await insert_limits(engine, limits)
        breaches = []
        for i, lim in enumerate(limits):
            for j in range(i % 4):
                breaches.append(
                    breach_row(
                        lim["id"],
                        tenant,
                        breached_at=BASE + timedelta(days=j % 2, hours=i, microseconds=j),
                        incident_id=incidents[(i + j) % len(incidents)]["id"] if j % 2 else None,
                        value_at_breach=None if j == 2 else Decimal("120.5"),
                        details=None if j else {"why": "spike"},
                    )
                )
        await insert_rows(engine, t.limit_breaches, breaches)
        overrides = []
        for i, lim in enumerate(limits[:5]):
            overrides.append(
                override_row(
                    lim["id"],
                    tenant,
                    status="ACTIVE" if i % 2 else "EXPIRED",
                    requested_at=BASE + timedelta(minutes=30 + i, microseconds=5),
                )
            )
            overrides.append(
                override_row(
                    lim["id"],
                    tenant,
                    status="REJECTED",
                    requested_at=BASE + timedelta(minutes=i),
                )
            )
        await insert_rows(engine, t.limit_overrides, overrides)
        lessons = [
            lesson_row(inc["id"], tenant, title=f"lesson {k}")
            for k, inc in enumerate(incidents[:5])
        ]
        await insert_rows(engine, t.lessons_learned, lessons)
        out.incidents[tenant] = incidents
        out.events[tenant] = events
        out.limits[tenant] = limits
        out.breaches[tenant] = breaches
    return out
