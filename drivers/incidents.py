"""Incident reads and lifecycle writes (DOMAIN.md §1.6-1.7, §3.11)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import audit
from drivers import tables as t
from drivers.db import json_dumps
from drivers.errors import NotFound, StaleState, map_db_errors
from drivers.mapping import INCIDENT, INCIDENT_EVENT, INCIDENT_EVIDENCE, INCIDENT_LOADED
from drivers.one_statement import StatementConnection
from drivers.records import (
    IncidentDerivedRecord,
    IncidentEventRecord,
    IncidentEvidenceRecord,
    IncidentRecord,
)
from drivers.rules.incidents import SIGNATURE_VERSION, recurrence_signature

__all__ = [
    "add_event_touching_incident",
    "claim_stale_incident",
    "fetch_derived_by_ids",
    "fetch_incident_for_update",
    "fetch_recurrence_group",
    "insert_event",
    "insert_evidence",
    "insert_incident",
    "new_id",
    "set_postmortem_stub",
    "update_incident_acknowledged",
    "update_incident_resolved",
]

_inc = t.incidents


async def fetch_derived_by_ids(
    conn: AsyncConnection, *, tenant_id: str, ids: Sequence[str]
) -> dict[str, IncidentDerivedRecord]:
    """The §1.18 derived values of many incidents in one statement, by incident id."""
    stmt = select(
        _inc.c.id,
        *(derived.expr for derived in INCIDENT_LOADED.fields.values()),
    ).where(_inc.c.tenant_id == tenant_id, _inc.c.id.in_(list(ids)))
    with map_db_errors():
        result = await conn.execute(stmt)
    return {row[0]: IncidentDerivedRecord(*row[1:]) for row in result}


async def fetch_recurrence_group(
    conn: AsyncConnection, *, tenant_id: str, signature: str, limit: int
) -> list[IncidentRecord]:
    """The tenant's incidents with this recurrence_signature, newest first (§3.11)."""
    stmt = (
        select(*INCIDENT.columns)
        .where(_inc.c.tenant_id == tenant_id, _inc.c.recurrence_signature == signature)
        .order_by(_inc.c.created_at.desc(), _inc.c.id.desc())
        .limit(limit)
    )
    with map_db_errors():
        result = await conn.execute(stmt)
    return [INCIDENT.record(*row) for row in result]


