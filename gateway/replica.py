"""The read replica (DATABASE_READ_URL): its health and lag, and read-your-writes.

Reads go to the replica; mutations, LISTEN and the jobs to the primary. Three things keep that
correct for a client:

- Read-your-writes. An HTTP answer whose operation committed a mutation carries
  `X-Gateway-LSN`, the primary's WAL position after the commit. A request presenting it (on any
  gateway process) is served from the replica once the replica has replayed that far, waiting
  at most READ_YOUR_WRITES_TIMEOUT_MS, else from the primary. The mutation's own payload is read
  from the primary (Context.note_commit).
- Failover. A read connection that cannot reach the replica is opened on the primary
  (drivers/replication.failover_connect) and the replica counts as down: /readyz says
  `degraded`, `gateway_replica_up` is 0. The watcher checks the replica every
  REPLICA_CHECK_SECONDS; when it answers again the read pools move back to it.
- Lag. The watcher publishes `gateway_replica_lag_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import asyncpg
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drivers.db import make_engine
from drivers.one_statement import StatementPool
from drivers.readpool import create_read_pool
from drivers.replication import (
    ReplicaState,
    ReplicaStatus,
    commit_position,
    connect_replica,
    failover_engine,
    failover_pool,
    format_lsn,
    parse_lsn,
    replica_status,
)
from gateway.pipeline import header, is_graphql_http, state
from gateway.responses import error_response, response_media_type
from gateway.settings import Settings
from resolvers.context import Commits, Database
from resolvers.errors import BadUserInput

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = [
    "COMMITS",
    "DATABASE",
    "LSN_HEADER",
    "ReadSide",
    "ReadYourWrites",
    "ReplicaWatcher",
    "open_read_side",
]

log = logging.getLogger("gateway.replica")

LSN_HEADER = "x-gateway-lsn"
# scope["state"] keys: the Database this request reads from, and what it committed.
DATABASE = "database"
COMMITS = "commits"
# Between two looks at the replica's replay position while a read waits for it.
_POLL_SECONDS = 0.005

REPLICA_UP = Gauge(
    "gateway_replica_up", "1 while the read replica answers; 0 while reads use the primary"
)
REPLICA_LAG = Gauge(
    "gateway_replica_lag_seconds",
    "How far the read replica's data is behind the primary (0: all it received is replayed)",
)
READ_YOUR_WRITES = Counter(
    "gateway_read_your_writes_total",
    "Requests presenting X-Gateway-LSN, by the database that served their reads",
    ["served_by"],
)
for _served_by in ("replica", "primary"):
    READ_YOUR_WRITES.labels(_served_by)  # both series exist from the start


class ReplicaWatcher:
    """Knows whether the replica answers, how far it has replayed, and how late it is.

    One connection of its own, used by one query at a time: the periodic check and every read
    waiting for a WAL position share whichever status query is in flight.
    """

    def __init__(
        self,
        url: str,
        db: Database,
        replica: ReplicaState,
        *,
        interval: float,
        wait_seconds: float,
    ) -> None:
        self.url = url
        self.db = db
        self.state = replica
        self.interval = interval
        self.wait_seconds = wait_seconds
        self._conn: asyncpg.Connection | None = None
        self._inflight: asyncio.Future[ReplicaStatus | None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.status()
        self._task = asyncio.create_task(self._run(), name="replica-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight is not None:
            await self._inflight  # _query never raises
        if self._conn is not None:
            self._conn.terminate()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.status()

    async def status(self) -> ReplicaStatus | None:
        """The replica's status now (None: it does not answer); one query for all callers."""
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._query())
            self._inflight.add_done_callback(self._done)
        # Shielded: a caller that goes away must not cancel the others' query.
        return await asyncio.shield(self._inflight)

    def _done(self, _: object) -> None:
        self._inflight = None

    async def _query(self) -> ReplicaStatus | None:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await connect_replica(self.url)
            status = await replica_status(self._conn)
        except Exception as exc:  # whatever the reason, the replica does not answer
            if self.state.up:
                log.warning("read replica down, reads use the primary: %s", exc)
            if self._conn is not None:
                self._conn.terminate()
                self._conn = None
            self.state.up = False
            REPLICA_UP.set(0)
            return None
        was_up = self.state.up
        self.state.up, self.state.replayed = True, status.replayed
        self.state.lag_seconds = status.lag_seconds
        REPLICA_UP.set(1)
        REPLICA_LAG.set(status.lag_seconds)
        if not was_up:
            log.warning("read replica up again, reads go back to it")
            if self.db.json_reads is not None:
                await self.db.json_reads.expire_connections()
        return status

    def _replayed(self, position: int) -> bool:
        return self.state.up and (self.state.replayed is None or self.state.replayed >= position)

    async def caught_up(self, position: int) -> bool:
        """Whether the replica has replayed `position`, waiting for it at most wait_seconds."""
        if self._replayed(position):
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while True:
            if await self.status() is None:
                return False
            if self._replayed(position):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(_POLL_SECONDS, remaining))

    async def database_after(self, position: int) -> Database:
        """Where a request presenting `position` reads: replica if replayed, else primary."""
        if await self.caught_up(position):
            READ_YOUR_WRITES.labels("replica").inc()
            return self.db
        READ_YOUR_WRITES.labels("primary").inc()
        return self.db.fresh()

    async def commit_token(self) -> str:
        """The X-Gateway-LSN value that covers every commit made before this call."""
        return format_lsn(await commit_position(self.db.fresh().reads))


