"""A real streaming replica: reads go to it, writes and LISTEN to the primary, and a client reads
its own writes.

One private primary and one hot standby (initdb + pg_basebackup -R on loopback ports) serve the
whole module; the gateway runs with DATABASE_URL=primary and DATABASE_READ_URL=replica, once
with compiled reads and once on the resolver path. A lagging replica is made by pausing replay
(`pg_wal_replay_pause()`): a row written since then exists only on the primary, which tells
which server answered a read.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from drivers import tables as t
from drivers.db import make_engine
from drivers.migrate import upgrade_head
from gateway.settings import Settings
from tests.factories import incident_row, insert_rows, make_limits
from tests.gateway.test_mutation_path import ADD_EVENT, NOTE
from tests.gateway.test_override_round_trips import REQUEST
from tests.helpers import JWT_SECRET, error_codes, serve, token
from tests.live.private_postgres import PrivatePostgres, StreamingReplica

ACK = """mutation($id: ID!) { acknowledgeIncident(id: $id, note: "on it") {
    id status events(first: 5) { nodes { eventType } } } }"""
INCIDENTS = "{ incidents(first: 50) { nodes { id status } } }"
WAIT_MS = 1000  # READ_YOUR_WRITES_TIMEOUT_MS of the module's gateways


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[PrivatePostgres, StreamingReplica]]:
    primary = PrivatePostgres()
    replica = StreamingReplica(primary)
    try:
        primary.init()
        primary.start()
        upgrade_head(primary.url)
        replica.init()
        replica.start()
        yield primary, replica
    finally:
        replica.destroy()
        primary.destroy()


@pytest.fixture(scope="module")
async def primary_engine(
    cluster: tuple[PrivatePostgres, StreamingReplica],
) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(cluster[0].url, poolclass=NullPool)
    yield engine
    await engine.dispose()


def _settings(primary: str, replica: str, *, compiled: bool) -> Settings:
    return Settings(
        database_url=primary,
        database_read_url=replica,
        migrate_on_start=False,
        jwt_secret=JWT_SECRET,
        api_key_cache_seconds=0,
        db_pool_size=3,
        gateway_background_jobs=False,
        gateway_compiled_reads=compiled,
        read_your_writes_timeout_ms=WAIT_MS,
        replica_check_seconds=0.2,
        listener_ping_seconds=600,  # the LISTEN stays the connection's last query
    )


@pytest.fixture(scope="module")
async def gateways(
    cluster: tuple[PrivatePostgres, StreamingReplica],
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The gateway on the replica set, by read path: `compiled` and `resolver`."""
    primary, replica = cluster
    async with (
        serve(_settings(primary.url, replica.url, compiled=True)) as compiled,
        serve(_settings(primary.url, replica.url, compiled=False)) as resolver,
    ):
        yield {"compiled": compiled, "resolver": resolver}


