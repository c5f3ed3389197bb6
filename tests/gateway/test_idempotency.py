"""Idempotency-Key (API.md): one write per key and body, the first answer replayed for 24 h."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from drivers import tables as t
from drivers.idempotency import purge_idempotency_keys
from gateway.settings import Settings
from tests.factories import incident_row, insert_rows
from tests.helpers import JWT_SECRET, error_codes, serve, token
from tests.live.servers import ThreadedServer

ADD_NOTE = """mutation($id: ID!, $note: String) { acknowledgeIncident(id: $id, note: $note) {
    id status acknowledgedBy
} }"""


async def _post(
    client: Any, body: dict[str, Any], key: str | None, *, tenant: str = "t1", sub: str = "carol"
) -> Any:
    headers = {"authorization": f"Bearer {token(tenant, 'OPERATOR', sub)}"}
    if key is not None:
        headers["idempotency-key"] = key
    return await client.post("/graphql", json=body, headers=headers)


async def _count(engine: Any, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_same_key_and_body_replays_the_first_answer_without_a_second_write(client, engine):
    # given an open incident
    [row] = [incident_row()]
    await insert_rows(engine, t.incidents, [row])
    body = {"query": ADD_NOTE, "variables": {"id": row["id"], "note": "on it"}}

    # when the same request is sent twice with one key
    first = await _post(client, body, "key-1")
    second = await _post(client, body, "key-1")

    # then one write, and the second answer is the first, marked as replayed
    assert first.status_code == second.status_code == 200
    assert first.json()["data"]["acknowledgeIncident"]["status"] == "ACKNOWLEDGED"
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count(engine, t.incident_events) == 1
    assert await _count(engine, t.audit_log) == 1


async def test_without_a_key_the_second_request_runs_again(client, engine):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    body = {"query": ADD_NOTE, "variables": {"id": row["id"]}}

    await _post(client, body, None)
    second = await _post(client, body, None)

    # acknowledging twice is an illegal transition: proof that it really ran again
    assert error_codes(second.json()) == ["CONFLICT"]


async def test_key_order_and_spacing_of_the_body_do_not_matter(client, engine):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    variables = {"id": row["id"], "note": "x"}

    await _post(client, {"query": ADD_NOTE, "variables": variables}, "k")
    reordered = {"variables": dict(reversed(list(variables.items()))), "query": ADD_NOTE}
    second = await _post(client, reordered, "k")

    assert second.headers["idempotent-replayed"] == "true"
    assert await _count(engine, t.incident_events) == 1


async def test_same_key_with_another_body_is_refused(client, engine):
    a, b = incident_row(), incident_row()
    await insert_rows(engine, t.incidents, [a, b])

    await _post(client, {"query": ADD_NOTE, "variables": {"id": a["id"]}}, "k")
    second = await _post(client, {"query": ADD_NOTE, "variables": {"id": b["id"]}}, "k")

    assert second.status_code == 422
    assert error_codes(second.json()) == ["CONFLICT"]
    async with engine.connect() as conn:
        status = (
            await conn.execute(select(t.incidents.c.status).where(t.incidents.c.id == b["id"]))
        ).scalar_one()
    assert status == "OPEN"


async def test_keys_are_scoped_to_tenant_and_caller(client, engine):
    mine, theirs = incident_row(tenant="t1"), incident_row(tenant="t2")
    await insert_rows(engine, t.incidents, [mine, theirs])

    one = await _post(client, {"query": ADD_NOTE, "variables": {"id": mine["id"]}}, "k")
    other_tenant = await _post(
        client, {"query": ADD_NOTE, "variables": {"id": theirs["id"]}}, "k", tenant="t2"
    )
    other_caller = await _post(
        client, {"query": ADD_NOTE, "variables": {"id": mine["id"]}}, "k", sub="dave"
    )

    assert one.json()["data"]["acknowledgeIncident"]["acknowledgedBy"] == "carol"
    assert other_tenant.json()["data"]["acknowledgeIncident"]["acknowledgedBy"] == "carol"
    # dave's key is his own: his request ran (and hit the state rule), no replay of carol's
    assert "idempotent-replayed" not in other_caller.headers
    assert error_codes(other_caller.json()) == ["CONFLICT"]


async def test_concurrent_requests_with_one_key_write_once(client, engine):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    body = {"query": ADD_NOTE, "variables": {"id": row["id"]}}

    answers = await asyncio.gather(*(_post(client, body, "race") for _ in range(6)))

    ok = [a for a in answers if a.status_code == 200]
    assert all(a.status_code in {200, 409} for a in answers)
    # every 200 is the one real answer (first or replayed); the rest were told to retry
    assert {a.json()["data"]["acknowledgeIncident"]["status"] for a in ok} == {"ACKNOWLEDGED"}
    for busy in (a for a in answers if a.status_code == 409):
        assert error_codes(busy.json()) == ["CONFLICT"]
    assert await _count(engine, t.incident_events) == 1
    assert await _count(engine, t.audit_log) == 1


async def test_an_answer_older_than_24_hours_is_forgotten(client, engine):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    body = {"query": ADD_NOTE, "variables": {"id": row["id"]}}
    await _post(client, body, "old")
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        )

    second = await _post(client, body, "old")

    assert "idempotent-replayed" not in second.headers
    assert error_codes(second.json()) == ["CONFLICT"]  # it ran again: already acknowledged


async def test_an_abandoned_claim_is_taken_over(client, engine):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    body = {"query": ADD_NOTE, "variables": {"id": row["id"]}}
    async with engine.begin() as conn:  # a claim whose process died two minutes ago
        await conn.execute(
            text(
                "INSERT INTO idempotency_keys (tenant_id, actor, key, request_hash, created_at) "
                "VALUES ('t1', 'carol', 'dead', 'whatever', now() - interval '2 minutes')"
            )
        )

    answer = await _post(client, body, "dead")

    assert answer.json()["data"]["acknowledgeIncident"]["status"] == "ACKNOWLEDGED"


@pytest.mark.parametrize(
    ("_case", "key"), [("empty", ""), ("too_long", "k" * 256), ("ctl", "a\tb")]
)
async def test_malformed_keys_are_refused_before_running(client, engine, _case, key):
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])

    answer = await _post(client, {"query": ADD_NOTE, "variables": {"id": row["id"]}}, key)

    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "Idempotency-Key"}
    assert await _count(engine, t.incident_events) == 0


async def test_purge_deletes_only_answers_past_retention(engine):
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO idempotency_keys (tenant_id, actor, key, request_hash, created_at) "
                "VALUES ('t1', 'a', 'old', 'h', now() - interval '25 hours'), "
                "('t1', 'a', 'new', 'h', now() - interval '23 hours')"
            )
        )
        assert await purge_idempotency_keys(conn) == 1
        keys = (await conn.execute(text("SELECT key FROM idempotency_keys"))).scalars().all()
    assert keys == ["new"]


@pytest.fixture(scope="module")
def live(settings: Settings) -> Iterator[ThreadedServer]:
    """The real app on uvicorn over TCP: the race needs a real connection, not ASGI in-process."""
    with ThreadedServer(settings) as server:
        yield server


async def test_a_retry_sent_the_moment_the_answer_arrives_is_a_replay(live, engine):
    # given 30 open incidents
    rows = [incident_row() for _ in range(30)]
    await insert_rows(engine, t.incidents, rows)
    headers = {"authorization": f"Bearer {token('t1', 'OPERATOR', 'carol')}"}
    pairs = []
    # when each is acknowledged with its own key and retried as soon as the 200 arrives, all
    # over one keep-alive connection
    async with httpx.AsyncClient(
        base_url=live.url, timeout=10, limits=httpx.Limits(max_connections=1)
    ) as http:
        for i, row in enumerate(rows):
            body = {"query": ADD_NOTE, "variables": {"id": row["id"]}}
            key = {"idempotency-key": f"pair-{i}"}
            first = await http.post("/graphql", json=body, headers=headers | key)
            retry = await http.post("/graphql", json=body, headers=headers | key)
            pairs.append((first, retry))
    # then every retry is the stored answer (never "still running"), and each wrote once
    assert [f.status_code for f, _ in pairs] == [200] * 30
    assert [r.status_code for _, r in pairs] == [200] * 30
    assert [r.headers.get("idempotent-replayed") for _, r in pairs] == ["true"] * 30
    assert all(r.content == f.content for f, r in pairs)
    assert await _count(engine, t.incident_events) == 30


async def test_with_the_database_down_a_keyed_request_is_503_json():
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        migrate_on_start=False,
        jwt_secret=JWT_SECRET,
        gateway_compiled_reads=False,
        gateway_background_jobs=False,
    )
    async with serve(settings) as http:
        answer = await _post(http, {"query": ADD_NOTE, "variables": {"id": "x"}}, "down")

    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/json")
    assert error_codes(answer.json()) == ["SERVICE_UNAVAILABLE"]
