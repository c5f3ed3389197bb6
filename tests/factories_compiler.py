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
from tests.factories_controls import signal_row
from tests.factories_incwrites import (
    evidence_row,
    failure_row,
    run_row,
    step_row,
    violation_row,
)
from tests.factories_lessons import proposal_row

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


@dataclass
class Seeded:
    incidents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    limits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    breaches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    overrides: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lessons: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    signals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _run(tenant: str, i: int) -> dict[str, Any]:
    created = BASE + timedelta(minutes=11 * i, microseconds=0 if i % 2 else 250 * i)
    return run_row(
        tenant,
        agent_id=None if i % 4 == 3 else f"agent-{i % 2}",
        project_id=("proj-1", "proj-2")[i % 2],
        status=("RUNNING", "SUCCEEDED", "FAILED", "RUNNING")[i % 4],
        started_at=None if i % 5 == 4 else created,
        estimated_cost_usd=None if i % 3 == 2 else Decimal("0.120000") * i,
        created_at=created,
        updated_at=created + timedelta(seconds=1),
    )


async def _seed_runs(
    engine: AsyncEngine, tenant: str, runs: list[dict[str, Any]], incidents: list[dict[str, Any]]
) -> None:
    """Steps, failures and violations per run (a varying number each, zero included)."""
    steps, failures, violations = [], [], []
    for i, run in enumerate(runs):
        steps += [step_row(run["id"], k, tenant, tokens=k * 7) for k in range(i % 5)]
        failures += [
            failure_row(run["id"], tenant, created_at=run["created_at"] + timedelta(seconds=k // 2))
            for k in range(i % 3)
        ]
        violations += [
            violation_row(
                run["id"],
                tenant,
                created_at=run["created_at"] + timedelta(seconds=k),
                incident_id=incidents[(i + k) % len(incidents)]["id"] if k % 2 else None,
            )
            for k in range(i % 4)
        ]
    await insert_rows(engine, t.run_steps, steps)
    await insert_rows(engine, t.run_failures, failures)
    captures = [
        {
            "id": f"{f['id']}-ev{k}",
            "tenant_id": tenant,
            "failure_id": f["id"],
            "evidence_type": ("LLM_FAILURE_CAPTURE", "TIMEOUT_TRACE")[k],
            "evidence_data": {"k": k, "trace": [1, "two", None]},
            "created_at": f["created_at"] + timedelta(seconds=k // 2),
        }
        for n, f in enumerate(failures)
        for k in range(n % 3 and 2)
    ]
    await insert_rows(engine, t.failure_evidence, captures)
    evidence = [
        evidence_row(
            inc["id"],
            tenant,
            evidence_type=("POLICY_VIOLATION", "RECOVERY_ACTION")[k % 2],
            recovery_executed=k % 2 == 1,
            payload=None if k == 2 else {"k": k},
            created_at=inc["created_at"] + timedelta(seconds=k // 2),
        )
        for i, inc in enumerate(incidents)
        for k in range(i % 4)
    ]
    await insert_rows(engine, t.incident_evidence, evidence)
    await insert_rows(engine, t.policy_violations, violations)


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
        runs = [_run(tenant, i) for i in range(9 if tenant == "t1" else 3)]
        await insert_rows(engine, t.runs, runs)
        incidents = [_incident(tenant, i, rnd) for i in range(n)]
        for i, inc in enumerate(incidents):
            inc["source_run_id"] = runs[i % len(runs)]["id"] if i % 3 == 1 else None
        await insert_rows(engine, t.incidents, incidents)
        await _seed_runs(engine, tenant, runs, incidents)
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
                        run_id=runs[(i + j) % len(runs)]["id"] if (i + j) % 3 else None,
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
        proposals = [
            proposal_row(
                tenant,
                title=f"proposal {k}",
                created_at=BASE + timedelta(minutes=k, microseconds=k * 3),
            )
            for k in range(3)
        ]
        await insert_rows(engine, t.policy_proposals, proposals)
        lessons = (
            [
                lesson_row(
                    inc["id"],
                    tenant,
                    title=f"lesson {k}",
                    lesson_type=("FAILURE", "NEAR_THRESHOLD")[k % 2],
                    severity=("HIGH", "LOW", None)[k % 3],
                    status=("PENDING", "DISMISSED", "DEFERRED")[k % 3],
                    source_run_id=runs[k % len(runs)]["id"] if k % 2 else None,
                    draft_proposal_id=proposals[k % 3]["id"] if k % 4 else None,
                    created_at=BASE + timedelta(minutes=3 * k, microseconds=k),
                )
                for k, inc in enumerate(incidents[:5])
            ]
            + [
                lesson_row(
                    run["id"],
                    tenant,
                    title=f"run lesson {k}",
                    source_event_type="RUN",
                    source_run_id=run["id"],
                    draft_proposal_id=None,
                    created_at=BASE + timedelta(minutes=3 * k + 1),
                )
                for k, run in enumerate(runs[:3])
            ]
            + [
                # A RUN lesson whose source id is an incident's: sourceIncident must stay null.
                lesson_row(
                    incidents[0]["id"],
                    tenant,
                    title="run lesson on an incident id",
                    lesson_type="CRITICAL_SUCCESS",
                    source_event_type="RUN",
                    source_run_id=runs[0]["id"],
                    draft_proposal_id=None,
                    created_at=BASE + timedelta(minutes=2),
                )
            ]
        )
        await insert_rows(engine, t.lessons_learned, lessons)
        out.incidents[tenant] = incidents
        out.events[tenant] = events
        out.limits[tenant] = limits
        out.breaches[tenant] = breaches
        signals = [
            signal_row(
                tenant,
                run_id=runs[k % len(runs)]["id"],
                signal_type=("NEAR", "BREACH")[k % 2],
                action_taken=(None, "PAUSE")[k % 2],
                percentage=None if k % 4 == 3 else 85.0,
                # Pairs share a timestamp: the row id breaks the tie.
                timestamp=BASE + timedelta(minutes=k // 2, microseconds=0 if k % 3 else 7),
                alert_channels=None if k % 2 else ["slack", {"x": 1}],
            )
            for k in range(7 if tenant == "t1" else 2)
        ]
        async with engine.begin() as conn:
            result = await conn.execute(
                t.threshold_signals.insert().returning(
                    t.threshold_signals.c.id, sort_by_parameter_order=True
                ),
                signals,
            )
            for row, sig in zip(result.all(), signals, strict=True):
                sig["id"] = row[0]
        out.runs[tenant] = runs
        out.signals[tenant] = signals
        out.overrides[tenant] = overrides
        out.lessons[tenant] = lessons
    return out
