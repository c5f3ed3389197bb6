"""The audit trail and change notifications: written inside the caller's transaction."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import map_db_errors

__all__ = ["NOTIFY_CHANNEL", "insert_audit", "notify"]

# One channel for every change; the payload says the tenant, kind and id (DOMAIN.md §5).
NOTIFY_CHANNEL = "gateway_changes"


async def insert_audit(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    actor: str,
    actor_role: str,
    operation: str,
    entity_type: str,
    entity_id: str,
    before: Any,
    after: Any,
    request_id: str | None,
) -> None:
    """Append one audit_log row."""
    with map_db_errors():
        await conn.execute(
            insert(t.audit_log).values(
                tenant_id=tenant_id,
                actor=actor,
                actor_role=actor_role,
                operation=operation,
                entity_type=entity_type,
                entity_id=entity_id,
                before=before,
                after=after,
                request_id=request_id,
            )
        )


async def notify(conn: AsyncConnection, *, tenant_id: str, kind: str, entity_id: str) -> None:
    """Queue a change notification; PostgreSQL delivers it only if the transaction commits."""
    payload = orjson.dumps({"tenant_id": tenant_id, "kind": kind, "id": entity_id}).decode()
    with map_db_errors():
        await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, payload)))
