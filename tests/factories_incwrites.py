"""Row builders for runs, steps, violations and failures (incident-writes tests)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t
from drivers.audit import NOTIFY_CHANNEL
from drivers.rules.incidents import window_start
from tests.factories import NOW


def _id() -> str:
    return str(uuid.uuid4())


def run_row(tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "agent_id": "agent-7",
        "project_id": "proj-1",
        "status": "RUNNING",
        "started_at": NOW - timedelta(minutes=10),
        "input_tokens": 100,
        "output_tokens": 50,
        "estimated_cost_usd": Decimal("0.120000"),
        "created_at": NOW - timedelta(minutes=10),
        "updated_at": NOW - timedelta(minutes=10),
    }
    row.update(over)
    return row


def step_row(run_id: str, index: int, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "step_index": index,
        "tenant_id": tenant,
        "step_type": "LLM_CALL",
        "tokens": 10 * (index + 1),
        "cost_cents": Decimal("1.5000"),
        "duration_ms": 100,
        "status": "OK",
    }
    row.update(over)
    return row


def violation_row(run_id: str, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "run_id": run_id,
        "policy_id": f"pol-{_id()[:8]}",
        "violated_rule": "max_tokens",
        "severity": "HIGH",
    }
    row.update(over)
    return row


def failure_row(run_id: str, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "run_id": run_id,
        "failure_type": "TIMEOUT",
        "error_code": "E_TIMEOUT",
    }
    row.update(over)
    return row


def evidence_row(incident_id: str, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "incident_id": incident_id,
        "evidence_type": "POLICY_VIOLATION",
        "payload": {"k": "v"},
    }
    row.update(over)
    return row


async def all_rows(engine: AsyncEngine, table: Any) -> list[Any]:
    """Every row of a table (tables start empty in every test)."""
    async with engine.connect() as conn:
        return list((await conn.execute(select(table))).all())


async def count_rows(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def audit_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(t.audit_log).order_by(t.audit_log.c.id))).all())


async def away_from_window_edge() -> None:
    """Wait until at least 5 s remain in the current 300 s window (keys must not split)."""
    now = datetime.now(UTC)
    left = (window_start(now) + timedelta(seconds=300) - now).total_seconds()
    if left < 5:
        await asyncio.sleep(left + 0.1)


@asynccontextmanager
async def refusing(engine, table: str) -> AsyncIterator[None]:
    """Make every INSERT into `table` fail while the block runs."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refusing writes'; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE TRIGGER test_refuse BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION test_refuse()"
            )
        )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER IF EXISTS test_refuse ON {table}"))
            await conn.execute(text("DROP FUNCTION IF EXISTS test_refuse()"))


def published(received: list[dict[str, Any]]) -> Any:
    """A LISTEN callback that appends each change without its `seq` and `xid`.

    (drivers/audit.payload_sql: seq names the change's snapshot and keeps equal changes of one
    batch apart, xid is the writer's transaction; tests compare the rest.)
    """

    def on_notify(*args: Any) -> None:
        note = json.loads(args[3])
        assert isinstance(note.pop("seq"), int) and isinstance(note.pop("xid"), int), args[3]
        received.append(note)

    return on_notify


@asynccontextmanager
async def listening(database_url: str) -> AsyncIterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []
    listener = await asyncpg.connect(database_url)
    await listener.add_listener(NOTIFY_CHANNEL, published(received))
    try:
        yield received
    finally:
        await listener.close()


async def wait_for(received: list[Any], n: int) -> None:
    for _ in range(200):
        if len(received) >= n:
            return
        await asyncio.sleep(0.01)
