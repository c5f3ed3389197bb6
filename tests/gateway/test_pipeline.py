"""The request pipeline: body limits before anything reads the body, and the order of the steps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from drivers import tables as t
from gateway.body_limits import MAX_JSON_DEPTH
from gateway.settings import Settings
from tests.factories import incident_row, insert_rows
from tests.helpers import serve, token

LIMIT = 4096
ACK = "mutation($id: ID!, $note: String) { acknowledgeIncident(id: $id, note: $note) { status } }"


def _headers(**extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token()}", "content-type": "application/json", **extra}


def _nested(depth: int) -> Any:
    """A JSON value `depth` arrays deep."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.fixture(scope="module")
async def small(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with MAX_REQUEST_BYTES at 4 KiB."""
    async with serve(settings.model_copy(update={"max_request_bytes": LIMIT})) as http:
        yield http


async def _events(engine: Any) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(t.incident_events))).scalar_one()
        )


async def test_a_body_nested_100000_levels_deep_is_a_400_not_a_500(client):
    deep = b'{"query": "{ viewer { role } }", "variables": {"a": ' + b"[" * 100_000
    deep += b"]" * 100_000 + b"}}"
    # when
    response = await client.post("/graphql", content=deep, headers=_headers())
    # then
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "depth" in error["message"]


async def test_variables_may_nest_up_to_the_bound_and_no_deeper(client):
    query = "{ viewer { role } }"  # unused variables are allowed and ignored
    at_bound = {"query": query, "variables": {"a": _nested(MAX_JSON_DEPTH - 1)}}
    deeper = {"query": query, "variables": {"a": _nested(MAX_JSON_DEPTH)}}

    ok = await client.post("/graphql", content=orjson.dumps(at_bound), headers=_headers())
    refused = await client.post("/graphql", content=orjson.dumps(deeper), headers=_headers())

    assert ok.status_code == 200
    assert ok.json() == {"data": {"viewer": {"role": "ADMIN"}}}
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "variables",
    }


async def test_a_body_over_the_limit_is_413_and_runs_nothing(small, engine):
    # given an open incident and an acknowledgement whose note makes the body too large
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    body = orjson.dumps({"query": ACK, "variables": {"id": row["id"], "note": "x" * LIMIT}})
    # when
    response = await small.post("/graphql", content=body, headers=_headers())
    # then
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert str(LIMIT) in error["message"]
    assert await _events(engine) == 0


async def test_a_streamed_body_without_content_length_is_cut_off_at_the_limit(small):
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ viewer { role } }", "variables": {"pad": "'
        for _ in range(10):
            yield b"y" * 1024
        yield b'"}}'

    response = await small.post("/graphql", content=chunks(), headers=_headers())

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}


async def test_a_body_at_the_limit_is_served(small):
    head = b'{"query": "{ viewer { role } }", "variables": {"pad": "'
    tail = b'"}}'
    body = head + b"z" * (LIMIT - len(head) - len(tail)) + tail
    assert len(body) == LIMIT

    response = await small.post("/graphql", content=body, headers=_headers())

    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"role": "ADMIN"}}}


async def test_a_get_whose_variables_exceed_the_limit_is_413(small):
    variables = orjson.dumps({"pad": "v" * LIMIT}).decode()
    response = await small.get(
        "/graphql",
        params={"query": "{ viewer { role } }", "variables": variables},
        headers=_headers(),
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}


async def test_body_limits_come_before_authentication(small):
    # an oversized request without a token is refused for its size: its body was never decoded
    response = await small.post(
        "/graphql",
        content=b" " * (LIMIT + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_authentication_comes_before_the_idempotency_key(client, engine):
    # a malformed key from a caller without a token: the caller is refused first
    response = await client.post(
        "/graphql",
        json={"query": "{ viewer { role } }"},
        headers={"idempotency-key": "", "content-type": "application/json"},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    async with engine.connect() as conn:
        keys = (
            await conn.execute(select(func.count()).select_from(t.idempotency_keys))
        ).scalar_one()
    assert keys == 0
