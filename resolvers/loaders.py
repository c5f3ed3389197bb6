"""Per-request DataLoaders generated from the mapping (drivers/mapping.py).

One loader per (relation, arguments); each batch is ONE statement on its own short connection,
filtered by the request's tenant, and answers in key order with None / [] for misses. A loader
lives only as long as its request, so cached rows never cross requests or tenants.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from drivers import incidents, reads, thresholds
from drivers.mapping import RELATIONS, Relation
from resolvers.errors import translate_errors

__all__ = ["Loaders"]

Batch = Callable[[AsyncConnection, Sequence[Any]], Awaitable[dict[Any, Any]]]


class _BatchLoader(DataLoader[Any, Any]):
    """Runs one batch function per tick and spreads its dict over the keys."""

    def __init__(self, engine: AsyncEngine, batch: Batch, missing: Callable[[], Any]) -> None:
        super().__init__()
        self._engine = engine
        self._batch = batch
        self._missing = missing

    async def batch_load_fn(self, keys: Sequence[Any]) -> list[Any]:
        with translate_errors():
            async with self._engine.connect() as conn:
                found = await self._batch(conn, keys)
        return [found[k] if k in found else self._missing() for k in keys]


class Loaders:
    """The request's loaders, created lazily inside the running event loop."""

    def __init__(self, engine: AsyncEngine, tenant_id: str) -> None:
        self._engine = engine
        self._tenant_id = tenant_id
        self._cache: dict[tuple[Any, ...], _BatchLoader] = {}

    def _get(self, key: tuple[Any, ...], batch: Batch, missing: Callable[[], Any]) -> _BatchLoader:
        loader = self._cache.get(key)
        if loader is None:
            loader = self._cache[key] = _BatchLoader(self._engine, batch, missing)
        return loader

    def one(self, parent: str, field: str) -> _BatchLoader:
        """Loader of a to-one relation: parent key -> record or None."""
        relation = RELATIONS[(parent, field)]
        return self._get(("one", relation), self._children(relation, single=True), lambda: None)

    def many(self, parent: str, field: str) -> _BatchLoader:
        """Loader of a plain list relation: parent key -> [records] in relation order."""
        relation = RELATIONS[(parent, field)]
        return self._get(("many", relation), self._children(relation, single=False), list)

    def window(
        self, parent: str, field: str, first: int, after: tuple[Any, ...] | None
    ) -> _BatchLoader:
        """Loader of a nested connection page: parent key -> ([(cursor, record)], has_next)."""
        relation = RELATIONS[(parent, field)]
        tenant = self._tenant_id

        async def batch(conn: AsyncConnection, keys: Sequence[Any]) -> dict[Any, Any]:
            return await reads.fetch_window_by_keys(
                conn, relation, tenant_id=tenant, keys=keys, first=first, after=after
            )

        return self._get(("window", relation, first, after), batch, lambda: ([], False))

    def count(self, parent: str, field: str) -> _BatchLoader:
        """Loader of a nested connection's totalCount: parent key -> int."""
        relation = RELATIONS[(parent, field)]
        tenant = self._tenant_id

        async def batch(conn: AsyncConnection, keys: Sequence[Any]) -> dict[Any, Any]:
            return await reads.count_by_keys(conn, relation, tenant_id=tenant, keys=keys)

        return self._get(("count", relation), batch, lambda: 0)

    def incident_derived(self) -> _BatchLoader:
        """Loader of an incident's §1.18 derived values: incident id -> IncidentDerivedRecord."""
        tenant = self._tenant_id

        async def batch(conn: AsyncConnection, keys: Sequence[Any]) -> dict[Any, Any]:
            return await incidents.fetch_derived_by_ids(conn, tenant_id=tenant, ids=keys)

        return self._get(("incident_derived",), batch, lambda: None)

    def threshold_layers(self) -> _BatchLoader:
        """Loader of the tenant's THRESHOLD layers (§3.4), one read per request: key = tenant."""

        async def batch(conn: AsyncConnection, keys: Sequence[Any]) -> dict[Any, Any]:
            return {k: await thresholds.fetch_threshold_layers(conn, tenant_id=k) for k in keys}

        return self._get(("threshold_layers",), batch, list)

    def _children(self, relation: Relation, *, single: bool) -> Batch:
        tenant = self._tenant_id

        async def batch(conn: AsyncConnection, keys: Sequence[Any]) -> dict[Any, Any]:
            grouped = await reads.fetch_by_keys(conn, relation, tenant_id=tenant, keys=keys)
            if single:
                return {k: rows[0] for k, rows in grouped.items()}
            return grouped

        return batch
