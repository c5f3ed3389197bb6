"""Builders for analytics tests: incidents with explicit timestamps, costs and resolutions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t
from tests.factories import incident_row, insert_rows


def utc_now() -> datetime:
    return datetime.now(UTC)


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of the moment's day."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the moment's ISO week (DATE_TRUNC('week'))."""
    day = day_start(moment)
    return day - timedelta(days=day.weekday())


def month_start(moment: datetime) -> datetime:
    return day_start(moment).replace(day=1)


def inc(
    created_at: datetime,
    *,
    tenant: str = "t1",
    resolved_after: timedelta | None = None,
    method: str = "MANUAL",
    **over: Any,
) -> dict[str, Any]:
    """An incident created at `created_at`; RESOLVED `resolved_after` later when given."""
    row = incident_row(tenant, created_at=created_at, started_at=created_at, updated_at=created_at)
    if resolved_after is not None:
        resolved = created_at + resolved_after
        row.update(
            status="RESOLVED",
            resolved_at=resolved,
            ended_at=resolved,
            resolution_method=method,
            duration_seconds=int(resolved_after.total_seconds()),
        )
    row.update(over)
    return row


def evidence(incident_id: str, *, tenant: str = "t1", recovery: bool = False) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "tenant_id": tenant,
        "incident_id": incident_id,
        "evidence_type": "RECOVERY_ACTION" if recovery else "POLICY_VIOLATION",
        "recovery_executed": recovery,
        "payload": {},
    }


def run(run_id: str, *, tenant: str = "t1") -> dict[str, Any]:
    return {"id": run_id, "tenant_id": tenant, "status": "FAILED"}


async def seed(
    engine: AsyncEngine,
    incidents: list[dict[str, Any]],
    *,
    evidence_rows: list[dict[str, Any]] | None = None,
    runs: list[dict[str, Any]] | None = None,
) -> None:
    """Insert runs, then incidents (column sets may differ per row), then evidence."""
    await insert_rows(engine, t.runs, runs or [])
    for row in incidents:
        await insert_rows(engine, t.incidents, [row])
    await insert_rows(engine, t.incident_evidence, evidence_rows or [])
