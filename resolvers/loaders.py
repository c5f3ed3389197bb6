"""Per-request DataLoaders generated from the mapping (drivers/mapping.py).

One loader per (relation, arguments); each batch is ONE statement on its own short connection,
filtered by the request's tenant, and answers in key order with None / [] for misses. A loader
lives only as long as its request, so cached rows never cross requests or tenants.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from drivers import incidents, reads, thresholds
from drivers.mapping import Relation
from drivers.records import IncidentDerivedRecord
from drivers.rules.thresholds import ThresholdLayer
from resolvers.errors import translate_errors

__all__ = ["Loaders"]

V = TypeVar("V")
R = TypeVar("R")
Batch = Callable[[AsyncConnection, Sequence[Any]], Awaitable[dict[Any, V]]]
# A nested connection page: ([(ordering key values, record)], has_next).
Window = tuple[list[tuple[tuple[Any, ...], R]], bool]


class _BatchLoader(DataLoader[Any, V]):
    """Runs one batch function per tick and spreads its dict over the keys."""

    def __init__(self, engine: AsyncEngine, batch: Batch[V], missing: Callable[[], V]) -> None:
        super().__init__()
        self._engine = engine
        self._batch = batch
        self._missing = missing

    async def batch_load_fn(self, keys: Sequence[Any]) -> list[V]:
        with translate_errors():
            async with self._engine.connect() as conn:
                found = await self._batch(conn, keys)
        return [found[k] if k in found else self._missing() for k in keys]


class Loaders:
    """The request's loaders, created lazily inside the running event loop.

    Typed by the relation: `one(INCIDENT_SOURCE_RUN)` loads `RunRecord | None`.
    """

    def __init__(self, engine: AsyncEngine, tenant_id: str) -> None:
        self._engine = engine
        self._tenant_id = tenant_id
        self._cache: dict[tuple[Any, ...], _BatchLoader[Any]] = {}

    def _get(
        self, key: tuple[Any, ...], batch: Batch[V], missing: Callable[[], V]
    ) -> DataLoader[Any, V]:
        loader = self._cache.get(key)
        if loader is None:
            loader = self._cache[key] = _BatchLoader(self._engine, batch, missing)
        # One key, one batch function: the cached loader is the one built for this V.
        return cast("DataLoader[Any, V]", loader)

    def one(self, relation: Relation[R]) -> DataLoader[Any, R | None]:
        """Loader of a to-one relation: parent key -> record or None."""
        tenant = self._tenant_id

        async def batch(conn: AsyncConnection, keys: Sequence[Any]) -> dict[Any, R | None]:
            grouped = await reads.fetch_by_keys(conn, relation, tenant_id=tenant, keys=keys)
            return {k: rows[0] for k, rows in grouped.items()}

        return self._get(("one", relation), batch, lambda: None)

    def many(self, relation: Relation[R]) -> DataLoader[Any, list[R]]:
        """Loader of a plain list relation: parent key -> [records] in relation order."""
        tenant = self._tenant_id

        async def batch(conn: AsyncConnection, keys: Sequence[Any]) -> dict[Any, list[R]]:
            return await reads.fetch_by_keys(conn, relation, tenant_id=tenant, keys=keys)

        return self._get(("many", relation), batch, list)

    def window(
        self, relation: Relation[R], first: int, after: tuple[Any, ...] | None
    ) -> DataLoader[Any, Window[R]]:
        """Loader of a nested connection page: parent key -> ([(cursor, record)], has_next)."""
        tenant = self._tenant_id

        async def batch(conn: AsyncConnection, keys: Sequence[Any]) -> dict[Any, Window[R]]:
            return await reads.fetch_window_by_keys(
                conn, relation, tenant_id=tenant, keys=keys, first=first, after=after
            )

        return self._get(("window", relation, first, after), batch, lambda: ([], False))

    def count(self, relation: Relation[Any]) -> DataLoader[Any, int]:
        """Loader of a nested connection's totalCount: parent key -> int."""
        tenant = self._tenant_id

        async def batch(conn: AsyncConnection, keys: Sequence[Any]) -> dict[Any, int]:
            return await reads.count_by_keys(conn, relation, tenant_id=tenant, keys=keys)

        return self._get(("count", relation), batch, lambda: 0)

    def incident_derived(self) -> DataLoader[str, IncidentDerivedRecord | None]:
        """Loader of an incident's §1.18 derived values: incident id -> IncidentDerivedRecord."""
        tenant = self._tenant_id

        async def batch(
            conn: AsyncConnection, keys: Sequence[Any]
        ) -> dict[Any, IncidentDerivedRecord | None]:
            return dict(await incidents.fetch_derived_by_ids(conn, tenant_id=tenant, ids=keys))

        return self._get(("incident_derived",), batch, lambda: None)

    def threshold_layers(self) -> DataLoader[str, list[ThresholdLayer]]:
        """Loader of the tenant's THRESHOLD layers (§3.4), one read per request: key = tenant."""

        async def batch(
            conn: AsyncConnection, keys: Sequence[Any]
        ) -> dict[Any, list[ThresholdLayer]]:
            return {k: await thresholds.fetch_threshold_layers(conn, tenant_id=k) for k in keys}

        return self._get(("threshold_layers",), batch, list)
