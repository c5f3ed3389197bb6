"""Builders and probes for the controls tests (limits, breaches, overrides, signals, scopes)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t

NOW = datetime.now(UTC)


def run_row(tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": str(uuid.uuid4()), "tenant_id": tenant, "status": "RUNNING"}
    row.update(over)
    return row


def signal_row(tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant_id": tenant,
        "signal_id": "SIG-" + uuid.uuid4().hex[:12],
        "run_id": "run-1",
        "policy_id": "pol-1",
        "signal_type": "NEAR",
        "metric": "COST",
        "current_value": 85.0,
        "threshold_value": 100.0,
        "percentage": 85.0,
        "timestamp": NOW - timedelta(minutes=5),
    }
    row.update(over)
    return row


def scope_row(incident_id: str, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant_id": tenant,
        "incident_id": incident_id,
        "allowed_actions": ["RETRY"],
        "intent": "retry it",
        "created_by": "bob",
        "expires_at": datetime.now(UTC) + timedelta(minutes=5),  # not NOW: suites run long
    }
    row.update(over)
    return row


async def rows(engine: AsyncEngine, table: Any, *where: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(table).where(*where))).all())


async def audits(engine: AsyncEngine, operation: str | None = None) -> list[Any]:
    where = [] if operation is None else [t.audit_log.c.operation == operation]
    return await rows(engine, t.audit_log, *where)


@asynccontextmanager
async def failing_inserts(engine: AsyncEngine, table: str) -> AsyncIterator[None]:
    """Make every INSERT into `table` raise (a plain plpgsql error, SQLSTATE P0001)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION test_refuse_insert() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refusing writes'; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE TRIGGER test_refuse_insert BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION test_refuse_insert()"
            )
        )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER IF EXISTS test_refuse_insert ON {table}"))
            await conn.execute(text("DROP FUNCTION IF EXISTS test_refuse_insert()"))