class ReadSide:
    """The read engines and pools of one process, and the replica watcher when there is one."""

    def __init__(
        self, db: Database, watcher: ReplicaWatcher | None, pools: list[asyncpg.Pool]
    ) -> None:
        self.db = db
        self.watcher = watcher
        self._pools = pools

    async def start(self) -> None:
        if self.watcher is not None:
            await self.watcher.start()

    async def close(self) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
        await self.db.reads.dispose()
        for pool in self._pools:
            await pool.close()


async def open_read_side(
    settings: Settings,
    url: str,
    primary: AsyncEngine,
    engine_options: dict[str, Any],
    *,
    one_statement: StatementPool | None = None,
) -> ReadSide:
    """Reads on DATABASE_READ_URL (failing over to the primary), or on the primary's URL.

    Read engines are AUTOCOMMIT from the start: reads need no transaction, so no BEGIN/ROLLBACK
    around a loader batch. The compiled path gets plain asyncpg pools (drivers/readpool.py).
    `one_statement` (the primary's, owned by the caller) goes on both Databases unchanged.
    """
    pool_options: dict[str, Any] = {
        "size": settings.db_pool_size,
        "statement_timeout_ms": settings.db_statement_timeout_ms,
        "prepared_statements": settings.db_prepared_statements,
    }
    compiled = settings.gateway_compiled_reads
    read_url = settings.database_read_url
    if not read_url:
        reads = make_engine(url, isolation_level="AUTOCOMMIT", **engine_options)
        pool = await create_read_pool(url, **pool_options) if compiled else None
        db = Database(primary, reads, pool, one_statement=one_statement)
        return ReadSide(db, None, [pool] if pool else [])
    replica = ReplicaState()
    replica_reads = failover_engine(
        read_url, url, replica, isolation_level="AUTOCOMMIT", **engine_options
    )
    replica_pool = await failover_pool(read_url, url, replica, **pool_options) if compiled else None
    # Reads that must see the latest commit share the primary's pool, as AUTOCOMMIT.
    primary_pool = await create_read_pool(url, **pool_options) if compiled else None
    on_primary = Database(
        primary,
        primary.execution_options(isolation_level="AUTOCOMMIT"),
        primary_pool,
        one_statement=one_statement,
    )
    db = Database(
        primary, replica_reads, replica_pool, one_statement=one_statement, on_primary=on_primary
    )
    watcher = ReplicaWatcher(
        read_url,
        db,
        replica,
        interval=settings.replica_check_seconds,
        wait_seconds=settings.read_your_writes_timeout_ms / 1000,
    )
    return ReadSide(db, watcher, [p for p in (replica_pool, primary_pool) if p is not None])


class ReadYourWrites:
    """Pipeline step: picks the request's read database and hands out X-Gateway-LSN.

    Acts only with a replica configured. A malformed X-Gateway-LSN is BAD_USER_INPUT (400).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_state = state(scope) if is_graphql_http(scope) else {}
        runtime: Runtime | None = request_state.get("runtime")
        watcher = runtime.replica if runtime is not None else None
        if watcher is None:
            await self.app(scope, receive, send)
            return
        presented = header(scope, LSN_HEADER.encode())
        request_state[DATABASE] = watcher.db
        if presented is not None:
            try:
                position = parse_lsn(presented)
            except ValueError:
                error = BadUserInput(
                    f"{LSN_HEADER} must be a WAL position such as 0/16B3748, as a mutation "
                    "answer gave it.",
                    field="X-Gateway-LSN",
                )
                media_type = response_media_type(header(scope, b"accept"))
                await error_response(error, 400, media_type=media_type)(scope, receive, send)
                return
            request_state[DATABASE] = await watcher.database_after(position)
        commits = request_state[COMMITS] = Commits()

        async def send_with_token(message: Message) -> None:
            if message["type"] == "http.response.start" and commits.count:
                try:
                    token = await watcher.commit_token()
                except Exception as exc:  # the answer matters more than the token
                    log.warning("no %s for a committed mutation: %s", LSN_HEADER, exc)
                else:
                    headers = [*message.get("headers", []), (LSN_HEADER.encode(), token.encode())]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_token)
