"""The bench's hand-written floors answer exactly what our gateway answers (no timing here).

A floor that drifts from the gateway (a new default, another cursor format) would make every
"% of floor" in bench/RESULTS.md compare different work; `make bench` checks it on its own data,
these tests check it on a small seed in every `make test`, both read paths, and the HTTP floor.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from bench.compare import comparable, first_difference, normalise
from bench.floor import RefusedWrite, once, run_statement
from bench.http_floor import FloorApp
from bench.peer_sql import WRITE_TENANT
from bench.queries import QUERIES, QuerySpec
from bench.seed import Scale, seed
from tests.helpers import gql

SMALL = Scale(tenants=2, incidents=30, events=6, limits=25, breaches=4, overrides=2, lessons=10)
_SPECS = {q.key: q for q in QUERIES}
_WRITE_LIMIT = f"{WRITE_TENANT}-lim-00001"


def _dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _seeded(engine: Any) -> None:
    async with engine.begin() as conn:
        await seed(conn, SMALL)


def _same(got: Any, want: Any) -> str | None:
    return first_difference(normalise(got, want), normalise(want, want))


@pytest.mark.parametrize("key", ["Q1", "Q2", "Q5", "Q6"])
@pytest.mark.parametrize("path", ["resolver", "compiled"])
async def test_read_floor_equals_the_gateway(
    engine, database_url, client, compiled_client, key, path
):
    # given
    await _seeded(engine)
    spec = _SPECS[key]
    http = compiled_client if path == "compiled" else client
    # when
    floor = await once(_dsn(database_url), spec)
    body = await gql(http, spec.ours, spec.variables, tenant=spec.tenant, role="OPERATOR")
    # then
    assert "errors" not in body, body
    assert _same(body["data"], floor) is None


async def test_q5_floor_reads_the_readme_console_rows(engine, database_url):
    # given
    await _seeded(engine)
    # when
    data = await once(_dsn(database_url), _SPECS["Q5"])
    # then: 20 of bench-1's 30 OPEN incidents, most severe first; limits of type COST_USD
    incidents = data["incidents"]
    assert incidents["totalCount"] == 30
    assert incidents["pageInfo"]["hasNextPage"] is True
    assert [n["severity"] for n in incidents["nodes"][:8]] == ["CRITICAL"] * 7 + ["HIGH"]
    assert len(data["limits"]["nodes"]) == 20
    assert data["viewer"] == {"tenantId": "bench-1", "role": "OPERATOR"}


async def _write_limit(engine: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO limits (id, tenant_id, name, limit_category, limit_type, max_value,"
                " reset_period) VALUES (:id, :t, 'w', 'BUDGET', 'COST_USD', 100, 'MONTHLY')"
            ),
            {"id": _WRITE_LIMIT, "t": WRITE_TENANT},
        )
        await conn.execute(
            text(
                "INSERT INTO limit_integrity (tenant_id, limit_id, integrity_status,"
                " integrity_score) VALUES (:t, :id, 'VERIFIED', 1)"
            ),
            {"id": _WRITE_LIMIT, "t": WRITE_TENANT},
        )


def _first_request(spec: QuerySpec) -> dict[str, Any]:
    return {k: v.replace("__ROT__", "00001") for k, v in spec.variables.items()}


_WRITTEN = {
    "outbox": "SELECT kind FROM change_outbox ORDER BY id",
    "snapshots": "SELECT kind, entity_id, (snapshot->>'updated_at')::timestamptz FROM change_snapshots",
    "audit": "SELECT operation, entity_type, array(SELECT jsonb_object_keys(after) ORDER BY 1)"
    " FROM audit_log",
    "incident": "SELECT updated_at FROM incidents WHERE id = $1",
}


async def _written(conn: asyncpg.Connection, incident_id: str) -> dict[str, Any]:
    """What a Q4 write left: the outbox's kinds, the snapshots, the audit rows, updated_at."""
    return {
        "outbox": [r[0] for r in await conn.fetch(_WRITTEN["outbox"])],
        "snapshots": [tuple(r) for r in await conn.fetch(_WRITTEN["snapshots"])],
        "audit": [tuple(r) for r in await conn.fetch(_WRITTEN["audit"])],
        "incident": await conn.fetchval(_WRITTEN["incident"], incident_id),
    }


