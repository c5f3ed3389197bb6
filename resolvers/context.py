"""Per-request context: who calls, where the data is, and this request's loaders.

It holds no HTTP or GraphQL object, so resolvers run the same under HTTP, WebSocket, a CLI or a
test.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers.one_statement import StatementPool
from drivers.rules.breaker import BreakerSettings
from resolvers.auth import Principal
from resolvers.loaders import Loaders

if TYPE_CHECKING:
    from resolvers.compiled import PreparedCache
    from resolvers.subscriptions import ChangeFeed

__all__ = ["Commits", "Context", "Database"]


@dataclass(frozen=True, slots=True)
class Database:
    """The primary (writes, locks) and the engine reads go to (a replica, or the primary)."""

    primary: AsyncEngine
    reads: AsyncEngine
    # The compiled read path's plain asyncpg pool (drivers/readpool.py), on the reads' database;
    # None: compiled reads are off.
    json_reads: asyncpg.Pool | None = None
    # The one-statement writes' plain asyncpg pool on the PRIMARY (drivers/one_statement.py),
    # with their NotifyMode; None: they run on an AUTOCOMMIT connection of `primary`.
    one_statement: StatementPool | None = None
    # When reads go to a replica: the same database with every read on the primary, for reads
    # that must see the latest commits (read-your-writes). None: reads are on the primary.
    on_primary: Database | None = None

    def fresh(self) -> Database:
        """Reads that see every commit made so far: the primary's."""
        return self.on_primary or self


@dataclass(slots=True)
class Commits:
    """How many mutations this request committed: the gateway then hands out a WAL position."""

    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    principal: Principal | None
    db: Database
    request_id: str
    # The process's change feed (the gateway's LISTEN hub); None outside a server.
    feed: ChangeFeed | None = None
    # Circuit-breaker and Alertmanager settings (DOMAIN.md §3.7); the gateway fills them.
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    compiled_reads: bool = True  # serve mapped query operations with one SQL statement
    # AOS_VERIFICATION_MODE (DOMAIN.md §3.14-3.15): stricter evidence rules for ingest.
    verification_mode: bool = False
    # The HTTP request's (query, operationName, variables) identity: a compiled operation is
    # remembered under it so that the next identical request skips GraphQL (resolvers/compiled).
    operation_key: Hashable | None = None
    prepared: PreparedCache | None = None
    commits: Commits = field(default_factory=Commits)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        tenant = self.principal.tenant_id if self.principal else ""
        object.__setattr__(self, "loaders", Loaders(self.db.reads, tenant))

    def note_commit(self) -> None:
        """A mutation committed: this request's later reads (its payload) see it on the primary.

        The loaders start over on the primary: a replica may not have replayed the commit yet,
        and what they cached before the write is stale.
        """
        self.commits.count += 1
        fresh = self.db.fresh()
        if fresh is not self.db:
            object.__setattr__(self, "db", fresh)
            self.__post_init__()
