"""The gateway and `gateway worker` behind PgBouncer in transaction mode (issue #17, item 2).

DATABASE_URL points at PgBouncer (two server connections for many clients, so consecutive
transactions of one client land on different server connections), DATABASE_LISTEN_URL at the
database itself, DB_PREPARED_STATEMENTS=off (Debian's PgBouncer 1.18 has no
max_prepared_statements) and DB_STATEMENT_TIMEOUT_MS=0 (PgBouncer refuses that startup
parameter; the timeout is then set server-side).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from drivers import tables as t
from drivers.db import make_engine, timeout_setting
from drivers.migrate import current_revision, head_revision
from drivers.one_statement import create_statement_pool
from drivers.readpool import create_read_pool, fetch_json_text
from tests.conftest import create_database, drop_database
from tests.factories import incident_row, insert_rows, make_limits
from tests.factories_breaker import audits, breakers, expire_breaker
from tests.gateway.test_cli import run_cli
from tests.gateway.test_mutation_path import ADD_EVENT, NOTE
from tests.gateway.test_override_round_trips import REQUEST
from tests.helpers import JWT_SECRET, gql, token
from tests.live.pgbouncer import PgBouncer, require_pgbouncer
from tests.live.servers import ROOT, GatewayProcess, free_port
from tests.live.test_breaker_subscriptions import BREAKER_CHANGED, DISABLE
from tests.live.test_subscriptions import ACK, INCIDENT_CHANGED
from tests.live.wsclient import subscriber, wait_for_subscribers

LIST = "{ incidents(first: 50) { nodes { id title startedAt } } }"
# __type keeps an operation off the compiled path (tests/compiled/test_statements.py).
LIST_RESOLVED = (
    '{ incidents(first: 50) { nodes { id title startedAt } } __type(name: "Incident") { name } }'
)
POOLED_ENV = {"DB_PREPARED_STATEMENTS": "off", "DB_STATEMENT_TIMEOUT_MS": "0"}


def _override(limit_id: str) -> dict[str, object]:
    reason = "behind PgBouncer"
    return {
        "input": {"limitId": limit_id, "overrideValue": "150", "durationHours": 1, "reason": reason}
    }


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@pytest.fixture(scope="module")
def bouncer(server_url: str) -> Iterator[PgBouncer]:
    require_pgbouncer()
    pooler = PgBouncer(server_url, pool_size=2)
    pooler.start()
    yield pooler
    pooler.stop()


@pytest.fixture(scope="module")
def pooled_url(bouncer: PgBouncer, database_url: str) -> str:
    return bouncer.url(_database_name(database_url))


@pytest.fixture(scope="module")
def pooled_gateway(
    pooled_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """`gateway serve` as deployed behind PgBouncer: jobs in a separate worker."""
    gateway = GatewayProcess(
        pooled_url,
        tmp_path_factory.mktemp("pooled"),
        "gateway",
        DATABASE_LISTEN_URL=database_url,
        GATEWAY_BACKGROUND_JOBS="off",
        GATEWAY_COMPILED_READS="on",
        DB_POOL_SIZE="8",
        **POOLED_ENV,
    )
    gateway.start()
    try:
        gateway.wait_ready()
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
def pooled_worker(
    pooled_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """`gateway worker` behind PgBouncer, sweeping breakers every 0.3 s."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": pooled_url,
        "DATABASE_LISTEN_URL": database_url,
        "JWT_SECRET": JWT_SECRET,
        "JOB_BREAKER_SWEEP_SECONDS": "0.3",
        "LOG_LEVEL": "INFO",
        **POOLED_ENV,
    }
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "gateway", "worker"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    yield worker
    worker.terminate()
    worker.wait(15)
    assert " ERROR " not in log.read_text(), log.read_text()  # no job failed


@pytest.fixture
async def http(pooled_gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=pooled_gateway.url, timeout=20) as client:
        yield client


# --- the statement options themselves --------------------------------------------------------


async def _hold_the_server(pooled_url: str) -> asyncpg.Connection:
    """A second client in an open transaction: it keeps the one server connection in use."""
    conn = await asyncpg.connect(pooled_url, statement_cache_size=0)
    await conn.execute("BEGIN")
    await conn.execute("SELECT 1")
    return conn


async def _twice_across_servers(run, pooled_url: str) -> list[object]:
    """Run a statement, move the server connection it used to another client, run it again."""
    first = await run()
    other = await _hold_the_server(pooled_url)
    try:
        return [first, await run()]
    finally:
        await other.close()


