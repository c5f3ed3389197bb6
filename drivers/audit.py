"""The audit trail and change notifications: written inside the caller's transaction.

A change notification leaves the transaction one of two ways (NOTIFY_MODE, README.md):
- "outbox" (the default): a change_outbox row, which the one publisher (gateway/publisher.py)
  sends with pg_notify after the commit. The writer's commit does not take PostgreSQL's global
  NOTIFY lock, so commits of concurrent writers are flushed together again.
- "direct": pg_notify in the transaction itself; no publisher hop, but every writer's commit
  queues on that lock (docs/decisions.md § Change notifications through an outbox).
The mode is an execution option of the engine (NOTIFY_MODE_OPTION, set by the gateway from its
settings), so every writer of that engine - unit of work, jobs, one-statement drivers - follows
it without being handed it; an engine without the option writes to the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import orjson
from sqlalchemy import ARRAY, Select, Text, bindparam, func, insert, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.db import json_dumps
from drivers.errors import map_db_errors

__all__ = [
    "NOTIFY_CHANNEL",
    "NOTIFY_MODE_OPTION",
    "AuditEntry",
    "NotifyMode",
    "audit_cte",
    "insert_audit",
    "insert_audit_and_notify",
    "notify",
    "notify_mode",
    "payload",
]

# One channel for every change; the payload says the tenant, kind and id (DOMAIN.md §5).
NOTIFY_CHANNEL = "gateway_changes"

NotifyMode = Literal["outbox", "direct"]
# The engine execution option that holds the NotifyMode of its connections.
NOTIFY_MODE_OPTION = "gateway_notify_mode"


def notify_mode(conn: AsyncConnection) -> NotifyMode:
    """How this connection's transactions publish changes: the engine's option, else outbox."""
    direct = conn.engine.get_execution_options().get(NOTIFY_MODE_OPTION) == "direct"
    return "direct" if direct else "outbox"


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
    """Queue a change notification; it is published only if the transaction commits."""
    if notify_mode(conn) == "direct":
        stmt: Any = select(func.pg_notify(NOTIFY_CHANNEL, payload(tenant_id, kind, entity_id)))
    else:
        stmt = insert(t.change_outbox).values(tenant_id=tenant_id, kind=kind, entity_id=entity_id)
    with map_db_errors():
        await conn.execute(stmt)


def payload(tenant_id: str, kind: str, entity_id: str) -> str:
    """The NOTIFY payload of one change (the outbox publisher adds "seq": drivers/outbox.py)."""
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
    data-modifying CTE returning exactly one row. Direct mode: the pg_notify calls sit in the
    select list of that row, evaluated left to right, so each is sent exactly once and in
    order; PostgreSQL still delivers them only on commit. Outbox mode: a second CTE inserts
    one change_outbox row per notification from unnest(kinds, ids), in order, so their ids
    (the publisher's order) follow the order of the notify() calls.
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
    outbox = notify_mode(conn) == "outbox"
    if outbox:
        params["n_kinds"] = [kind for kind, _ in notifications]
        params["n_ids"] = [nid for _, nid in notifications]
        count = 1 if notifications else 0  # one outbox CTE, whatever the number of rows
    else:
        for i, (kind, nid) in enumerate(notifications):
            params[f"n{i}"] = payload(tenant_id, kind, nid)
        count = len(notifications)
    with map_db_errors():
        await conn.execute(_audit_and_notify(count, outbox), params)


@lru_cache(maxsize=16)
def _audit_and_notify(count: int, outbox: bool) -> Select[Any]:
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
    if not outbox:
        notifies = [
            func.pg_notify(NOTIFY_CHANNEL, bindparam(f"n{i}", type_=Text)) for i in range(count)
        ]
        return select(audit.c.id, *notifies)
    stmt = select(audit.c.id)
    if count:
        o = t.change_outbox
        changes = (
            func.unnest(
                bindparam("n_kinds", type_=ARRAY(Text)), bindparam("n_ids", type_=ARRAY(Text))
            )
            .table_valued("kind", "entity_id")
            .render_derived(name="n")
        )
        rows = select(bindparam("p_tenant_id", type_=Text), changes.c.kind, changes.c.entity_id)
        rows = rows.select_from(audit.join(changes, true()))
        written = insert(o).from_select(["tenant_id", "kind", "entity_id"], rows).cte("changes")
        stmt = stmt.add_cte(written)
    return stmt


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
    notifications are part of that statement instead of a second one. `mode` is how the
    notifications leave (the unit of work's connection's notify_mode).
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
    mode: NotifyMode = "outbox"

    def params(self) -> list[Any]:
        """The bind values of audit_cte(mode=self.mode), in its placeholder order."""
        audit_values = [
            self.tenant_id,
            self.actor,
            self.actor_role,
            self.operation,
            self.entity_type,
            self.entity_id,
            None if self.before is None else json_dumps(self.before),
            None if self.after is None else json_dumps(self.after),
            self.request_id,
        ]
        if self.mode == "outbox":
            kinds = [kind for kind, _ in self.notifications]
            return [*audit_values, kinds, [nid for _, nid in self.notifications]]
        return [
            *audit_values,
            *(payload(self.tenant_id, kind, nid) for kind, nid in self.notifications),
        ]


_AUDIT_INSERT = (
    "audit AS (INSERT INTO audit_log (tenant_id, actor, actor_role, operation, entity_type, "
    "entity_id, before, after, request_id) SELECT ${0}, ${1}, ${2}, ${3}, ${4}, ${5}, "
    "${6}::jsonb, ${7}::jsonb, ${8} FROM {source} RETURNING id)"
)
_OUTBOX_INSERT = (
    "changes AS (INSERT INTO change_outbox (tenant_id, kind, entity_id) "
    "SELECT ${0}, n.kind, n.entity_id FROM audit, unnest(${9}::text[], ${10}::text[]) "
    "AS n(kind, entity_id))"
)


def audit_cte(first: int, notifications: int, source: str, *, mode: NotifyMode) -> tuple[str, str]:
    """SQL to append an AuditEntry to a one-statement write: (CTEs, select-list fragment).

    The CTE inserts the audit row once per row of `source` (a CTE of the write that yields
    exactly one row when the write happened and none when it did not), with placeholders
    $first.. in AuditEntry.params() order. The caller selects the fragment FROM its rows joined
    with `audit`. Direct mode: the fragment holds the pg_notify calls, so they run once, left
    to right, and only when the row was written. Outbox mode: a second CTE inserts the
    change_outbox rows from `audit` (none when nothing was written; a data-modifying CTE runs
    to completion unread) and the fragment is only the audit row's id. A statement in
    autocommit mode is its own transaction: the write, the audit row and the notifications
    commit (or fail) together.
    """
    slots = [f"{first + i}" for i in range(11)]
    cte = _AUDIT_INSERT.format(*slots, source=source)
    if mode == "outbox":
        return f"{cte}, {_OUTBOX_INSERT.format(*slots)}", "audit.id"
    calls = [f"pg_notify('{NOTIFY_CHANNEL}', ${first + 9 + i}::text)" for i in range(notifications)]
    return cte, ", ".join(calls)
