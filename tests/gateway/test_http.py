"""The HTTP surface: health, metrics, request ids, GET/POST transport and query limits."""

from __future__ import annotations

import re

import pytest

from drivers.migrate import head_revision
from tests.helpers import error_codes, gql, token

GRAPHQL_RESPONSE = "application/graphql-response+json"
INTROSPECTION = (
    "{ __schema { types { name fields { name type { name ofType { name ofType { name } } } } } } }"
)


def _auth(**headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token()}", **headers}


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_migration_revision(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "revision": head_revision(), "listener": "connected"}


async def test_metrics_count_http_requests(client):
    # given at least one request on a known path
    await client.get("/healthz")
    # when
    response = await client.get("/metrics")
    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert re.search(
        r'^gateway_http_requests_total\{path="/healthz",status="200"\} [1-9]', response.text, re.M
    )


async def test_request_id_is_echoed_when_given_and_generated_when_not(client):
    given = await client.get("/healthz", headers={"x-request-id": "trace-42.a_b"})
    generated = await client.get("/healthz")
    unsafe = await client.get("/healthz", headers={"x-request-id": "no spaces\tor tabs"})
    assert given.headers["x-request-id"] == "trace-42.a_b"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])
    # and GraphQL responses (401s included) carry it too
    denied = await client.post(
        "/graphql", json={"query": "{ viewer { role } }"}, headers={"x-request-id": "r-401"}
    )
    assert (denied.status_code, denied.headers["x-request-id"]) == (401, "r-401")


async def test_get_query_with_a_token_works(client):
    response = await client.get("/graphql", params={"query": "{viewer{role}}"}, headers=_auth())
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"role": "ADMIN"}}}


async def test_get_mutation_is_refused(client):
    query = 'mutation { acknowledgeIncident(id: "x") { id } }'
    response = await client.get("/graphql", params={"query": query}, headers=_auth())
    assert 400 <= response.status_code < 500
    assert "mutations are not allowed" in response.text


async def test_graphql_response_media_type_when_asked_for(client):
    # when
    response = await client.post(
        "/graphql", json={"query": "{ viewer { role } }"}, headers=_auth(accept=GRAPHQL_RESPONSE)
    )
    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json() == {"data": {"viewer": {"role": "ADMIN"}}}


@pytest.mark.parametrize(
    ("accept", "status", "media_type"),
    [
        pytest.param(GRAPHQL_RESPONSE, 400, GRAPHQL_RESPONSE, id="_case_graphql_response_json"),
        pytest.param("application/json", 200, "application/json", id="_case_legacy_json"),
    ],
)
async def test_syntax_error_is_bad_user_input(client, accept, status, media_type):
    # when
    response = await client.post(
        "/graphql", json={"query": "{ viewer { role "}, headers=_auth(accept=accept)
    )
    # then
    assert response.status_code == status
    assert response.headers["content-type"].startswith(media_type)
    body = response.json()
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"].startswith("Syntax Error:")


async def test_too_deep_query_is_refused(client):
    # depth 11: incident > breaches > limit > breaches > nodes > incident > ... > id
    query = """query($id: ID!) { incident(id: $id) { breaches { limit { breaches { nodes {
      incident { breaches { limit { breaches { nodes { id } } } } }
    } } } } } }"""
    body = await gql(client, query, {"id": "x"})
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["errors"][0]["message"] == "query depth 11 exceeds 10"
    # one level less runs
    ok = query.replace("nodes { id }", "totalCount")
    assert await gql(client, ok, {"id": "x"}) == {"data": {"incident": None}}


async def test_too_many_aliases_are_refused(client):
    query = "{ " + " ".join(f"a{i}: viewer {{ role }}" for i in range(31)) + " }"
    body = await gql(client, query)
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["errors"][0]["message"] == "31 aliases exceed 30"
    ok = await gql(client, query.replace("a30: viewer { role }", ""))
    assert "errors" not in ok and len(ok["data"]) == 30


async def test_too_many_tokens_are_refused(client):
    query = "{ viewer { " + "role " * 2000 + "} }"
    body = await gql(client, query)
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    assert "more than 2000 tokens" in body["errors"][0]["message"]


async def test_too_costly_query_is_refused(client, count_statements):
    # each alias costs 20201: 1 + 100 nodes + 100 breaches + 100*100 nodes + 100*100 ids
    one = "limits(first: 100) { nodes { breaches(first: 100) { nodes { id } } } }"
    query = "{ " + " ".join(f"a{i}: {one}" for i in range(3)) + " }"
    count_statements.reset()
    body = await gql(client, query)
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["errors"][0]["message"] == "estimated cost 60603 exceeds 50000"
    assert count_statements.count == 0  # refused before any SQL
    ok = await gql(client, "{ " + " ".join(f"a{i}: {one}" for i in range(2)) + " }")
    assert "errors" not in ok


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param("{ limits(first: 101) { nodes { id } } }", {}, id="_case_literal"),
        pytest.param(
            "query($n: Int!) { limits(first: $n) { nodes { id } } }",
            {"n": 101},
            id="_case_variable",
        ),
        pytest.param(
            "query($n: Int!) { limits { nodes { breaches(first: $n) { nodes { id } } } } }",
            {"n": 101},
            id="_case_nested_variable",
        ),
        pytest.param("{ limits(first: 0) { nodes { id } } }", {}, id="_case_zero"),
        pytest.param(
            "query($n: Int!) { limits(first: $n) { nodes { id } } }",
            {"n": 101.0},
            id="_case_integral_float_variable",
        ),
    ],
)
async def test_page_size_over_100_is_refused(client, query, variables):
    body = await gql(client, query, variables)
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["data"] is None


async def test_introspection_works_under_the_limits(client):
    # when
    body = await gql(client, INTROSPECTION)
    # then
    assert "errors" not in body, body
    types = {t["name"]: t for t in body["data"]["__schema"]["types"]}
    assert {"Query", "Mutation", "Incident", "Limit", "LimitConnection"} <= types.keys()
    fields = {f["name"] for f in types["Limit"]["fields"]}
    assert {"effectiveValue", "breachCount30d", "breaches", "activeOverride"} <= fields


async def test_first_variable_of_the_wrong_type_is_bad_user_input(client):
    query = "query($n: Int!) { limits(first: $n) { nodes { id } } }"
    body = await gql(client, query, {"n": "abc"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "Int cannot represent" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("role", "query", "status", "code"),
    [
        pytest.param(
            "VIEWER",
            'mutation { acknowledgeIncident(id: "x") { id } }',
            200,
            "FORBIDDEN",
            id="_case_field_error_with_null_data",
        ),
        pytest.param(
            "ADMIN",
            "{ limits(first: 101) { nodes { id } } }",
            400,
            "QUERY_TOO_COMPLEX",
            id="_case_refused_before_execution",
        ),
    ],
)
async def test_graphql_response_status_follows_whether_execution_started(
    client, role, query, status, code
):
    # when
    response = await client.post(
        "/graphql",
        json={"query": query},
        headers={"authorization": f"Bearer {token(role=role)}", "accept": GRAPHQL_RESPONSE},
    )
    # then (GraphQL over HTTP: an executed operation answers 2xx even when data is null)
    assert response.status_code == status
    assert error_codes(response.json()) == [code]
