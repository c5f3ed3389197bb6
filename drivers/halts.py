"""Budget-enforcement halts (DOMAIN.md §3.5): HALTED runs stopped by the hard budget limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import map_db_errors
from drivers.rules.budget import HALT_MARKER

__all__ = ["HaltedRun", "fetch_budget_halts"]

_run = t.runs


@dataclass(frozen=True, slots=True)
class HaltedRun:
    run_id: str
    error_message: str | None
    plan_step_count: int | None
    completed_step_count: int
    completed_at: datetime | None


async def fetch_budget_halts(
    conn: AsyncConnection, *, tenant_id: str, limit: int
) -> list[HaltedRun]:
    """Up to `limit` HALTED runs whose error mentions the hard budget limit, newest first."""
    stmt = (
        select(
            _run.c.id,
            _run.c.error_message,
            _run.c.plan_step_count,
            _run.c.completed_step_count,
            _run.c.completed_at,
        )
        .where(
            _run.c.tenant_id == tenant_id,
            _run.c.status == "HALTED",
            _run.c.error_message.contains(HALT_MARKER, autoescape=True),
        )
        .order_by(_run.c.completed_at.desc().nulls_last(), _run.c.id.desc())
        .limit(limit)
    )
    with map_db_errors():
        result = await conn.execute(stmt)
    return [HaltedRun(str(r[0]), r[1], r[2], int(r[3]), r[4]) for r in result]