async def _sql(url: str, statement: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(statement)
    finally:
        await conn.close()


async def _on_replica(replica: StreamingReplica, incident_id: str) -> None:
    """Wait until the replica has replayed the incident's insert.

    Not "replay LSN >= the primary's WAL position": that position may end inside a record that
    stays unflushed on an idle primary (a background record, no commit behind it).
    """
    seen = f"SELECT count(*) FROM incidents WHERE id = '{incident_id}'"  # noqa: S608 - our uuid
    deadline = time.monotonic() + 10
    while not await _sql(replica.url, seen):
        assert time.monotonic() < deadline, "the replica did not catch up"
        await asyncio.sleep(0.02)


async def _pause(replica: StreamingReplica) -> None:
    await _sql(replica.url, "SELECT pg_wal_replay_pause()")


async def _resume(replica: StreamingReplica) -> None:
    await _sql(replica.url, "SELECT pg_wal_replay_resume()")


async def _post(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {token('t1', 'OPERATOR')}", **headers},
    )
    assert response.status_code == 200, response.text
    return response


async def _statuses(http: httpx.AsyncClient, path: str, **headers: str) -> dict[str, str]:
    response = await _post(http, INCIDENTS, None, **headers)
    assert response.headers["x-gateway-read-path"] == path
    body = response.json()
    assert "errors" not in body, body
    return {n["id"]: n["status"] for n in body["data"]["incidents"]["nodes"]}


async def _metric(http: httpx.AsyncClient, name: str) -> float:
    text = (await http.get("/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


@pytest.fixture
async def incident(primary_engine: AsyncEngine, cluster: Any) -> AsyncIterator[dict[str, Any]]:
    """An OPEN incident on both servers; replay runs again after the test whatever happened."""
    row = incident_row()
    await insert_rows(primary_engine, t.incidents, [row])
    await _on_replica(cluster[1], row["id"])
    yield row
    await _resume(cluster[1])


@pytest.mark.parametrize("path", ["compiled", "resolver"])
async def test_plain_reads_go_to_the_replica_and_a_presented_lsn_sees_the_write(
    path: str, gateways: dict[str, httpx.AsyncClient], cluster: Any, incident: dict[str, Any]
) -> None:
    http = gateways[path]
    await _pause(cluster[1])
    # the mutation runs on the primary and its payload is read there (its event is new)
    answer = await _post(http, ACK, {"id": incident["id"]})
    payload = answer.json()["data"]["acknowledgeIncident"]
    assert payload["status"] == "ACKNOWLEDGED"
    assert [e["eventType"] for e in payload["events"]["nodes"]] == ["ACKNOWLEDGED"]
    lsn = answer.headers["x-gateway-lsn"]
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", lsn)
    # a plain read is served by the paused replica: it does not see the acknowledgement yet
    assert (await _statuses(http, path))[incident["id"]] == "OPEN"
    # presenting the LSN: the replica never gets there, so after the bounded wait the primary
    # answers, with the write
    started = time.monotonic()
    assert (await _statuses(http, path, **{"x-gateway-lsn": lsn}))[incident["id"]] == (
        "ACKNOWLEDGED"
    )
    assert WAIT_MS / 1000 <= time.monotonic() - started < 10
    served = 'gateway_read_your_writes_total{served_by="primary"}'
    assert await _metric(http, served) >= 1
    # the replica's lag shows while it is paused behind a commit
    deadline = time.monotonic() + 10
    while await _metric(http, "gateway_replica_lag_seconds") <= 0:
        assert time.monotonic() < deadline, "no replica lag reported"
        await asyncio.sleep(0.1)
    assert await _metric(http, "gateway_replica_up") == 1


async def test_one_statement_mutations_write_on_the_primary(
    gateways: dict[str, httpx.AsyncClient],
    primary_engine: AsyncEngine,
    incident: dict[str, Any],
) -> None:
    # the plain pool of addIncidentEvent/requestOverride is the primary's: on the read-only
    # replica either statement would fail
    [limit] = await make_limits(primary_engine, 1)
    for query, variables in (
        (ADD_EVENT, {"id": incident["id"], "input": NOTE}),
        (
            REQUEST,
            {
                "input": {
                    "limitId": limit["id"],
                    "overrideValue": "150",
                    "durationHours": 1,
                    "reason": "replica test",
                }
            },
        ),
    ):
        answer = await _post(gateways["compiled"], query, variables)
        assert "errors" not in answer.json(), answer.json()
        assert "x-gateway-lsn" in answer.headers  # it committed


async def test_a_presented_lsn_waits_for_the_replica_to_replay_it(
    gateways: dict[str, httpx.AsyncClient], cluster: Any, incident: dict[str, Any]
) -> None:
    http = gateways["compiled"]
    await _pause(cluster[1])
    lsn = (await _post(http, ACK, {"id": incident["id"]})).headers["x-gateway-lsn"]
    served = 'gateway_read_your_writes_total{served_by="replica"}'
    before = await _metric(http, served)

    async def resume_soon() -> None:
        await asyncio.sleep(0.1)
        await _resume(cluster[1])

    resumed = asyncio.create_task(resume_soon())
    statuses = await _statuses(http, "compiled", **{"x-gateway-lsn": lsn})
    await resumed
    # served by the replica once it replayed the write, within the wait
    assert statuses[incident["id"]] == "ACKNOWLEDGED"
    assert await _metric(http, served) == before + 1


async def test_a_malformed_lsn_is_bad_user_input(gateways: dict[str, httpx.AsyncClient]) -> None:
    response = await gateways["resolver"].post(
        "/graphql",
        json={"query": INCIDENTS},
        headers={"authorization": f"Bearer {token()}", "x-gateway-lsn": "yesterday"},
    )
    assert response.status_code == 400
    body = response.json()
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "X-Gateway-LSN"


async def test_listen_runs_on_the_primary(
    gateways: dict[str, httpx.AsyncClient], cluster: Any
) -> None:
    primary, replica = cluster
    count = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
    # one LISTEN connection per gateway, none on the replica (a standby refuses LISTEN)
    assert await _sql(primary.url, count) == len(gateways)
    assert await _sql(replica.url, count) == 0


async def test_replica_down_reads_use_the_primary_and_readyz_is_degraded(
    gateways: dict[str, httpx.AsyncClient],
    cluster: Any,
    incident: dict[str, Any],
    primary_engine: AsyncEngine,
) -> None:
    _, replica = cluster
    await asyncio.to_thread(replica.stop)  # the loop sees its connections close meanwhile
    try:
        # written while the replica is down: only the primary can answer it
        late = incident_row()
        await insert_rows(primary_engine, t.incidents, [late])
        for path, http in gateways.items():
            assert (await _statuses(http, path))[late["id"]] == "OPEN"
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert (ready.json()["status"], ready.json()["reason"]) == ("degraded", "replica")
            # The gauge is process-wide and both in-process gateways' watchers write it: the
            # other one may still set 1 from a check it started before the stop.
            deadline = time.monotonic() + 5
            while await _metric(http, "gateway_replica_up") != 0:
                assert time.monotonic() < deadline, "gateway_replica_up stayed 1"
                await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(replica.start)
    # back up: ready again, and reads return to the replica (paused, it misses a new row)
    for http in gateways.values():
        deadline = time.monotonic() + 15
        while (await http.get("/readyz")).json()["status"] != "ok":
            assert time.monotonic() < deadline, "the replica did not come back"
            await asyncio.sleep(0.1)
    await _on_replica(replica, late["id"])
    await _pause(replica)
    unseen = incident_row()
    await insert_rows(primary_engine, t.incidents, [unseen])
    for path, http in gateways.items():
        assert unseen["id"] not in await _statuses(http, path), path