async def set_postmortem_stub(
    conn: AsyncConnection, *, tenant_id: str, incident_id: str, artifact_id: str, now: datetime
) -> IncidentRecord | None:
    """Give an incident without one its postmortem artifact id; None if it already has one."""
    stmt = (
        update(_inc)
        .where(
            _inc.c.tenant_id == tenant_id,
            _inc.c.id == incident_id,
            _inc.c.postmortem_artifact_id.is_(None),
        )
        .values(postmortem_artifact_id=artifact_id, updated_at=now)
        .returning(*INCIDENT.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else INCIDENT.record(*row)


async def fetch_incident_for_update(
    conn: AsyncConnection, *, tenant_id: str, incident_id: str
) -> IncidentRecord:
    """Lock one incident of the tenant for a state change, or raise NotFound."""
    stmt = (
        select(*INCIDENT.columns)
        .where(_inc.c.tenant_id == tenant_id, _inc.c.id == incident_id)
        .with_for_update()
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("Incident", incident_id)
    return INCIDENT.record(*row)


async def _guarded_update(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    incident_id: str,
    expected: tuple[str, ...],
    values: dict[str, Any],
) -> IncidentRecord:
    stmt = (
        update(_inc)
        .where(
            _inc.c.tenant_id == tenant_id,
            _inc.c.id == incident_id,
            _inc.c.status.in_(expected),
        )
        .values(**values)
        .returning(*INCIDENT.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise StaleState(f"incident {incident_id} is no longer in {'/'.join(expected)}")
    return INCIDENT.record(*row)


async def update_incident_acknowledged(
    conn: AsyncConnection, *, tenant_id: str, incident_id: str, actor: str, now: datetime
) -> IncidentRecord:
    """Move an OPEN incident to ACKNOWLEDGED."""
    return await _guarded_update(
        conn,
        tenant_id=tenant_id,
        incident_id=incident_id,
        expected=("OPEN",),
        values={
            "status": "ACKNOWLEDGED",
            "acknowledged_at": now,
            "acknowledged_by": actor,
            "updated_at": now,
        },
    )


async def update_incident_resolved(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    incident_id: str,
    actor: str,
    now: datetime,
    started_at: datetime,
    method: str,
    notes: str | None,
    resolution_type: str | None,
    summary: str | None,
    postmortem_artifact_id: str | None,
) -> IncidentRecord:
    """Move an OPEN or ACKNOWLEDGED incident to RESOLVED with its resolution fields.

    `postmortem_artifact_id` None keeps the stored one (a stub made while the incident was open
    survives its resolution; docs/decisions.md).
    """
    artifact = (
        {} if postmortem_artifact_id is None else {"postmortem_artifact_id": postmortem_artifact_id}
    )
    return await _guarded_update(
        conn,
        tenant_id=tenant_id,
        incident_id=incident_id,
        expected=("OPEN", "ACKNOWLEDGED"),
        values={
            "status": "RESOLVED",
            "resolved_at": now,
            "ended_at": now,
            "resolved_by": actor,
            "duration_seconds": int((now - started_at).total_seconds()),
            "resolution_method": method,
            "resolution_notes": notes,
            "resolution_type": resolution_type,
            "resolution_summary": summary,
            **artifact,
            "updated_at": now,
        },
    )


async def insert_event(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    incident_id: str,
    event_type: str,
    description: str,
    data: dict[str, Any],
    now: datetime,
) -> IncidentEventRecord:
    """Append one timeline event to an incident."""
    stmt = (
        insert(t.incident_events)
        .values(
            tenant_id=tenant_id,
            incident_id=incident_id,
            event_type=event_type,
            description=description,
            data=data,
            created_at=now,
        )
        .returning(*INCIDENT_EVENT.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return INCIDENT_EVENT.record(*row)


def new_id() -> str:
    """A row id in the form of the tables' default (gen_random_uuid()::text), made here.

    Why: a one-statement write needs the id before the statement runs, to put it into the audit
    row's document and the notification payload that travel in the same statement.
    """
    return str(uuid.uuid4())


def _add_event_sql(mode: audit.NotifyMode) -> str:
    """AddIncidentEvent's whole write as ONE statement; see add_event_touching_incident."""
    inc_cols = ", ".join(c.name for c in INCIDENT.columns)
    ev_cols = ", ".join(c.name for c in INCIDENT_EVENT.columns)
    audit_sql, notifies = audit.audit_cte(
        8, 2, "ev", mode=mode, incident="(SELECT to_jsonb(inc) FROM inc)"
    )
    return (
        "WITH inc AS (UPDATE incidents SET updated_at = $3::timestamptz "  # noqa: S608 - constants
        f"WHERE tenant_id = $1 AND id = $2 RETURNING {inc_cols}), "
        "ev AS (INSERT INTO incident_events "
        "(id, tenant_id, incident_id, event_type, description, data, created_at) "
        "SELECT $4::text, $1, inc.id, $5::text, $6::text, $7::jsonb, $3::timestamptz FROM inc "
        f"RETURNING {ev_cols}), "
        f"{audit_sql} "
        f"SELECT ev.*, inc.*, {notifies} FROM ev, inc, audit"
    )


_ADD_EVENT_SQL: dict[audit.NotifyMode, str] = {
    "outbox": _add_event_sql("outbox"),
    "direct": _add_event_sql("direct"),
}
_EVENT_WIDTH = len(INCIDENT_EVENT.columns)
_INCIDENT_END = _EVENT_WIDTH + len(INCIDENT.columns)


async def add_event_touching_incident(
    conn: StatementConnection,
    *,
    tenant_id: str,
    event: IncidentEventRecord,
    entry: audit.AuditEntry,
) -> tuple[IncidentEventRecord, IncidentRecord]:
    """Touch the incident, append `event`, its audit row and notifications: ONE statement.

    The UPDATE takes the incident's row lock and bumps updated_at; the event is inserted only
    from the row it returned and the audit row only from the event, and the notifications are
    selected from that joined row, so a missing or foreign-tenant incident writes and publishes
    nothing and raises NotFound. Run on an AUTOCOMMIT connection the statement is its own
    transaction (one round trip, no BEGIN/COMMIT); inside a transaction it works the same. The
    SQL text is built once and sent as is (one_statement.py): no per-call compilation. `event`
    carries the values to insert (id from new_id()); the returned records are the stored rows.
    """
    if len(entry.notifications) != 2:
        raise ValueError("the statement publishes exactly two notifications")
    params = (
        tenant_id,
        event.incident_id,
        event.created_at,
        event.id,
        event.event_type,
        event.description,
        json_dumps(event.data),
        *entry.params(),
    )
    with map_db_errors():
        row = await conn.first_row(_ADD_EVENT_SQL[entry.mode], params)
    if row is None:
        raise NotFound("Incident", event.incident_id)
    return (
        INCIDENT_EVENT.record(*row[:_EVENT_WIDTH]),
        INCIDENT.record(*row[_EVENT_WIDTH:_INCIDENT_END]),
    )


async def insert_incident(
    conn: AsyncConnection, *, tenant_id: str, values: dict[str, Any]
) -> IncidentRecord:
    """Insert one incident (the caller supplies every column it sets) and return it.

    Every write path comes through here, so this is where the §8.4 recurrence signature is set
    (unless the caller supplies one).
    """
    if values.get("recurrence_signature") is None:
        values = values | {
            "recurrence_signature": recurrence_signature(
                values["trigger_type"], values.get("category"), values.get("error_code")
            ),
            "signature_version": SIGNATURE_VERSION,
        }
    stmt = insert(_inc).values(tenant_id=tenant_id, **values).returning(*INCIDENT.columns)
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return INCIDENT.record(*row)


async def insert_evidence(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    incident_id: str,
    evidence_type: str,
    payload: Any,
    now: datetime,
    recovery_executed: bool = False,
) -> IncidentEvidenceRecord:
    """Append one evidence row to an incident."""
    stmt = (
        insert(t.incident_evidence)
        .values(
            tenant_id=tenant_id,
            incident_id=incident_id,
            evidence_type=evidence_type,
            recovery_executed=recovery_executed,
            payload=payload,
            created_at=now,
        )
        .returning(*INCIDENT_EVIDENCE.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).one()
    return INCIDENT_EVIDENCE.record(*row)


async def claim_stale_incident(
    conn: AsyncConnection, *, cutoff: datetime
) -> tuple[str, IncidentRecord] | None:
    """Lock one OPEN incident (any tenant) not updated since `cutoff`, skipping locked rows.

    SKIP LOCKED lets every replica run the job at once without two of them claiming one row;
    FOR UPDATE re-checks the WHERE on the newest row version, so an incident that an
    aggregated signal just refreshed is not claimed.
    """
    stmt = (
        select(_inc.c.tenant_id, *INCIDENT.columns)
        .where(_inc.c.status == "OPEN", _inc.c.updated_at < cutoff)
        .order_by(_inc.c.updated_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    return row[0], INCIDENT.record(*row[1:])
