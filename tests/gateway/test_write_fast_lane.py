"""The fast lane's mutations (gateway/fast_lane.py): the pipeline's answer, without its steps.

A planned mutation is run by the lane for the caller of each request, with the pipeline's
bytes, headers, request id and metrics; whatever a pipeline step must see (Idempotency-Key,
a bad credential, a body the pipeline refuses, a stored document) is left to the pipeline.
tests/gateway/test_prepared_writes.py's differential test compares every mutation of the suite
with MUTATION_FAST_PATH on (the lane) and off (the view).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t
from drivers.trusted_documents import document_hash
from gateway.settings import Settings
from tests.factories import incident_row, insert_rows
from tests.helpers import post_bytes, serve, token

ADD_EVENT = """mutation Add($id: ID!, $text: String!) {
  addIncidentEvent(incidentId: $id, input: { eventType: NOTE, description: $text }) {
    incidentId eventType description
  }
}"""


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _lane() -> float:
    return _sample("gateway_write_fast_lane_total")


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings.model_copy(update={"mutation_fast_path": True})) as http:
        yield http


@pytest.fixture
async def view(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings.model_copy(update={"mutation_fast_path": False})) as http:
        yield http


@pytest.fixture
async def incident(engine: AsyncEngine) -> dict[str, Any]:
    row = incident_row("pa")
    await insert_rows(engine, t.incidents, [row])
    return row


def _body(incident_id: str, text: str = "note", **extra: Any) -> bytes:
    variables = {"id": incident_id, "text": text}
    return orjson.dumps({"query": ADD_EVENT, "variables": variables, **extra})


async def _post(client: httpx.AsyncClient, body: bytes, **options: Any) -> httpx.Response:
    return await post_bytes(client, body, role="OPERATOR", **options)


async def _events(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        query = select(t.incident_events.c.description).order_by(t.incident_events.c.description)
        return list((await conn.execute(query)).scalars())


async def test_a_planned_mutation_is_run_by_the_lane_with_the_views_bytes_and_headers(
    gateway, view, engine, incident, count_statements
):
    # given: the view's answer to the same mutation
    expected = await _post(view, _body(incident["id"], "by the view"))
    lane = _lane()
    ok = _sample("gateway_http_requests_total", path="/graphql", status="200")
    timed = _sample("gateway_http_request_seconds_count", path="/graphql")
    count_statements.reset()
    # when: the first request plans the document, the second finds the plan
    first = await _post(gateway, _body(incident["id"], "by the lane"))
    second = await _post(gateway, _body(incident["id"], "by the lane 2"))
    # then: both through the lane, one statement each, counted once each
    assert _lane() == lane + 2
    assert count_statements.count == 2
    assert _sample("gateway_http_requests_total", path="/graphql", status="200") == ok + 2
    assert _sample("gateway_http_request_seconds_count", path="/graphql") == timed + 2
    assert first.content == expected.content.replace(b"by the view", b"by the lane")
    assert second.json()["data"]["addIncidentEvent"]["description"] == "by the lane 2"
    assert list(first.headers.keys()) == list(expected.headers.keys())
    assert {k: v for k, v in first.headers.items() if k != "x-request-id"} == {
        k: v for k, v in expected.headers.items() if k != "x-request-id"
    }
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert await _events(engine) == ["by the lane", "by the lane 2", "by the view"]


async def test_the_callers_request_id_is_the_audit_rows(gateway, engine, incident):
    # when
    answer = await _post(gateway, _body(incident["id"]), x_request_id="trace-7.w")
    # then
    assert answer.headers["x-request-id"] == "trace-7.w"
    async with engine.connect() as conn:
        ids = (await conn.execute(select(t.audit_log.c.request_id))).scalars().all()
    assert ids == ["trace-7.w"]


async def test_each_caller_writes_as_its_own_tenant(gateway, engine, incident):
    # given: the plan made by tenant pa's request
    await _post(gateway, _body(incident["id"], "of pa"))
    lane = _lane()
    # when: tenant pb sends the same document for pa's incident
    theirs = await _post(gateway, _body(incident["id"], "of pb"), tenant="pb")
    # then: run by the lane, and NOT_FOUND for pb, with nothing written
    assert _lane() == lane + 1
    assert [e["extensions"]["code"] for e in theirs.json()["errors"]] == ["NOT_FOUND"]
    assert await _events(engine) == ["of pa"]


async def test_a_role_refusal_is_the_pipelines(gateway, view, incident):
    # given
    lane = _lane()
    viewer = f"Bearer {token('pa', 'VIEWER')}"
    # when
    refused = await _post(gateway, _body(incident["id"]), authorization=viewer)
    expected = await _post(view, _body(incident["id"]), authorization=viewer)
    # then: declined before anything ran; the pipeline's answer
    assert _lane() == lane
    assert (refused.status_code, refused.content) == (expected.status_code, expected.content)
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("authorization", "status"),
    [("Bearer not-a-jwt", 401), ("Basic abc", 401)],
)
async def test_a_credential_that_fails_is_refused_by_the_pipeline(
    gateway, engine, incident, authorization, status
):
    # given
    lane = _lane()
    # when
    answer = await _post(gateway, _body(incident["id"]), authorization=authorization)
    # then
    assert _lane() == lane
    assert answer.status_code == status
    assert answer.headers["www-authenticate"] == "Bearer"
    assert await _events(engine) == []


@pytest.mark.parametrize(
    ("extra", "headers"),
    [
        ({}, {"idempotency_key": "k-1"}),
        ({}, {"accept": "text/event-stream"}),
        # a named document: TRUSTED_DOCUMENTS=allow checks its hash in the pipeline
        ({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}}, {}),
    ],
)
async def test_requests_a_step_must_see_take_the_pipeline(gateway, incident, extra, headers):
    # given
    lane = _lane()
    # when
    answer = await _post(gateway, _body(incident["id"], **extra), **headers)
    # then: answered, but not by the lane
    assert _lane() == lane
    assert answer.status_code in {200, 400}


async def test_a_body_the_pipeline_refuses_is_refused_there(gateway, engine, incident):
    # given: variables that are no object
    body = orjson.dumps({"query": ADD_EVENT, "variables": ["mutation"]})
    lane = _lane()
    # when
    answer = await _post(gateway, body)
    # then
    assert _lane() == lane
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(t.audit_log))).scalar() == 0


async def test_a_stored_documents_hash_is_not_trusted_on_the_lane(gateway, incident):
    # given: an APQ hash that matches the document
    apq = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(ADD_EVENT)}}
    lane = _lane()
    # when
    answer = await _post(gateway, _body(incident["id"], extensions=apq))
    # then: the pipeline's registry step ran, then the plan (not the lane)
    assert _lane() == lane
    assert answer.json()["data"]["addIncidentEvent"]["description"] == "note"
