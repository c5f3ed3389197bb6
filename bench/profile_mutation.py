"""Profile a bench mutation (Q4 or Q7) through the real ASGI app (no network, no wrk).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python -m bench.profile_mutation [-n 2000] [--query q4|q7]

Creates a throwaway database on the DATABASE_URL server, migrates it, seeds 100 incidents
(Q4, addIncidentEvent) or one limit per request (Q7, requestOverride: one open override per
limit), then posts the mutation N times (Q4 rotating over the incidents) through httpx's
ASGITransport and prints wall ms/request, CPU ms/request (time.process_time, client and
server share the process), the server's share of it (process time inside the ASGI app) and
SQL statements/request (before_cursor_execute, and readpool.QUERY_HOOKS for the plain asyncpg
pools: the one-statement writes go through one). By default it measures two apps,
MUTATION_FAST_PATH on and off, taking turns in ten rounds, and prints the on/off ratios (a
burst of load from elsewhere then hits both alike); `--path on|off` measures one. Why: the wrk
numbers say how slow the write is; this says where the statements and the CPU go, and is quick
enough to run before and after each change (wrap it in py-spy for a flame graph).

--wire runs the app through bench/wire.py's proxy and also prints database round
trips/request (every Sync and simple Query on the wire: BEGIN, COMMIT and pool pings included,
which statement events miss); the proxy runs in the same process, so its CPU is then included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import jwt
from asgi_lifespan import LifespanManager
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine

from bench.wire import WireProxy, wire_proxy
from drivers import tables as t
from drivers.db import make_engine
from drivers.migrate import upgrade_head
from drivers.readpool import QUERY_HOOKS
from gateway.app import create_app
from gateway.settings import Settings

SECRET = "profile-secret-not-for-production-0123456789"
TENANT = "tp"
# The bench's own documents (bench/queries/): what is profiled is what the bench measures.
QUERIES = {
    "q4": (Path(__file__).parent / "queries" / "q4_add_event.graphql").read_text(),
    "q7": (Path(__file__).parent / "queries" / "q7_request_override.graphql").read_text(),
}


class Counter:
    """Counts statements sent by any engine or plain pool (as tests/conftest.count_statements)."""

    def __init__(self) -> None:
        self.count = 0
        self.seen: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.sent(statement)

    def sent(self, statement: str) -> None:
        self.count += 1
        if len(self.seen) < 40:
            self.seen.append(statement)


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(_with_db(server, "postgres")))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _seed(url: str, count: int) -> list[str]:
    engine = make_engine(url)
    now = datetime.now(UTC) - timedelta(hours=1)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    rows = [
        {
            "id": i,
            "tenant_id": TENANT,
            "title": "Budget limit exceeded: 120%",
            "severity": "HIGH",
            "status": "OPEN",
            "trigger_type": "BUDGET_BREACH",
            "trigger_value": "120%",
            "category": "BUDGET_EXCEEDED",
            "source_type": "KILLSWITCH",
            "cause_type": "SYSTEM",
            "started_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for i in ids
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(t.incidents), rows)
    await engine.dispose()
    return ids


async def _seed_limits(url: str, count: int) -> list[str]:
    """`count` limits of the tenant: each Q7 request asks an override for a limit of its own."""
    engine = make_engine(url)
    now = datetime.now(UTC) - timedelta(hours=1)
    ids = [f"{TENANT}-lim-{k:06d}" for k in range(count)]
    rows = [
        {
            "id": i,
            "tenant_id": TENANT,
            "name": f"limit {i}",
            "limit_category": "BUDGET",
            "limit_type": "COST_USD",
            "max_value": 100,
            "enforcement": "BLOCK",
            "reset_period": "MONTHLY",
            "created_at": now,
            "updated_at": now,
        }
        for i in ids
    ]
    integrity = [
        {
            "tenant_id": TENANT,
            "limit_id": i,
            "integrity_status": "VERIFIED",
            "integrity_score": 1,
            "computed_at": now,
        }
        for i in ids
    ]
    async with engine.begin() as conn:  # an ACTIVE limit needs its integrity row at commit
        await conn.execute(insert(t.limits), rows)
        await conn.execute(insert(t.limit_integrity), integrity)
    await engine.dispose()
    return ids


async def _run(
    url: str, n: int, warmup: int, show: bool, wire: bool, *, paths: list[bool], query: str
) -> None:
    if query == "q4":
        ids = await _seed(url, 100)
    else:  # every request of every path needs a limit nobody else asked for
        ids = await _seed_limits(url, (n + warmup + ROUNDS) * len(paths))
    if wire:
        async with wire_proxy(url) as proxy:
            await _measure(
                proxy.url(url), ids, n, warmup, show=show, proxy=proxy, paths=paths, query=query
            )
    else:
        await _measure(url, ids, n, warmup, show=show, proxy=None, paths=paths, query=query)


@dataclass
class Run:
    """One gateway app (fast path on or off) and what its timed requests cost."""

    fast: bool
    http: httpx.AsyncClient
    server: ServerClock
    wall: float = 0.0
    cpu: float = 0.0
    statements: int = 0
    trips: int = 0
    requests: int = 0

    @property
    def name(self) -> str:
        return f"MUTATION_FAST_PATH={'on' if self.fast else 'off'}"


class ServerClock:
    """CPU spent inside the app, i.e. the server's share of the process's CPU.

    The client awaits the app in the same task, one request at a time, so process time across
    `await app(...)` is the server's (waiting for the database uses none).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cpu = 0.0
        self.on = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        start = time.process_time()
        try:
            await self.app(scope, receive, send)
        finally:
            if self.on:
                self.cpu += time.process_time() - start


