"""Profile the RESOLVER read path in-process: CPU ms and SQL statements per request.

Seeds a throwaway database on DATABASE_URL's server (one tenant: 50 incidents x 20 events, 100
limits x 5 breaches + 2 overrides, lessons), runs Q1..Q3 of bench/queries/ N times through the
real ASGI app (httpx ASGITransport, compiled reads off) and prints, per query, process CPU per
request (time.process_time: the gateway's Python work, client included, no network; the mean,
and the minimum and median over batches of 20, which a busy machine disturbs less) and the
statements asyncpg sent per request (BEGIN/ROLLBACK and pre-ping included; the empty ping ";"
counted apart). Run: `.venv/bin/python -m bench.profile_resolver [-n 200] [--keep]`; wrap it in
py-spy (`py-spy record -o /tmp/x.json --format speedscope -- .venv/bin/python -m ...`) to see
where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import jwt
import orjson
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.seed import Scale, seed, tenant_ids
from drivers.db import make_engine
from drivers.migrate import upgrade_head
from gateway.app import create_app
from gateway.settings import Settings

QUERIES = Path(__file__).parent / "queries"
SECRET = "profile-resolver-secret-0123456789abcdef"
BATCH = 20  # requests per timed batch: the minimum over batches resists a noisy machine
SCALE = Scale(tenants=1, incidents=50, events=20, limits=100, breaches=5, overrides=2, lessons=50)


@dataclass(slots=True, eq=False)
class Tally:
    """Statements sent, by first word (BEGIN, SELECT, ...); the pre-ping's empty query apart.

    asyncpg's query logger sees what asyncpg sends on its own (BEGIN, ROLLBACK, pings) but not
    SQLAlchemy's prepared statements; SQLAlchemy's cursor event sees exactly those.
    """

    words: Counter[str]
    pings: int = 0

    def __call__(self, record: Any) -> None:
        query = str(record.query).strip()
        if query in ("", ";"):
            self.pings += 1
        else:
            self.words[query.split(None, 1)[0].rstrip(";").upper()] += 1

    def sql(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """SQLAlchemy's statements (sent as prepared statements, which asyncpg does not log)."""
        self.words[statement.split(None, 1)[0].upper()] += 1

    def reset(self) -> None:
        self.words.clear()
        self.pings = 0


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@asynccontextmanager
async def throwaway_database(server: str) -> AsyncIterator[str]:
    """A fresh, migrated, seeded database, dropped on exit."""
    name = f"profile_resolver_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_dsn(_with_db(server, "postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = _with_db(server, name)
        try:
            await asyncio.to_thread(upgrade_head, url)
            engine = make_engine(url)
            async with engine.begin() as conn:
                await seed(conn, SCALE)
            await engine.dispose()
            yield url
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _bearer(tenant: str) -> str:
    claims = {"sub": "bench", "tenant_id": tenant, "role": "ADMIN", "exp": int(time.time()) + 3600}
    return "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")


async def _post(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    response.raise_for_status()
    body: dict[str, Any] = orjson.loads(response.content)  # the client's share of CPU kept small
    if body.get("errors"):
        raise RuntimeError(f"query failed: {body['errors']}")
    return body


async def profile(url: str, n: int, only: str | None = None) -> None:
    """Run each query n times (after a warm-up) and print its per-request figures."""
    settings = Settings(
        database_url=url,
        migrate_on_start=False,
        jwt_secret=SECRET,
        api_key_cache_seconds=0,
        gateway_background_jobs=False,
        gateway_compiled_reads=False,
    )
    tally = Tally(Counter())

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.driver_connection.add_query_logger(tally)

    event.listen(Engine, "connect", on_connect)
    event.listen(Engine, "before_cursor_execute", tally.sql)
    app = create_app(settings)
    tenant = tenant_ids(SCALE)[0]
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),
            base_url="http://gateway.bench",
            headers={"authorization": _bearer(tenant)},
        ) as http,
    ):
        q1 = (QUERIES / "q1_console.graphql").read_text()
        first = await _post(http, q1, {"first": 1})
        incident_id = first["data"]["incidents"]["nodes"][0]["id"]
        runs = [
            ("Q1 console", q1, {"first": 50}),
            ("Q2 limits", (QUERIES / "q2_limits.graphql").read_text(), {"first": 100}),
            ("Q3 point", (QUERIES / "q3_point.graphql").read_text(), {"id": incident_id}),
        ]
        print(
            f"{'query':<11} {'ms/req CPU':>10} {'min':>8} {'median':>8} {'stmts/req':>9}"
            "  by kind (per request)"
        )
        for label, query, variables in runs:
            if only and not label.lower().startswith(only.lower()):
                continue
            for _ in range(max(3, n // 10)):  # warm caches and the pool
                await _post(http, query, variables)
            tally.reset()
            batches: list[float] = []  # CPU ms per request of each batch of BATCH requests
            for done in range(0, n, BATCH):
                size = min(BATCH, n - done)
                start = time.process_time()
                for _ in range(size):
                    await _post(http, query, variables)
                batches.append((time.process_time() - start) * 1000 / size)
            cpu_ms = sum(batches) / len(batches)
            kinds = ", ".join(f"{w} {c / n:g}" for w, c in sorted(tally.words.items()))
            stmts = sum(tally.words.values()) / n
            print(
                f"{label:<11} {cpu_ms:>10.2f} {min(batches):>8.2f}"
                f" {statistics.median(batches):>8.2f} {stmts:>9.2f}"
                f"  {kinds}; pings {tally.pings / n:g}"
            )
    event.remove(Engine, "connect", on_connect)
    event.remove(Engine, "before_cursor_execute", tally.sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=200, help="requests per query (default 200)")
    parser.add_argument("--only", help="run only the query whose label starts with this (q1)")
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL")
    if not server:
        raise SystemExit("set DATABASE_URL (libpq form) to a server where a database may be made")

    async def run() -> None:
        async with throwaway_database(server) as url:
            await profile(url, args.n, args.only)

    asyncio.run(run())


if __name__ == "__main__":
    main()
