"""Hostile input at the GraphQL layer (issue #13 items 8, 12, 13): refused before either read path."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import strawberry
from graphql import get_introspection_query

from drivers import tables as t
from resolvers.auth import Principal, Role
from resolvers.context import Context, Database
from schema import Limits, build_schema
from tests.factories import incident_row, insert_rows
from tests.factories_incwrites import all_rows
from tests.helpers import error_codes, gql, serve, token

TWO_OPERATIONS = "query A { incidents { totalCount } } query B { incidents { nodes { id } } }"
ADD_EVENT = """mutation($id: ID!, $data: JSON) {
  addIncidentEvent(incidentId: $id, input: {eventType: NOTE, description: "n", data: $data}) { id }
}"""


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/graphql", json=body, headers={"authorization": f"Bearer {token()}"})


@pytest.mark.parametrize("path", ["resolver", "compiled", "shortcut"])
async def test_several_operations_without_a_name_are_refused_on_every_path(
    client, compiled_client, engine, path
):
    # given an incident, so that running either operation would give data
    await insert_rows(engine, t.incidents, [incident_row()])
    http = client if path == "resolver" else compiled_client
    # when (the shortcut: the same request a second time)
    for _ in range(2 if path == "shortcut" else 1):
        body = (await _post(http, {"query": TWO_OPERATIONS})).json()
    # then
    assert body["data"] is None
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "operationName"


async def test_a_named_operation_of_several_runs(compiled_client, engine):
    await insert_rows(engine, t.incidents, [incident_row()])
    response = await _post(compiled_client, {"query": TWO_OPERATIONS, "operationName": "A"})
    assert response.json() == {"data": {"incidents": {"totalCount": 1}}}


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        (
            "query($c: String!) { incidents(filter: {category: [$c]}) { totalCount } }",
            {"c": "a\x00b"},
            "$c",
        ),
        (
            '{ incidents(filter: {category: ["a\\u0000b"]}) { totalCount } }',
            {},
            "filter.category[0]",
        ),
        ("query($id: ID!) { incident(id: $id) { id } }", {"id": "x\x00"}, "$id"),
    ],
)
@pytest.mark.parametrize("path", ["resolver", "compiled"])
async def test_unstorable_text_in_reads_is_bad_user_input_naming_the_field(
    client, compiled_client, path, query, variables, field
):
    body = await gql(client if path == "resolver" else compiled_client, query, variables)
    assert body["data"] is None
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"n": 12345678901234567890123}, "$data.n"),
        ({"deep": [1, {"k\x00": 1}]}, "$data.deep[1]"),
        ({"text": "nul\x00"}, "$data.text"),
    ],
)
async def test_unstorable_json_in_a_mutation_writes_nothing(client, engine, data, field):
    # given
    incident = incident_row()
    await insert_rows(engine, t.incidents, [incident])
    # when
    body = await gql(client, ADD_EVENT, {"id": incident["id"], "data": data})
    # then
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert await all_rows(engine, t.incident_events) == []


async def test_a_big_integer_literal_in_json_is_refused(client, engine):
    incident = incident_row()
    await insert_rows(engine, t.incidents, [incident])
    query = ADD_EVENT.replace("data: $data", "data: {n: 12345678901234567890123}")
    body = await gql(client, query.replace(", $data: JSON", ""), {"id": incident["id"]})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "input.data.n"


async def test_json_nested_too_deeply_is_refused(client, engine):
    incident = incident_row()
    await insert_rows(engine, t.incidents, [incident])
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    response = await client.post(
        "/graphql",
        json={"query": ADD_EVENT, "variables": {"id": incident["id"], "data": deep}},
        headers={"authorization": f"Bearer {token()}"},
    )
    # the body limits refuse it before GraphQL (gateway/body_limits.py MAX_JSON_DEPTH)
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]
    assert response.json()["errors"][0]["extensions"]["field"] == "variables"
    assert await all_rows(engine, t.incident_events) == []


async def test_storable_json_with_64_bit_numbers_is_written(client, engine):
    incident = incident_row()
    await insert_rows(engine, t.incidents, [incident])
    body = await gql(client, ADD_EVENT, {"id": incident["id"], "data": {"n": 2**63 - 1}})
    assert error_codes(body) == []
    [event] = await all_rows(engine, t.incident_events)
    assert event.data == {"n": 2**63 - 1}


async def test_many_aliased_introspections_are_refused_quickly(client):
    # given 120 aliased full walks of the schema (issue #13 item 13: ~4 s each before)
    walk = "__schema { types { fields { args { name } } } }"
    query = "{ " + " ".join(f"a{i}: {walk}" for i in range(120)) + " }"
    # when
    started = time.process_time()
    body = (await _post(client, {"query": query})).json()
    cpu = time.process_time() - started
    # then
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    assert cpu < 1.0  # generous: only proves that nothing stalls


async def test_two_schema_walks_in_one_operation_are_refused(client):
    query = "{ a: __schema { queryType { name } } b: __schema { queryType { name } } }"
    body = (await _post(client, {"query": query})).json()
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["errors"][0]["message"] == "2 __schema selections exceed 1"


async def test_graphiql_introspection_passes_the_default_limits(client):
    body = (await _post(client, {"query": get_introspection_query()})).json()
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_huge_variables_are_refused_in_bounded_time(client, engine):
    # given ~1 MB of variables, with the one bad value last
    values = ["x" * 10] * 80_000 + ["nul\x00"]
    query = "query($c: [String!]!) { incidents(filter: {category: $c}) { totalCount } }"
    # when
    started = time.process_time()
    body = await gql(client, query, {"c": values})
    cpu = time.process_time() - started
    # then
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "$c[80000]"
    assert cpu < 1.0  # generous: only proves that nothing stalls


async def test_a_huge_document_under_the_token_cap_is_handled_in_bounded_time(client):
    # given the same field repeated up to the token cap (field merging is quadratic)
    query = "{ " + " ".join("incidents { totalCount }" for _ in range(480)) + " }"
    started = time.process_time()
    body = (await _post(client, {"query": query})).json()
    cpu = time.process_time() - started
    assert "errors" in body or body["data"]["incidents"] == {"totalCount": 0}
    assert cpu < 1.0


def _context(engine: Any, role: Role) -> Context:
    return Context(
        principal=Principal("t1", "alice", role),
        db=Database(primary=engine, reads=engine),
        request_id="r",
    )


@pytest.mark.parametrize(
    ("policy", "role", "allowed"),
    [
        ("on", Role.VIEWER, True),
        ("admin", Role.ADMIN, True),
        ("admin", Role.OPERATOR, False),
        ("off", Role.ADMIN, False),
    ],
)
async def test_introspection_policy(engine, policy, role, allowed):
    schema: strawberry.Schema = build_schema(
        Limits(max_depth=10, max_aliases=30, max_tokens=2000, max_cost=50_000, introspection=policy)
    )
    result = await schema.execute(
        '{ __type(name: "Query") { name } }', context_value=_context(engine, role)
    )
    if allowed:
        assert result.errors is None and result.data == {"__type": {"name": "Query"}}
    else:
        assert result.data is None
        assert result.errors is not None
        assert [e.extensions["code"] for e in result.errors] == ["FORBIDDEN"]  # type: ignore[index]
    # __typename is not introspection: it is always allowed
    plain = await schema.execute("{ __typename }", context_value=_context(engine, role))
    assert plain.data == {"__typename": "Query"}


async def test_a_lone_surrogate_is_refused(client):
    # httpx cannot encode it, so the body is written with the stdlib's escaping
    body = json.dumps(
        {"query": "query($id: ID!) { incident(id: $id) { id } }", "variables": {"id": "\ud800"}}
    )
    response = await client.post(
        "/graphql",
        content=body,
        headers={"authorization": f"Bearer {token()}", "content-type": "application/json"},
    )
    # the body decoder refuses it before GraphQL: a lone surrogate is not valid JSON text
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]
    assert "not valid JSON" in response.json()["errors"][0]["message"]


async def test_the_introspection_setting_reaches_the_served_app(settings):
    """INTROSPECTION=admin through create_app: an OPERATOR is refused, an ADMIN introspects."""
    async with serve(settings.model_copy(update={"introspection": "admin"})) as http:
        query = {"query": '{ __type(name: "Query") { name } }'}
        refused = await http.post(
            "/graphql", json=query, headers={"authorization": f"Bearer {token(role='OPERATOR')}"}
        )
        allowed = await http.post(
            "/graphql", json=query, headers={"authorization": f"Bearer {token(role='ADMIN')}"}
        )
    assert error_codes(refused.json()) == ["FORBIDDEN"]
    assert allowed.json() == {"data": {"__type": {"name": "Query"}}}
