"""LLM failure facts (DOMAIN.md §1.13, §3.15): the failure row and its immutable evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import map_db_errors
from drivers.mapping import FAILURE_EVIDENCE, RUN_FAILURE
from drivers.records import FailureEvidenceRecord, RunFailureRecord

__all__ = ["insert_failure", "insert_failure_evidence"]


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
    return RunFailureRecord(*row)


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
    return FailureEvidenceRecord(*row)
