"""Rows that mutation inputs refer to: an id in an input must name the caller's own row."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t
from tests.factories import incident_row, insert_rows

# Run ids the ingest tests name in their inputs (runs arrive from outside the gateway, §8.1).
RUN_IDS = ("run-0", "run-1", "run-2", "run-3", "run-4", "run-5", "run-a", "run-b", "run-x")


async def seed_runs(engine: AsyncEngine, *ids: str, tenant: str = "t1") -> None:
    await insert_rows(
        engine, t.runs, [{"id": i, "tenant_id": tenant, "status": "RUNNING"} for i in ids]
    )


async def seed_incident(engine: AsyncEngine, incident_id: str, tenant: str = "t1") -> None:
    await insert_rows(engine, t.incidents, [incident_row(tenant, id=incident_id)])
