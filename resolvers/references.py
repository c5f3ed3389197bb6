"""Ids in an input must name the caller's own rows (ARCHITECTURE.md "Tenant isolation").

A missing or foreign id is NOT_FOUND naming the input field, never a dangling reference.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import breaches as refs
from drivers.errors import NotFound as DbNotFound
from resolvers.errors import NotFound

__all__ = ["ensure_found"]


async def ensure_found(
    conn: AsyncConnection, entity: str, *, tenant_id: str, entity_id: str, field: str
) -> None:
    """Raise NOT_FOUND (with `field`) unless the tenant has this Run, Incident or Limit."""
    try:
        await refs.ensure_exists(conn, entity, tenant_id=tenant_id, entity_id=entity_id)
    except DbNotFound as exc:
        raise NotFound(f"{entity} {entity_id} not found", field=field) from exc
