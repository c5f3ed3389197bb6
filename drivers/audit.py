"""The audit trail and change notifications: written inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Select, Text, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import map_db_errors

__all__ = ["NOTIFY_CHANNEL", "insert_audit", "insert_audit_and_notify", "notify"]

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


def _payload(tenant_id: str, kind: str, entity_id: str) -> str:
    return orjson.dumps({"tenant_id": tenant_id, "kind": kind, "id": entity_id}).decode()


async def insert_audit_and_notify(
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
    notifications: Sequence[tuple[str, str]],
) -> None:
    """Append one audit_log row and queue every notification in ONE statement.

    Why: a unit of work ends with its audit row and its notifications; sent one by one they
    cost a round trip each while the transaction holds its row locks. The INSERT is a
    data-modifying CTE returning exactly one row, and the pg_notify calls sit in the select
    list of that row, evaluated left to right, so each is sent exactly once and in order;
    PostgreSQL still delivers them only on commit.
    """
    params: dict[str, Any] = {
        "p_tenant_id": tenant_id,
        "p_actor": actor,
        "p_actor_role": actor_role,
        "p_operation": operation,
        "p_entity_type": entity_type,
        "p_entity_id": entity_id,
        "p_before": before,
        "p_after": after,
        "p_request_id": request_id,
    }
    for i, (kind, nid) in enumerate(notifications):
        params[f"n{i}"] = _payload(tenant_id, kind, nid)
    with map_db_errors():
        await conn.execute(_audit_and_notify(len(notifications)), params)


@lru_cache(maxsize=16)
def _audit_and_notify(count: int) -> Select[Any]:
    """The statement for `count` notifications, built once per count (values are bind params)."""
    a = t.audit_log
    audit = (
        insert(a)
        .values(
            {c: bindparam(f"p_{c.name}", type_=c.type) for c in a.c if c.name in _AUDIT_COLUMNS}
        )
        .returning(a.c.id)
        .cte("audit")
    )
    notifies = [
        func.pg_notify(NOTIFY_CHANNEL, bindparam(f"n{i}", type_=Text)) for i in range(count)
    ]
    return select(audit.c.id, *notifies)


_AUDIT_COLUMNS = frozenset(
    (
        "tenant_id",
        "actor",
        "actor_role",
        "operation",
        "entity_type",
        "entity_id",
        "before",
        "after",
        "request_id",
    )
)
