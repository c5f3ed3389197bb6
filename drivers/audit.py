"""The audit trail and change notifications: written inside the caller's transaction.

A change notification leaves the transaction one of two ways (NOTIFY_MODE, README.md):
- "outbox" (the default): a change_outbox row, which the one publisher (gateway/publisher.py)
  sends with pg_notify after the commit. The writer's commit does not take PostgreSQL's global
  NOTIFY lock, so commits of concurrent writers are flushed together again.
- "direct": pg_notify in the transaction itself; no publisher hop, but every writer's commit
  queues on that lock (docs/decisions.md § Change notifications through an outbox).
Either way a change of a row that changes in place (SNAPSHOT_TABLES) carries that row as this
transaction commits it: subscribers get each change's own state, not whatever the row holds
when they read it (docs/decisions.md § Each change carries its row).
The mode is an execution option of the engine (NOTIFY_MODE_OPTION, set by the gateway from its
settings), so every writer of that engine - unit of work, jobs, one-statement drivers - follows
it without being handed it; an engine without the option writes to the outbox. The gateway's
plain pool for one-statement writes carries the same setting itself (drivers/one_statement.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.db import json_dumps
from drivers.errors import map_db_errors

__all__ = [
    "NOTIFY_CHANNEL",
    "NOTIFY_MODE_OPTION",
    "SNAPSHOT_TABLES",
    "AuditEntry",
    "NotifyMode",
    "audit_and_notify_sql",
    "audit_cte",
    "changes_sql",
    "insert_audit",
    "insert_audit_and_notify",
    "notify",
    "notify_mode",
    "payload_sql",
    "snapshot_sql",
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
    """Queue a change notification; it is published only if the transaction commits.

    Call it after the change's write: the changed row's snapshot is read by this statement.
    """
    ctes, fragment = changes_sql("$1", "$2", "$3", source=None, mode=notify_mode(conn))
    with map_db_errors():
        await conn.exec_driver_sql(
            f"WITH {ctes} SELECT {fragment}", (tenant_id, [kind], [entity_id])
        )


# Kinds whose row changes in place: their notifications carry the row as it was committed (a
# snapshot, drivers/outbox.py), not a reference to whatever the row holds when it is read.
SNAPSHOT_TABLES: dict[str, str] = {
    "BREAKER_CHANGED": "circuit_breakers",
    **dict.fromkeys(
        (
            "INCIDENT_CREATED",
            "INCIDENT_UPDATED",
            "INCIDENT_ESCALATED",
            "INCIDENT_ACKNOWLEDGED",
            "INCIDENT_RESOLVED",
        ),
        "incidents",
    ),
}
# The payload of one change, as SQL (format's %s of a bigint is its digits; to_json escapes).
_PAYLOAD = (
    'format(\'{{"tenant_id":%s,"kind":%s,"id":%s,"seq":%s,"xid":%s}}\', '
    "to_json({tenant}::text), to_json({kind}::text), to_json({entity}::text), {seq}, {xid})"
)
# The writing transaction's id, as the snapshot of a reader compares it (resolvers/breakers.py).
CURRENT_XID = "pg_current_xact_id()::text::bigint"


def payload_sql(tenant: str, kind: str, entity: str, seq: str, xid: str) -> str:
    """The SQL expression of one notification's payload: {"tenant_id","kind","id","seq","xid"}.

    "seq" keeps equal changes of one transaction apart (PostgreSQL folds identical payloads)
    and names the change's snapshot; "xid" is the writing transaction's id.
    """
    return _PAYLOAD.format(tenant=tenant, kind=kind, entity=entity, seq=seq, xid=xid)


def snapshot_sql(tenant: str, kind: str, entity: str, *, incident: str | None = None) -> str:
    """SQL of the changed row's jsonb (to_jsonb of the table row), null for other kinds.

    Evaluated after the change's write in the same transaction, so it is the row this
    transaction commits (the row stays locked by it until then). `incident` replaces the
    incident lookup, for a one-statement write whose UPDATE is a CTE the lookup cannot see.
    """
    whens = []
    for table in sorted(set(SNAPSHOT_TABLES.values())):
        kinds = ", ".join(f"'{k}'" for k, v in SNAPSHOT_TABLES.items() if v == table)
        key = entity
        if table == "circuit_breakers":  # a malformed id has no row (and must not fail the cast)
            key = f"(CASE WHEN {entity} ~ '^[0-9]{{1,18}}$' THEN {entity}::bigint END)"
        row = (
            f"(SELECT to_jsonb(s) FROM {table} AS s "  # noqa: S608 - constants and SQL
            f"WHERE s.tenant_id = {tenant} AND s.id = {key})"
        )
        if table == "incidents" and incident is not None:
            row = incident
        whens.append(f"WHEN {kind} IN ({kinds}) THEN {row}")
    return f"CASE {' '.join(whens)} END"


def changes_sql(
    tenant: str,
    kinds: str,
    ids: str,
    *,
    source: str | None,
    mode: NotifyMode,
    incident: str | None = None,
) -> tuple[str, str]:
    """CTEs that publish the changes (kinds[i], ids[i]) once per row of `source`, and a fragment.

    `tenant`, `kinds` and `ids` are SQL (placeholders: text, text[], text[]). The caller puts the
    fragment into its statement's select list. Each change gets a seq from the outbox's sequence
    (in the changes' order) and, for a kind of SNAPSHOT_TABLES, a change_snapshots row under it
    (UNLOGGED: no WAL). Outbox mode: one change_outbox row per change with id = seq (the
    publisher sends them after the commit); the fragment is `1`. Direct mode: the fragment sends
    the pg_notify calls in the changes' order (a scalar subquery: evaluated once, and only if
    the statement yields a row); PostgreSQL delivers them at the commit.
    """
    frm = f"{source}, " if source else ""
    snap = snapshot_sql(tenant, "n.kind", "n.entity_id", incident=incident)
    cte = (
        "changes AS (SELECT nextval(pg_get_serial_sequence('change_outbox', 'id')) AS seq, "  # noqa: S608
        f"n.kind, n.entity_id, n.ord, {snap} AS snapshot "
        f"FROM {frm}unnest({kinds}::text[], {ids}::text[]) "
        "WITH ORDINALITY AS n(kind, entity_id, ord)), "
        "snapshots AS (INSERT INTO change_snapshots (seq, tenant_id, kind, entity_id, snapshot) "
        f"SELECT seq, {tenant}, kind, entity_id, snapshot FROM changes WHERE snapshot IS NOT NULL)"
    )
    if mode == "outbox":
        outbox = (
            "outbox AS (INSERT INTO change_outbox (id, tenant_id, kind, entity_id) "  # noqa: S608
            f"SELECT seq, {tenant}, kind, entity_id FROM changes)"
        )
        return f"{cte}, {outbox}", "1"
    send = payload_sql(tenant, "c.kind", "c.entity_id", "c.seq", CURRENT_XID)
    fragment = (
        f"(SELECT count(pg_notify('{NOTIFY_CHANNEL}', {send})) "  # noqa: S608 - constants
        "FROM (SELECT * FROM changes ORDER BY ord) AS c)"
    )
    return cte, fragment


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
    cost a round trip each while the transaction holds its row locks. It is the last statement
    of the transaction, so each change's snapshot is the row as committed (changes_sql).
    """
    mode = notify_mode(conn)
    entry = AuditEntry(
        tenant_id=tenant_id,
        actor=actor,
        actor_role=actor_role,
        operation=operation,
        request_id=request_id,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before,
        after=after,
        notifications=tuple(notifications),
        mode=mode,
    )
    with map_db_errors():
        await conn.exec_driver_sql(
            audit_and_notify_sql(mode, bool(notifications)), tuple(entry.params())
        )