@pytest.fixture
def own_bouncer(server_url: str, database_url: str) -> Iterator[str]:
    """A private PgBouncer (no other client), so the server connections' order is known."""
    require_pgbouncer()
    pooler = PgBouncer(server_url, pool_size=2)
    pooler.start()
    yield pooler.url(_database_name(database_url))
    pooler.stop()


async def test_named_prepared_statements_break_behind_a_transaction_pooler(own_bouncer):
    """Why DB_PREPARED_STATEMENTS exists: the cached statement is missing on the next server."""
    engine = make_engine(own_bouncer, pool_size=1, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:

            async def run() -> object:
                return (await conn.execute(text("SELECT CAST(:x AS int) + 1"), {"x": 1})).scalar()

            with pytest.raises(DBAPIError, match=r"prepared statement .* does not exist"):
                await _twice_across_servers(run, own_bouncer)
    finally:
        await engine.dispose()


async def test_without_prepared_statements_the_pools_work_across_server_connections(
    own_bouncer,
):
    engine = make_engine(
        own_bouncer, pool_size=1, isolation_level="AUTOCOMMIT", prepared_statements=False
    )
    reads = await create_read_pool(
        own_bouncer, size=1, statement_timeout_ms=0, prepared_statements=False
    )
    writes = await create_statement_pool(
        own_bouncer, size=1, statement_timeout_ms=0, prepared_statements=False
    )
    try:
        async with engine.connect() as conn:

            async def run_engine() -> object:
                return (await conn.execute(text("SELECT CAST(:x AS int) + 1"), {"x": 1})).scalar()

            assert await _twice_across_servers(run_engine, own_bouncer) == [2, 2]

        async def run_pool() -> object:
            return await fetch_json_text(reads, "SELECT json_build_object('n', $1::int)::text", [7])

        assert await _twice_across_servers(run_pool, own_bouncer) == ['{"n" : 7}'] * 2

        async with writes.acquire() as pooled:

            async def run_statement() -> object:
                row = await pooled.first_row("SELECT $1::int + 1, $2::jsonb", (1, '{"a": 1}'))
                return tuple(row or ())

            assert await _twice_across_servers(run_statement, own_bouncer) == [(2, {"a": 1})] * 2
    finally:
        await engine.dispose()
        await reads.close()
        await writes.close()


async def _statement_timeout(url: str, timeout_ms: int) -> str:
    engine = make_engine(
        url, poolclass=NullPool, connect_args={"server_settings": timeout_setting(timeout_ms)}
    )
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(text("SHOW statement_timeout"))).scalar())
    finally:
        await engine.dispose()


async def test_a_zero_statement_timeout_is_not_sent_so_pgbouncer_accepts_the_connection(
    own_bouncer, database_url
):
    # directly, the gateway's timeout is the session's
    assert await _statement_timeout(database_url, 1234) == "1234ms"
    # PgBouncer refuses it as a startup parameter; 0 sends none and connects
    with pytest.raises(DBAPIError, match="unsupported startup parameter: statement_timeout"):
        await _statement_timeout(own_bouncer, 1234)
    assert await _statement_timeout(own_bouncer, 0) == await _statement_timeout(database_url, 0)


async def test_migrations_use_the_direct_url(server_url):
    """`gateway migrate` with both URLs set migrates DATABASE_LISTEN_URL's database only."""
    names = [f"gw_direct_{secrets.token_hex(4)}" for _ in range(2)]
    pooled, direct = [await create_database(server_url, name) for name in names]
    try:
        result = run_cli(pooled, "migrate", env={"DATABASE_LISTEN_URL": direct})
        assert result.returncode == 0, result.stderr
        assert [await _revision(url) for url in (pooled, direct)] == [None, head_revision()]
    finally:
        for name in names:
            await drop_database(server_url, name)


def test_a_wrong_listen_url_is_one_line_naming_it(database_url):
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    result = run_cli(database_url, "migrate", env={"DATABASE_LISTEN_URL": closed})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot connect to PostgreSQL at 127.0.0.1:{urlsplit(closed).port} "
        "(connection refused): check DATABASE_LISTEN_URL and that the server is running"
    ]


async def _revision(url: str) -> str | None:
    engine = make_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await current_revision(conn)
    finally:
        await engine.dispose()


# --- the whole gateway -----------------------------------------------------------------------


