"""Tiny async builders that insert rows directly (tests may see tables; the app layers may not)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t

NOW = datetime.now(UTC)


def _id() -> str:
    return str(uuid.uuid4())


async def insert_rows(engine: AsyncEngine, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        async with engine.begin() as conn:
            await conn.execute(insert(table), rows)


def incident_row(tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "title": "Budget limit exceeded: 120%",
        "severity": "HIGH",
        "status": "OPEN",
        "trigger_type": "BUDGET_BREACH",
        "trigger_value": "120%",
        "category": "BUDGET_EXCEEDED",
        "source_type": "KILLSWITCH",
        "cause_type": "SYSTEM",
        "started_at": NOW - timedelta(hours=1),
        "created_at": NOW - timedelta(hours=1),
        "updated_at": NOW - timedelta(hours=1),
    }
    row.update(over)
    return row


def event_row(incident_id: str, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "incident_id": incident_id,
        "event_type": "NOTE",
        "description": "note",
        "data": {},
    }
    row.update(over)
    return row


def limit_row(tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "name": "Monthly spend",
        "limit_category": "BUDGET",
        "limit_type": "COST_USD",
        "scope": "TENANT",
        "max_value": Decimal("100.0000"),
        "reset_period": "MONTHLY",
        "enforcement": "BLOCK",
        "status": "ACTIVE",
    }
    row.update(over)
    return row


def integrity_row(limit_id: str, tenant: str = "t1") -> dict[str, Any]:
    return {
        "id": _id(),
        "tenant_id": tenant,
        "limit_id": limit_id,
        "integrity_status": "VERIFIED",
        "integrity_score": Decimal("1.0000"),
    }


def breach_row(limit_id: str, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "limit_id": limit_id,
        "breach_type": "BREACHED",
        "value_at_breach": Decimal("120.0000"),
        "limit_value": Decimal("100.0000"),
        "breached_at": NOW - timedelta(days=1),
    }
    row.update(over)
    return row


def override_row(limit_id: str, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "limit_id": limit_id,
        "original_value": Decimal("100.0000"),
        "override_value": Decimal("150.0000"),
        "status": "ACTIVE",
        "requested_by": "bob",
        "reason": "quarter-end batch jobs",
        "starts_at": NOW - timedelta(hours=1),
        "expires_at": NOW + timedelta(hours=23),
    }
    row.update(over)
    return row


def lesson_row(source_event_id: str, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "lesson_type": "FAILURE",
        "severity": "HIGH",
        "source_event_id": source_event_id,
        "source_event_type": "INCIDENT",
        "title": "Failure: TIMEOUT",
        "description": "Run timed out",
        "status": "PENDING",
    }
    row.update(over)
    return row


async def make_limits(
    engine: AsyncEngine, n: int, tenant: str = "t1", **over: Any
) -> list[dict[str, Any]]:
    """Insert n limits with their integrity rows."""
    limits = [limit_row(tenant, **over) for _ in range(n)]
    async with engine.begin() as conn:  # one transaction: the integrity trigger checks at commit
        await conn.execute(insert(t.limits), limits)
        await conn.execute(
            insert(t.limit_integrity), [integrity_row(lim["id"], tenant) for lim in limits]
        )
    return limits


async def insert_limits(engine: AsyncEngine, limits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert prepared limit rows (their column sets may differ) with their integrity rows."""
    async with engine.begin() as conn:  # one transaction: the integrity trigger checks at commit
        for row in limits:
            await conn.execute(insert(t.limits), [row])
        await conn.execute(
            insert(t.limit_integrity),
            [integrity_row(lim["id"], lim["tenant_id"]) for lim in limits],
        )
    return limits
