"""Policy proposals: drafts created from lessons (DOMAIN.md §1.10)."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import map_db_errors
from drivers.mapping import POLICY_PROPOSAL
from drivers.records import PolicyProposalRecord

__all__ = ["insert_proposal"]


async def insert_proposal(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    title: str,
    source_type: str,
    source_id: str,
    created_by: str,
) -> PolicyProposalRecord:
    """Insert one DRAFT proposal."""
    stmt = (
        insert(t.policy_proposals)
        .values(
            tenant_id=tenant_id,
            title=title,
            status="DRAFT",
            source_type=source_type,
            source_id=source_id,
            created_by=created_by,
        )
        .returning(*POLICY_PROPOSAL.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return POLICY_PROPOSAL.record(*row)
