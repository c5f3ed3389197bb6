"""Loading the rows a change notification names, many ids per statement, tenant-filtered."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import reads
from drivers import tables as t
from drivers.mapping import INCIDENT, INCIDENT_EVENT, Relation
from drivers.records import IncidentEventRecord, IncidentRecord

__all__ = ["fetch_events", "fetch_incidents"]

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
