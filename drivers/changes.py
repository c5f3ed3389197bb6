"""Loading the rows a change notification names, many ids per statement, tenant-filtered."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.util import ClauseAdapter

from drivers import reads
from drivers import tables as t
from drivers.audit import SNAPSHOT_TABLES
from drivers.errors import map_db_errors
from drivers.mapping import CIRCUIT_BREAKER, INCIDENT, INCIDENT_EVENT, Entity, Relation
from drivers.records import IncidentEventRecord, IncidentRecord

__all__ = ["fetch_events", "fetch_incidents", "fetch_snapshot"]

_ENTITIES: dict[str, Entity[Any]] = {"circuit_breakers": CIRCUIT_BREAKER, "incidents": INCIDENT}

_INCIDENT_BY_ID = Relation(INCIDENT, "id", t.incidents.c.id, "one")
_EVENT_BY_ID = Relation(INCIDENT_EVENT, "id", t.incident_events.c.id, "one")


async def fetch_incidents(
    conn: AsyncConnection, *, tenant_id: str, ids: Sequence[str]
) -> dict[str, IncidentRecord]:
    """The tenant's incidents with these ids (another tenant's id is simply absent)."""
    found = await reads.fetch_by_keys(conn, _INCIDENT_BY_ID, tenant_id=tenant_id, keys=ids)
    return {key: rows[0] for key, rows in found.items()}


async def fetch_events(
    conn: AsyncConnection, *, tenant_id: str, ids: Sequence[str]
) -> dict[str, IncidentEventRecord]:
    """The tenant's timeline events with these ids."""
    found = await reads.fetch_by_keys(conn, _EVENT_BY_ID, tenant_id=tenant_id, keys=ids)
    return {key: rows[0] for key, rows in found.items()}


async def fetch_snapshot(conn: AsyncConnection, *, tenant_id: str, kind: str, seq: int) -> Any:
    """The record of one change as its transaction committed it; None if it has no snapshot.

    ONE statement: the change_snapshots row of `seq` (tenant-filtered), turned back into the
    table's row type by jsonb_populate_record and read with the entity's own column
    expressions, so the record equals what a read of the row at that commit returned.
    Columns derived from other rows (a breaker's opened_at) are read as they are now.
    """
    table = SNAPSHOT_TABLES.get(kind)
    if table is None:
        return None
    entity = _ENTITIES[table]
    with map_db_errors():
        row = (
            await conn.execute(_snapshot_select(table), {"tenant_id": tenant_id, "seq": seq})
        ).first()
    return None if row is None else entity.record(*row)


@cache
def _snapshot_select(table: str) -> Select[Any]:
    """SELECT <entity columns> FROM change_snapshots, jsonb_populate_record(...) AS <row>."""
    entity = _ENTITIES[table]
    s = t.change_snapshots
    row = (
        func.jsonb_populate_record(literal_column(f"NULL::{table}"), s.c.snapshot)
        .table_valued(*(c.name for c in entity.table.c))
        .alias("snap")
    )
    # Only the entity table's own columns move to the snapshot (a subquery's other tables stay).
    adapter = ClauseAdapter(
        row, include_fn=lambda c: getattr(c, "table", None) is entity.table, adapt_on_names=True
    )
    columns = [adapter.traverse(c) for c in entity.columns]
    return (
        select(*columns)
        .select_from(s.join(row, literal_column("true")))
        .where(s.c.seq == bindparam("seq"), s.c.tenant_id == bindparam("tenant_id"))
    )
