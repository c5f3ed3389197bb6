"""GraphQL over HTTP: every answer of /graphql is JSON with a code, transport errors included."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.helpers import token

GRAPHQL_RESPONSE = "application/graphql-response+json"
READ_PATH = "x-gateway-read-path"


def _auth(**headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token()}", **headers}


def _json(**headers: str) -> dict[str, str]:
    return _auth(**{"content-type": "application/json", **headers})


def _error(response: Any) -> dict[str, Any]:
    """The one error of a JSON answer, after checking the answer is JSON."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    [error] = response.json()["errors"]
    return dict(error)


@pytest.mark.parametrize(
    ("content", "headers", "field"),
    [
        pytest.param(b'{ "not a JSON', _json(), None, id="_case_malformed_json"),
        pytest.param(b"", _json(), None, id="_case_empty_body"),
        pytest.param(b'"a string"', _json(), None, id="_case_string_body"),
        pytest.param(b'[{"query": "{ viewer { role } }"}]', _json(), None, id="_case_batch"),
        pytest.param(b"\xff\xfe{}", _json(), None, id="_case_not_utf8"),
        pytest.param(
            b'{"query": "{ viewer { role } }"}', _auth(), "Content-Type", id="_case_no_ct"
        ),
        pytest.param(
            b'{"query": "{ viewer { role } }"}',
            _auth(**{"content-type": "text/plain"}),
            "Content-Type",
            id="_case_text_plain",
        ),
        pytest.param(
            b"query=%7Bviewer%7Brole%7D%7D",
            _auth(**{"content-type": "application/x-www-form-urlencoded"}),
            "Content-Type",
            id="_case_form",
        ),
        pytest.param(b'{"qeury": "{ viewer { role } }"}', _json(), "query", id="_case_no_query"),
        pytest.param(b'{"query": 1}', _json(), "query", id="_case_query_number"),
        pytest.param(
            b'{"query": "{ viewer { role } }", "variables": "x"}',
            _json(),
            "variables",
            id="_case_variables_string",
        ),
        pytest.param(
            b'{"query": "{ viewer { role } }", "variables": [1]}',
            _json(),
            "variables",
            id="_case_variables_array",
        ),
        pytest.param(
            b'{"query": "{ viewer { role } }", "extensions": "x"}',
            _json(),
            "extensions",
            id="_case_extensions_string",
        ),
        pytest.param(
            b'{"query": "{ viewer { role } }", "extensions": false}',
            _json(),
            "extensions",
            id="_case_extensions_false",
        ),
        pytest.param(
            b'{"query": "{ viewer { role } }", "operationName": 1}',
            _json(),
            "operationName",
            id="_case_operation_name_number",
        ),
        pytest.param(
            b'{"query": "query A { viewer { role } }", "operationName": "B"}',
            _json(),
            "operationName",
            id="_case_unknown_operation_name",
        ),
        pytest.param(b'{"query": ""}', _json(), "query", id="_case_empty_query"),
    ],
)
async def test_malformed_requests_are_bad_user_input_as_json(client, content, headers, field):
    # when
    response = await client.post("/graphql", content=content, headers=headers)
    # then
    assert response.status_code == 400
    error = _error(response)
    expected = {"code": "BAD_USER_INPUT"} | ({"field": field} if field else {})
    assert error["extensions"] == expected
    assert error["message"]


async def test_transport_errors_use_the_asked_for_media_type(client):
    response = await client.post(
        "/graphql", content=b"{ nope", headers=_json(accept=GRAPHQL_RESPONSE)
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_get_with_a_mutation_is_405_allow_post_and_runs_nothing(client, engine):
    # given an open incident
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    query = f'mutation {{ acknowledgeIncident(id: "{row["id"]}") {{ id status }} }}'
    # when it is acknowledged with a GET
    response = await client.get("/graphql", params={"query": query}, headers=_auth())
    # then
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    error = _error(response)
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "POST" in error["message"]
    async with engine.connect() as conn:
        status = (
            await conn.execute(t.incidents.select().where(t.incidents.c.id == row["id"]))
        ).one()
    assert status.status == "OPEN"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_405_with_allow(client, method):
    response = await client.request(method, "/graphql", headers=_auth())
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert _error(response)["extensions"] == {"code": "BAD_USER_INPUT"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({}, "query", id="_case_no_query"),
        pytest.param(
            {"query": "{ viewer { role } }", "variables": "{oops"},
            "variables",
            id="_case_bad_variables",
        ),
        pytest.param(
            {"query": "{ viewer { role } }", "variables": "[1]"},
            "variables",
            id="_case_array_variables",
        ),
        pytest.param(
            {"query": "{ viewer { role } }", "extensions": "3"},
            "extensions",
            id="_case_number_extensions",
        ),
    ],
)
async def test_malformed_get_requests_are_bad_user_input(client, params, field):
    response = await client.get("/graphql", params=params, headers=_auth(accept="application/json"))
    assert response.status_code == 400
    assert _error(response)["extensions"] == {"code": "BAD_USER_INPUT", "field": field}


async def test_get_with_json_variables_runs_the_query(client):
    query = "query($name: String!) { __type(name: $name) { name } }"
    response = await client.get(
        "/graphql",
        params={"query": query, "variables": orjson.dumps({"name": "Incident"}).decode()},
        headers=_auth(),
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__type": {"name": "Incident"}}}
    assert response.headers[READ_PATH] == "resolver"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("{", id="_case_parse_failure"),
        pytest.param("{ noSuchField }", id="_case_validation_failure"),
    ],
)
async def test_request_errors_under_graphql_response_json_are_400_without_data(client, query):
    response = await client.post(
        "/graphql", json={"query": query}, headers=_auth(accept=GRAPHQL_RESPONSE)
    )
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert response.headers[READ_PATH] == "resolver"


async def test_variable_coercion_failure_is_400_without_data_under_graphql_response_json(client):
    query = "query($id: ID!) { incident(id: $id) { id } }"
    asked_new = await client.post(
        "/graphql",
        json={"query": query, "variables": {"id": None}},
        headers=_auth(accept=GRAPHQL_RESPONSE),
    )
    legacy = await client.post(
        "/graphql", json={"query": query, "variables": {"id": None}}, headers=_auth()
    )
    assert asked_new.status_code == 400
    assert "data" not in asked_new.json()
    # application/json keeps the legacy 200 with data null
    assert legacy.status_code == 200
    assert legacy.json()["data"] is None
    assert [e["extensions"]["code"] for e in legacy.json()["errors"]] == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"query": "{ viewer { role } }", "variables": None}, id="_case_null_variables"
        ),
        pytest.param(
            {"query": "{ viewer { role } }", "extensions": None}, id="_case_null_extensions"
        ),
        pytest.param(
            {"query": "{ viewer { role } }", "extensions": {"some": "value"}},
            id="_case_map_extensions",
        ),
        pytest.param({"query": "{ viewer { role } }", "operationName": None}, id="_case_null_name"),
        pytest.param(
            {"query": "query Q { viewer { role } }", "operationName": "Q"}, id="_case_name"
        ),
    ],
)
async def test_well_formed_optional_parameters_are_accepted(client, body):
    response = await client.post(
        "/graphql", json=body, headers=_auth(**{"content-type": "application/json; charset=utf-8"})
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"role": "ADMIN"}}}
    assert response.headers[READ_PATH] == "resolver"