def _bodies(query: str, ids: list[str]) -> Callable[[int], dict[str, Any]]:
    """The i-th request's body: Q4 rotates over its incidents, Q7 takes the next unused limit."""
    document = QUERIES[query]
    used = 0

    def body(i: int) -> dict[str, Any]:
        nonlocal used
        if query == "q4":
            return {"query": document, "variables": {"incidentId": ids[i % len(ids)]}}
        used += 1
        return {"query": document, "variables": {"limitId": ids[used - 1]}}

    return body


ROUNDS = 10  # the paths take turns, so a burst of load on the machine hits both alike


async def _measure(
    url: str,
    ids: list[str],
    n: int,
    warmup: int,
    *,
    show: bool,
    proxy: WireProxy | None,
    paths: list[bool],
    query: str,
) -> None:
    claims = {"sub": "op", "tenant_id": TENANT, "role": "OPERATOR", "exp": int(time.time()) + 3600}
    headers = {"authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}
    counter = Counter()
    async with AsyncExitStack() as stack:
        runs = []
        for fast in paths:
            settings = Settings(
                database_url=url,
                migrate_on_start=False,
                jwt_secret=SECRET,
                api_key_cache_seconds=60,
                db_pool_size=5,
                gateway_background_jobs=False,
                mutation_fast_path=fast,
            )
            manager = await stack.enter_async_context(LifespanManager(create_app(settings)))
            server = ServerClock(manager.app)
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=server), base_url="http://gateway.test"
                )
            )
            runs.append(Run(fast, http, server))

        bodies = _bodies(query, ids)

        async def post(run: Run, i: int) -> None:
            body = bodies(i)
            response = await run.http.post("/graphql", json=body, headers=headers)
            payload = response.json()
            if response.status_code != 200 or payload.get("errors"):
                raise SystemExit(f"mutation failed: {response.status_code} {payload}")

        for run in runs:
            for i in range(warmup):
                await post(run, i)
        event.listen(Engine, "before_cursor_execute", counter)
        QUERY_HOOKS.append(counter.sent)
        for run in runs:
            run.server.on = True
        per_round = max(1, n // ROUNDS)
        for r in range(ROUNDS):
            for run in runs:
                count0, trips0 = counter.count, proxy.round_trips if proxy else 0
                wall0, cpu0 = time.perf_counter(), time.process_time()
                for i in range(per_round):
                    await post(run, r * per_round + i)
                run.wall += time.perf_counter() - wall0
                run.cpu += time.process_time() - cpu0
                run.statements += counter.count - count0
                run.trips += (proxy.round_trips if proxy else 0) - trips0
                run.requests += per_round
        QUERY_HOOKS.remove(counter.sent)
        event.remove(Engine, "before_cursor_execute", counter)
    for run in runs:
        k = run.requests
        print(f"{run.name}: {k} requests")
        print(f"  wall ms/request: {run.wall * 1000 / k:.3f}")
        print(f"  cpu  ms/request: {run.cpu * 1000 / k:.3f}  (client + server, one process)")
        print(f"  server cpu ms/request: {run.server.cpu * 1000 / k:.3f}  (inside the ASGI app)")
        print(f"  statements/request: {run.statements / k:.2f}")
        if proxy is not None:
            print(f"  round trips/request: {run.trips / k:.2f}  (on the wire; CPU has the proxy)")
    if len(runs) == 2:
        on, off = (runs[0], runs[1]) if runs[0].fast else (runs[1], runs[0])
        server_ratio = on.server.cpu / off.server.cpu
        print(f"cpu on/off: {on.cpu / off.cpu:.2f}  server cpu on/off: {server_ratio:.2f}", end="")
        print(f"  wall on/off: {on.wall / off.wall:.2f}")
    if show:
        per = counter.count // max(1, sum(run.requests for run in runs))
        for stmt in counter.seen[:per]:
            print("  --", " ".join(stmt.split())[:160])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="timed requests")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--show", action="store_true", help="print one request's statements")
    parser.add_argument("--wire", action="store_true", help="count round trips through a proxy")
    parser.add_argument(
        "--path",
        choices=("both", "on", "off"),
        default="both",
        help="MUTATION_FAST_PATH of the app(s) measured; both = in turns, within one run",
    )
    parser.add_argument("--query", choices=tuple(QUERIES), default="q4", help="the mutation")
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL")
    if not server:
        raise SystemExit("set DATABASE_URL to a PostgreSQL server")
    name = f"gw_profile_{secrets.token_hex(4)}"
    url = _with_db(server, name)

    async def go() -> None:
        await _admin(server, f'CREATE DATABASE "{name}"')
        try:
            await asyncio.to_thread(upgrade_head, url)
            paths = {"both": [True, False], "on": [True], "off": [False]}[args.path]
            await _run(
                url, args.n, args.warmup, args.show, args.wire, paths=paths, query=args.query
            )
        finally:
            await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    asyncio.run(go())


if __name__ == "__main__":
    main()
