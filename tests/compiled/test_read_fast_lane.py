"""The read fast lane: a POST of bytes the shortcut answered before goes straight to the plan.

It must answer what the pipeline answers (bytes, headers, request id, metrics), for the caller
of each request (authentication, tenant), and leave to the pipeline every request one of its
steps must see: other bytes, Idempotency-Key, X-Gateway-LSN, a streaming Accept, a bad token,
a named document; with TRUSTED_DOCUMENTS=only it is not there at all.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY

from drivers import tables as t
from drivers.trusted_documents import document_hash
from gateway.settings import Settings
from tests.factories import incident_row, insert_rows
from tests.helpers import post_bytes, serve

LIST = "query { incidents(first: 5) { totalCount nodes { id title } } }"


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _lane() -> float:
    return _sample("gateway_read_fast_lane_total")


def _shortcuts() -> float:
    return _sample("gateway_prepared_reads_total")


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh app (empty caches) with compiled reads on."""
    async with serve(settings.model_copy(update={"gateway_compiled_reads": True})) as http:
        yield http


def _body(query: str = LIST, **extra: Any) -> bytes:
    return orjson.dumps({"query": query, **extra})


async def _post(client: httpx.AsyncClient, body: bytes, **options: Any) -> httpx.Response:
    return await post_bytes(client, body, role="VIEWER", **options)


async def _warm(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    """The view answers (and remembers the plan), then the shortcut (and remembers the body)."""
    first = await _post(client, body)
    await _post(client, body)
    return first


async def _seed(engine: Any, tenant: str, title: str) -> None:
    await insert_rows(engine, t.incidents, [incident_row(tenant, title=title)])


async def test_the_third_identical_post_takes_the_lane_with_the_pipelines_bytes_and_headers(
    gateway, engine, count_statements
):
    # given
    await _seed(engine, "pa", "one")
    first = await _warm(gateway, _body())
    lane, shortcuts = _lane(), _shortcuts()
    count_statements.reset()
    # when
    third = await _post(gateway, _body())
    # then: one SELECT, counted as a shortcut answer of the lane
    assert (_lane(), _shortcuts()) == (lane + 1, shortcuts + 1)
    assert count_statements.count == 1
    assert third.content == first.content
    assert list(third.headers.keys()) == list(first.headers.keys())
    assert {k: v for k, v in third.headers.items() if k != "x-request-id"} == {
        k: v for k, v in first.headers.items() if k != "x-request-id"
    }
    assert third.headers["x-gateway-read-path"] == "compiled"
    assert re.fullmatch(r"[0-9a-f]{32}", third.headers["x-request-id"])
    assert third.headers["x-request-id"] != first.headers["x-request-id"]


async def test_a_safe_request_id_is_echoed_and_an_unsafe_one_replaced(gateway):
    # given
    await _warm(gateway, _body())
    lane = _lane()
    # when
    safe = await _post(gateway, _body(), x_request_id="trace-42.a_b")
    unsafe = await _post(gateway, _body(), x_request_id="bad id!")
    # then
    assert _lane() == lane + 2
    assert safe.headers["x-request-id"] == "trace-42.a_b"
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])


async def test_each_caller_gets_its_own_tenant_through_the_lane(gateway, engine):
    # given: the body remembered from tenant pa's requests
    await _seed(engine, "pa", "of pa")
    await _seed(engine, "pb", "of pb")
    await _warm(gateway, _body())
    lane = _lane()
    # when: tenant pb sends the same bytes
    theirs = await _post(gateway, _body(), tenant="pb")
    # then
    assert _lane() == lane + 1
    assert [n["title"] for n in theirs.json()["data"]["incidents"]["nodes"]] == ["of pb"]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [("Bearer not-a-jwt", "UNAUTHENTICATED"), ("Basic abc", "UNAUTHENTICATED")],
)
async def test_a_credential_that_fails_is_refused_by_the_pipeline(gateway, authorization, code):
    # given
    await _warm(gateway, _body())
    lane = _lane()
    refused = _sample("gateway_http_requests_total", path="/graphql", status="401")
    # when
    answer = await _post(gateway, _body(), authorization=authorization)
    # then
    assert _lane() == lane
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert [e["extensions"]["code"] for e in answer.json()["errors"]] == [code]
    assert _sample("gateway_http_requests_total", path="/graphql", status="401") == refused + 1


async def test_a_lane_answer_counts_its_status_and_latency(gateway):
    # given
    await _warm(gateway, _body())
    ok = _sample("gateway_http_requests_total", path="/graphql", status="200")
    timed = _sample("gateway_http_request_seconds_count", path="/graphql")
    operations = _sample("gateway_graphql_operations_total", path="compiled")
    # when
    await _post(gateway, _body())
    # then
    assert _sample("gateway_http_requests_total", path="/graphql", status="200") == ok + 1
    assert _sample("gateway_http_request_seconds_count", path="/graphql") == timed + 1
    assert _sample("gateway_graphql_operations_total", path="compiled") == operations + 1


@pytest.mark.parametrize(
    "headers",
    [
        {"idempotency_key": "k-1"},
        {"x_gateway_lsn": "0/16B3748"},
        {"accept": "multipart/mixed"},
    ],
)
async def test_requests_a_step_must_see_take_the_pipeline(gateway, headers):
    # given
    await _warm(gateway, _body())
    lane = _lane()
    # when
    answer = await _post(gateway, _body(), **headers)
    # then: answered, but not by the lane
    assert _lane() == lane
    assert answer.status_code == 200
    assert answer.json()["data"]["incidents"]["totalCount"] == 0


async def test_other_bytes_of_the_same_operation_take_the_shortcut_then_the_lane(gateway):
    # given: the operation remembered from compact JSON
    await _warm(gateway, _body())
    spaced = orjson.dumps({"query": LIST}, option=orjson.OPT_INDENT_2)
    lane, shortcuts = _lane(), _shortcuts()
    # when
    first = await _post(gateway, spaced)
    second = await _post(gateway, spaced)
    # then: the shortcut answers the new bytes once (the plan is known), then the lane
    assert (_shortcuts(), _lane()) == (shortcuts + 2, lane + 1)
    assert first.content == second.content


async def test_a_named_document_is_never_remembered(gateway):
    # given: the APQ form of the query (TRUSTED_DOCUMENTS=allow checks its hash every time)
    apq = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(LIST)}}
    body = _body(extensions=apq)
    await _warm(gateway, body)
    lane = _lane()
    # when
    answer = await _post(gateway, body)
    # then
    assert _lane() == lane
    assert answer.json()["data"]["incidents"]["totalCount"] == 0


async def test_with_trusted_documents_only_there_is_no_lane(settings: Settings):
    # given
    only = settings.model_copy(update={"gateway_compiled_reads": True, "trusted_documents": "only"})
    async with serve(only) as gateway:
        lane = _lane()
        # when: an unregistered query, three times
        answers = [await _post(gateway, _body()) for _ in range(3)]
    # then: every one refused by the registry's check
    assert _lane() == lane
    for answer in answers:
        assert answer.status_code == 403
        assert answer.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_body_over_the_limit_is_still_refused_with_413(settings: Settings):
    # given: a 100-byte limit, and a longer body the lane stops reading past it
    small = settings.model_copy(update={"gateway_compiled_reads": True, "max_request_bytes": 100})
    body = _body(LIST + " " * 200)
    async with serve(small) as gateway:
        # when
        answers = [await _post(gateway, body) for _ in range(3)]
    # then
    for answer in answers:
        assert answer.status_code == 413
        assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
