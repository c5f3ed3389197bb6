"""The audit trail and change notifications: written inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Select, Text, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.db import json_dumps
from drivers.errors import map_db_errors

__all__ = [
    "NOTIFY_CHANNEL",
    "AuditEntry",
    "audit_cte",
    "insert_audit",
    "insert_audit_and_notify",
    "notify",
]

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
    with map_db_errors():
        await conn.execute(
            select(func.pg_notify(NOTIFY_CHANNEL, _payload(tenant_id, kind, entity_id)))
        )


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


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """A mutation's audit row and the notifications its commit publishes, for a driver to write.

    Handed to a driver whose write is ONE statement (see audit_cte), so the audit row and the
    notifications are part of that statement instead of a second one.
    """

    tenant_id: str
    actor: str
    actor_role: str
    operation: str
    request_id: str | None
    entity_type: str
    entity_id: str
    before: Any
    after: Any
    notifications: tuple[tuple[str, str], ...]

    def params(self) -> list[Any]:
        """The bind values of audit_cte, in its placeholder order."""
        return [
            self.tenant_id,
            self.actor,
            self.actor_role,
            self.operation,
            self.entity_type,
            self.entity_id,
            None if self.before is None else json_dumps(self.before),
            None if self.after is None else json_dumps(self.after),
            self.request_id,
            *(_payload(self.tenant_id, kind, nid) for kind, nid in self.notifications),
        ]


_AUDIT_INSERT = (
    "audit AS (INSERT INTO audit_log (tenant_id, actor, actor_role, operation, entity_type, "
    "entity_id, before, after, request_id) SELECT ${0}, ${1}, ${2}, ${3}, ${4}, ${5}, "
    "${6}::jsonb, ${7}::jsonb, ${8} FROM {source} RETURNING id)"
)


def audit_cte(first: int, notifications: int, source: str) -> tuple[str, str]:
    """SQL to append an AuditEntry to a one-statement write: (CTE, select-list fragment).

    The CTE inserts the audit row once per row of `source` (a CTE of the write that yields
    exactly one row when the write happened and none when it did not), with placeholders
    $first.. in AuditEntry.params() order. The select-list fragment holds the pg_notify calls;
    the caller selects them FROM its rows joined with `audit`, so they run once, left to right,
    and only when the row was written. A statement in autocommit mode is its own transaction:
    the write, the audit row and the notifications commit (or fail) together.
    """
    slots = [f"{first + i}" for i in range(9)]
    cte = _AUDIT_INSERT.format(*slots, source=source)
    calls = [f"pg_notify('{NOTIFY_CHANNEL}', ${first + 9 + i}::text)" for i in range(notifications)]
    return cte, ", ".join(calls)
