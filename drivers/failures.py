"""LLM failure facts (DOMAIN.md §1.13, §3.15): the failure row and its immutable evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import map_db_errors
from drivers.mapping import FAILURE_EVIDENCE, RUN_FAILURE
from drivers.records import FailureEvidenceRecord, RunFailureRecord

__all__ = ["count_contaminating_incidents", "insert_failure", "insert_failure_evidence"]


async def insert_failure(
    conn: AsyncConnection, *, tenant_id: str, values: dict[str, Any], now: datetime
) -> RunFailureRecord:
    """Insert one run_failures row."""
    stmt = (
        insert(t.run_failures)
        .values(tenant_id=tenant_id, created_at=now, **values)
        .returning(*RUN_FAILURE.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return RUN_FAILURE.record(*row)


async def insert_failure_evidence(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    failure_id: str,
    evidence_type: str,
    data: Any,
    now: datetime,
) -> FailureEvidenceRecord:
    """Insert one immutable evidence row (the database refuses later UPDATEs)."""
    stmt = (
        insert(t.failure_evidence)
        .values(
            tenant_id=tenant_id,
            failure_id=failure_id,
            evidence_type=evidence_type,
            evidence_data=data,
            is_immutable=True,
            created_at=now,
        )
        .returning(*FAILURE_EVIDENCE.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return FAILURE_EVIDENCE.record(*row)


async def count_contaminating_incidents(
    conn: AsyncConnection, *, tenant_id: str, run_id: str
) -> int:
    """Count the tenant's non-LLM_FAILURE incidents whose trigger_value names the run (§3.15)."""
    inc = t.incidents
    needle = "run_id=" + run_id
    stmt = select(func.count()).where(
        inc.c.tenant_id == tenant_id,
        inc.c.trigger_type != "LLM_FAILURE",
        # strpos, not LIKE: run ids may hold % or _.
        func.strpos(inc.c.trigger_value, needle) > 0,
    )
    with map_db_errors():
        return int((await conn.execute(stmt)).scalar_one())