async def test_q4_floor_writes_what_add_incident_event_writes(engine, database_url, client):
    # given
    await _seeded(engine)
    spec = _SPECS["Q4"]
    tenant, incident_id = spec.args_for(0)
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        # when: the floor's write, looked at inside its transaction (the gateway's outbox
        # publisher never sees it), then rolled back; then ours, committed
        transaction = conn.transaction()
        await transaction.start()
        await run_statement(conn, spec, (tenant, incident_id))
        floor = await _written(conn, incident_id)
        await transaction.rollback()
        body = await gql(
            client, spec.ours, {"incidentId": incident_id}, tenant=tenant, role="OPERATOR"
        )
        ours = await _written(conn, incident_id)
    finally:
        await conn.close()
    # then: the same payload shape and the same rows: an audit row with the event's jsonb, the
    # incident's snapshot at its new updated_at, two changes in the same order
    assert "errors" not in body, body
    assert floor["outbox"] == ["INCIDENT_UPDATED", "INCIDENT_EVENT_ADDED"]
    assert floor["snapshots"] == [("INCIDENT_UPDATED", incident_id, floor["incident"])]
    assert ours["snapshots"] == [("INCIDENT_UPDATED", incident_id, ours["incident"])]
    assert floor["audit"] == ours["audit"]


async def test_q7_floor_writes_what_request_override_writes(engine, database_url, client):
    # given
    await _write_limit(engine)
    spec = _SPECS["Q7"]
    # when: the floor's write (rolled back), then ours
    floor = await once(_dsn(database_url), spec)
    body = await gql(client, spec.ours, _first_request(spec), tenant=spec.tenant, role="OPERATOR")
    # then: the same payload, and ours wrote the override and its audit row
    assert "errors" not in body, body
    assert _same(comparable(body["data"], mutation=True), comparable(floor, mutation=True)) is None
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT o.status, a.operation FROM limit_overrides o"
                    " JOIN audit_log a ON a.entity_id = o.id WHERE o.limit_id = :id"
                ),
                {"id": _WRITE_LIMIT},
            )
        ).all()
    assert [tuple(r) for r in rows] == [("PENDING", "requestOverride")]


async def test_q7_second_request_for_the_limit_is_refused_by_both(engine, database_url, client):
    # given: an open override on the limit (the bench's cleanup is what prevents this)
    await _write_limit(engine)
    spec = _SPECS["Q7"]
    first = await gql(client, spec.ours, _first_request(spec), tenant=spec.tenant, role="OPERATOR")
    assert "errors" not in first
    # when
    again = await gql(client, spec.ours, _first_request(spec), tenant=spec.tenant, role="OPERATOR")
    # then: ours says CONFLICT, the floor writes nothing (the runner counts both as errors)
    assert [e["extensions"]["code"] for e in again["errors"]] == ["CONFLICT"]
    with pytest.raises(RefusedWrite):
        await once(_dsn(database_url), spec)


async def test_http_floor_answers_the_floor_statement(engine, database_url):
    # given
    await _seeded(engine)
    spec = _SPECS["Q6"]
    app = FloorApp(_dsn(database_url), pool_size=2)
    # when
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://floor.test"
        ) as http,
    ):
        answer = await http.post("/graphql", json={"q": spec.key, "args": list(spec.floor_args)})
        probe = await http.post("/graphql", json={"query": "{ __typename }"})
    # then
    assert answer.status_code == 200
    assert answer.json() == {"data": await once(_dsn(database_url), spec)}
    assert probe.json() == {"data": {"__typename": "Query"}}