@lru_cache(maxsize=4)
def audit_and_notify_sql(mode: NotifyMode, notifications: bool) -> str:
    """insert_audit_and_notify's statement ($1.. in AuditEntry.params() order); bench uses it."""
    ctes, fragment = audit_cte(1, int(notifications), "(SELECT) AS one", mode=mode)
    return f"WITH {ctes} SELECT {fragment} FROM audit"  # noqa: S608 - constants


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
        if not self.notifications:
            return audit_values  # audit_cte(notifications=0) binds no arrays
        kinds = [kind for kind, _ in self.notifications]
        return [*audit_values, kinds, [nid for _, nid in self.notifications]]


_AUDIT_INSERT = (
    "audit AS (INSERT INTO audit_log (tenant_id, actor, actor_role, operation, entity_type, "
    "entity_id, before, after, request_id) SELECT ${0}, ${1}, ${2}, ${3}, ${4}, ${5}, "
    "${6}::jsonb, ${7}::jsonb, ${8} FROM {source} RETURNING id)"
)


def audit_cte(
    first: int,
    notifications: int,
    source: str,
    *,
    mode: NotifyMode,
    incident: str | None = None,
) -> tuple[str, str]:
    """SQL to append an AuditEntry to a one-statement write: (CTEs, select-list fragment).

    The CTE inserts the audit row once per row of `source` (a CTE of the write that yields
    exactly one row when the write happened and none when it did not), with placeholders
    $first.. in AuditEntry.params() order; the changes (changes_sql) are published once per
    audit row, so only when the write happened. The caller selects the fragment FROM its rows
    joined with `audit`. A statement in autocommit mode is its own transaction: the write, the
    audit row and the notifications commit (or fail) together. A data-modifying CTE cannot see
    the write of another CTE of its statement: a write that changes an incident in a CTE passes
    `incident`, the SQL of that row's jsonb (e.g. `(SELECT to_jsonb(inc) FROM inc)`).
    `notifications` 0 (an entry without notifications) leaves the changes and arrays out.
    """
    slots = [f"{first + i}" for i in range(11)]
    cte = _AUDIT_INSERT.format(*slots, source=source)
    if not notifications:
        return cte, "audit.id"
    changes, fragment = changes_sql(
        f"${first}", f"${first + 9}", f"${first + 10}", source="audit", mode=mode, incident=incident
    )
    return f"{cte}, {changes}", f"audit.id, {fragment}"