async def test_reads_on_both_paths_and_mutations_go_through_pgbouncer(
    http, engine, bouncer, pooled_url
):
    rows = [incident_row(title=f"incident {i}") for i in range(20)]
    await insert_rows(engine, t.incidents, rows)
    expected = sorted(r["id"] for r in rows)
    # when 60 operations run at once over two server connections: reads on both paths, and
    # mutations that each acknowledge one incident
    auth = {"authorization": f"Bearer {token('t1', 'VIEWER')}"}

    reading = asyncio.gather(
        *(
            http.post("/graphql", json={"query": LIST if i % 2 else LIST_RESOLVED}, headers=auth)
            for i in range(40)
        )
    )
    acking = asyncio.gather(
        *(gql(http, ACK, {"id": row["id"]}, role="OPERATOR", sub="op") for row in rows)
    )
    # and the one-statement mutations, on the gateway's plain statement pool
    limits = await make_limits(engine, 3)
    one_statement = asyncio.gather(
        *(gql(http, ADD_EVENT, {"id": row["id"], "input": NOTE}, role="OPERATOR") for row in rows),
        *(gql(http, REQUEST, _override(limit["id"])) for limit in limits),
    )
    reads, acks, singles = await asyncio.gather(reading, acking, one_statement)
    # then every read answered on its path with the rows, every mutation without error
    # (the introspection root makes the second one mixed: `incidents` compiled, `__type` resolved)
    assert sorted({r.headers["x-gateway-read-path"] for r in reads}) == ["compiled", "mixed"]
    # (timestamps included: the compiled SQL formats them under the session's TimeZone and
    # DateStyle, startup parameters PgBouncer replays on whichever server connection it picks)
    assert len({str(r.json()["data"]["incidents"]) for r in reads}) == 1
    nodes = reads[0].json()["data"]["incidents"]["nodes"]
    assert sorted(n["id"] for n in nodes) == expected
    assert {n["startedAt"] for n in nodes} == {rows[0]["started_at"].isoformat()}
    assert all("errors" not in body for body in acks), acks
    assert all("errors" not in body for body in singles), singles
    async with engine.connect() as conn:
        statuses = (
            await conn.execute(text("SELECT DISTINCT status FROM incidents WHERE tenant_id='t1'"))
        ).scalars()
        assert list(statuses) == ["ACKNOWLEDGED"]
        events = "SELECT count(*) FROM incident_events WHERE event_type = 'NOTE'"
        assert (await conn.execute(text(events))).scalar() == len(rows)
        overrides = "SELECT count(*) FROM limit_overrides WHERE status = 'ACTIVE'"
        assert (await conn.execute(text(overrides))).scalar() == len(limits)
    # and the gateway's pool really was PgBouncer's client, not the database's
    assert f"login attempt: db={_database_name(pooled_url)}" in bouncer.log()
    assert " ERROR " not in bouncer.log(), bouncer.log()


async def test_subscribers_hear_mutations_made_through_pgbouncer(pooled_gateway, http, engine):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    async with subscriber(pooled_gateway.url, token("t1", "VIEWER")) as ws:
        op = await ws.subscribe(INCIDENT_CHANGED)
        await wait_for_subscribers(pooled_gateway.url, 1)
        body = await gql(http, ACK, {"id": row["id"]}, role="OPERATOR", sub="bob")
        assert "errors" not in body, body
        change = (await ws.next(op, 10))["data"]["incidentChanged"]
    assert (change["incidentId"], change["incident"]["acknowledgedBy"]) == (row["id"], "bob")


async def test_the_worker_behind_pgbouncer_runs_its_jobs(
    pooled_gateway, pooled_worker, http, engine
):
    async with subscriber(pooled_gateway.url, token("t1", "VIEWER")) as ws:
        op = await ws.subscribe(BREAKER_CHANGED, {"name": "costsim_v2"})
        assert (await ws.next(op))["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
        body = await gql(http, DISABLE, {"reason": "pooled"}, role="ADMIN")
        assert "errors" not in body, body
        assert (await ws.next(op))["data"]["circuitBreakerChanged"]["state"] == "OPEN"
        # when its TTL passes, the worker (through PgBouncer) recovers it
        await expire_breaker(engine, datetime.now(UTC) - timedelta(seconds=1))
        recovered = (await ws.next(op, 30))["data"]["circuitBreakerChanged"]
    assert recovered["state"] == "CLOSED"
    [row] = await breakers(engine)
    assert not row.disabled
    assert [a.actor for a in await audits(engine) if a.actor == "system-auto-recover"] == [
        "system-auto-recover"
    ]
    assert pooled_worker.poll() is None, "the worker exited"
