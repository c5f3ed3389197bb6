"""A repeat of a compiled operation is answered from its bound plan, without GraphQL.

The shortcut must answer exactly what the full path answers (bytes and headers), fill in the
tenant of each caller, never remember what did not compile or failed its checks, and survive
connections that died under it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from drivers import tables as t
from gateway.settings import Settings
from tests.factories import event_row, incident_row, insert_rows
from tests.helpers import serve, token

POINT = """query Point($id: ID!) {
  incident(id: $id) { id title events(first: 2) { totalCount nodes { id } } }
}"""
LIST = "query { incidents(first: 5) { totalCount nodes { id title } } }"


def _shortcuts() -> float:
    return REGISTRY.get_sample_value("gateway_prepared_reads_total") or 0.0


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh app (an empty cache of bound plans) with compiled reads on."""
    async with serve(settings.model_copy(update={"gateway_compiled_reads": True})) as http:
        yield http


async def _post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    tenant: str = "pa",
    accept: str | None = None,
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token(tenant, 'VIEWER')}"}
    if accept:
        headers["accept"] = accept
    return await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k != "x-request-id"}


async def _seed(engine, tenant: str, title: str) -> str:
    incident = incident_row(tenant, title=title)
    await insert_rows(engine, t.incidents, [incident])
    await insert_rows(
        engine, t.incident_events, [event_row(incident["id"], tenant) for _ in range(3)]
    )
    return str(incident["id"])


async def test_a_repeat_is_answered_without_graphql_with_the_same_bytes_and_headers(
    gateway, engine, count_statements
):
    # given
    incident_id = await _seed(engine, "pa", "first")
    first = await _post(gateway, POINT, {"id": incident_id})
    before = _shortcuts()
    count_statements.reset()
    # when
    second = await _post(gateway, POINT, {"id": incident_id})
    # then
    assert _shortcuts() == before + 1
    assert count_statements.count == 1
    assert first.headers["x-gateway-read-path"] == "compiled"
    assert (second.status_code, _headers(second), second.content) == (
        first.status_code,
        _headers(first),
        first.content,
    )
    assert second.json()["data"]["incident"]["events"]["totalCount"] == 3


async def test_the_graphql_response_media_type_is_kept(gateway, engine):
    # given
    media = "application/graphql-response+json"
    first = await _post(gateway, LIST, accept=media)
    before = _shortcuts()
    # when
    second = await _post(gateway, LIST, accept=media)
    # then
    assert _shortcuts() == before + 1
    assert second.headers["content-type"] == first.headers["content-type"] == media
    assert second.content == first.content


async def test_each_caller_gets_its_own_tenant_from_the_remembered_plan(gateway, engine):
    # given: the same document and variables, asked first by tenant pa
    await _seed(engine, "pa", "of pa")
    await _seed(engine, "pb", "of pb")
    mine = await _post(gateway, LIST, tenant="pa")
    before = _shortcuts()
    # when: tenant pb asks the identical request
    theirs = await _post(gateway, LIST, tenant="pb")
    # then: answered by the shortcut, with pb's rows only
    assert _shortcuts() == before + 1
    assert [n["title"] for n in mine.json()["data"]["incidents"]["nodes"]] == ["of pa"]
    assert [n["title"] for n in theirs.json()["data"]["incidents"]["nodes"]] == ["of pb"]


async def test_other_variables_are_another_request(gateway, engine):
    # given
    one = await _seed(engine, "pa", "one")
    two = await _seed(engine, "pa", "two")
    await _post(gateway, POINT, {"id": one})
    # when
    answer = await _post(gateway, POINT, {"id": two})
    # then
    assert answer.json()["data"]["incident"]["title"] == "two"


async def test_operations_that_fail_their_checks_are_never_remembered(gateway):
    # given: a bad cursor is answered on the resolver path with BAD_USER_INPUT
    query = 'query { incidents(first: 5, after: "not-a-cursor") { nodes { id } } }'
    before = _shortcuts()
    # when
    answers = [await _post(gateway, query) for _ in range(2)]
    # then
    assert _shortcuts() == before
    for answer in answers:
        assert answer.json()["data"] is None
        assert [e["extensions"]["code"] for e in answer.json()["errors"]] == ["BAD_USER_INPUT"]


async def test_a_connection_killed_under_the_pool_costs_no_answer(gateway, engine):
    # given: a remembered plan and a pool whose connections then die
    incident_id = await _seed(engine, "pa", "survivor")
    await _post(gateway, POINT, {"id": incident_id})
    async with engine.connect() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    # when
    answers = [await _post(gateway, POINT, {"id": incident_id}) for _ in range(3)]
    # then: every request answered, with the data
    for answer in answers:
        assert answer.status_code == 200
        assert answer.json()["data"]["incident"]["title"] == "survivor"
