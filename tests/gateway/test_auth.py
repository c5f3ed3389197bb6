"""Authentication and roles over HTTP: JWTs, API keys (hashed at rest), 401s and FORBIDDEN."""

from __future__ import annotations

import asyncio
import hashlib
import time

import jwt
import pytest
from sqlalchemy import select

from drivers import tables as t
from drivers.api_keys import insert_api_key, revoke_api_key
from tests.factories import incident_row, insert_rows
from tests.helpers import JWT_SECRET, error_codes, gql

VIEWER = "{ viewer { tenantId actor role } }"
ACKNOWLEDGE = "mutation($id: ID!) { acknowledgeIncident(id: $id) { id status } }"


def _jwt(secret: str = JWT_SECRET, **claims) -> str:
    body = {"sub": "alice", "tenant_id": "t1", "role": "ADMIN", "exp": int(time.time()) + 600}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm="HS256")


async def _post(client, authorization: str | None, query: str = VIEWER):
    headers = {} if authorization is None else {"authorization": authorization}
    return await client.post("/graphql", json={"query": query}, headers=headers)


async def _create_key(
    engine, tenant: str = "t1", role: str = "OPERATOR", name: str | None = "ci-bot"
):
    async with engine.begin() as conn:
        return await insert_api_key(conn, tenant_id=tenant, role=role, name=name)


async def test_missing_authorization_header_is_401_unauthenticated(client):
    # when
    response = await _post(client, None)
    # then
    assert response.status_code == 401
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert "data" not in body


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic x", id="_case_basic_scheme"),
        pytest.param("Bearer ", id="_case_empty_bearer"),
        pytest.param("Bearer", id="_case_bare_bearer"),
        pytest.param("Bearer not-a-jwt", id="_case_garbage_token"),
        pytest.param("Bearer " + _jwt(secret="x" * 40), id="_case_wrong_secret"),
        pytest.param("Bearer " + _jwt(exp=int(time.time()) - 60), id="_case_expired"),
        pytest.param("Bearer " + _jwt(tenant_id=None), id="_case_no_tenant"),
        pytest.param("Bearer " + _jwt(sub=None), id="_case_no_sub"),
        pytest.param("Bearer " + _jwt(tenant_id=""), id="_case_empty_tenant"),
        pytest.param("Bearer " + _jwt(role="SUPERUSER"), id="_case_unknown_role"),
        pytest.param("Bearer " + _jwt(role="SYSTEM"), id="_case_system_role"),
        pytest.param("Bearer gwk_" + "A" * 43, id="_case_unknown_api_key"),
    ],
)
async def test_invalid_credentials_are_401_unauthenticated(client, authorization):
    # when
    response = await _post(client, authorization)
    # then
    assert response.status_code == 401
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAUTHENTICATED"]


async def test_jwt_principal_is_the_viewer(client):
    body = await gql(client, VIEWER, tenant="acme", role="VIEWER", sub="dana")
    assert body == {"data": {"viewer": {"tenantId": "acme", "actor": "dana", "role": "VIEWER"}}}


async def test_api_key_authenticates_and_stamps_last_used_at(client, engine):
    # given
    record, token = await _create_key(engine, tenant="acme", role="INGEST", name="ci-bot")
    assert record.last_used_at is None
    # when
    response = await _post(client, f"Bearer {token}")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "data": {"viewer": {"tenantId": "acme", "actor": "apikey:ci-bot", "role": "INGEST"}}
    }
    async with engine.connect() as conn:
        row = (await conn.execute(select(t.api_keys).where(t.api_keys.c.id == record.id))).one()
    assert row.last_used_at is not None
    assert row.last_used_at >= record.created_at


async def test_api_key_without_name_is_named_by_its_id(client, engine):
    record, token = await _create_key(engine, role="VIEWER", name=None)
    body = await gql(client, VIEWER, auth=f"Bearer {token}")
    assert body["data"]["viewer"]["actor"] == f"apikey:{record.id}"


async def test_revoked_api_key_is_401(client, engine):
    # given a key that worked once
    record, token = await _create_key(engine)
    assert (await _post(client, f"Bearer {token}")).status_code == 200
    async with engine.begin() as conn:
        await revoke_api_key(conn, key_id=record.id)
    # when (the test settings cache keys for 0 s)
    response = await _post(client, f"Bearer {token}")
    # then
    assert response.status_code == 401
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAUTHENTICATED"]


async def test_only_the_sha256_of_an_api_key_is_stored(engine):
    # given
    record, token = await _create_key(engine)
    # when
    async with engine.connect() as conn:
        row = (await conn.execute(select(t.api_keys).where(t.api_keys.c.id == record.id))).one()
    # then
    assert token.startswith("gwk_")
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in row)
    assert all(token[4:] not in str(value) for value in row)


async def test_viewer_cannot_acknowledge_and_the_incident_is_unchanged(client, engine):
    # given
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    # when
    body = await gql(client, ACKNOWLEDGE, {"id": inc["id"]}, role="VIEWER")
    # then (HTTP 200 from gql: the caller is known, only the operation is refused)
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    assert body["errors"][0]["path"] == ["acknowledgeIncident"]
    async with engine.connect() as conn:
        row = (await conn.execute(select(t.incidents).where(t.incidents.c.id == inc["id"]))).one()
        events = (await conn.execute(select(t.incident_events))).all()
        audits = (await conn.execute(select(t.audit_log))).all()
    assert (row.status, row.acknowledged_at, row.updated_at) == ("OPEN", None, inc["updated_at"])
    assert events == []
    assert audits == []


async def test_ingest_reads_viewer_but_cannot_acknowledge(client, engine):
    # given an INGEST API key
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    _, token = await _create_key(engine, role="INGEST", name="sensor")
    # when
    viewer = await gql(client, VIEWER, auth=f"Bearer {token}")
    ack = await gql(client, ACKNOWLEDGE, {"id": inc["id"]}, auth=f"Bearer {token}")
    # then
    assert viewer["data"]["viewer"] == {
        "tenantId": "t1",
        "actor": "apikey:sensor",
        "role": "INGEST",
    }
    assert error_codes(ack) == ["FORBIDDEN"]
    async with engine.connect() as conn:
        status = (
            await conn.execute(select(t.incidents.c.status).where(t.incidents.c.id == inc["id"]))
        ).scalar_one()
    assert status == "OPEN"


async def test_operator_jwt_may_acknowledge(client, engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    body = await gql(client, ACKNOWLEDGE, {"id": inc["id"]}, role="OPERATOR")
    assert body == {"data": {"acknowledgeIncident": {"id": inc["id"], "status": "ACKNOWLEDGED"}}}


async def test_browser_get_without_query_shows_graphiql_without_a_token(client):
    # when
    response = await client.get("/graphql", headers={"accept": "text/html"})
    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_get_without_html_accept_is_the_api_not_the_ide(client):
    # a GET query needs a token like a POST
    query = await client.get("/graphql", params={"query": "{ viewer { role } }"})
    assert query.status_code == 401
    assert query.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    # and a GET without a query that does not ask for HTML gets no page: it lacks its query
    bare = await client.get("/graphql", headers={"accept": "application/json"})
    assert bare.status_code == 400
    assert bare.json()["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "query"}


async def test_a_verified_jwt_is_refused_once_it_expires_although_it_was_cached(client):
    # given: a token verified (and remembered) while it is valid for one more second
    token = "Bearer " + _jwt(exp=int(time.time()) + 2)
    first = await _post(client, token)
    assert first.status_code == 200
    assert first.json()["data"]["viewer"]["actor"] == "alice"
    # when: the same token comes back after its exp
    await asyncio.sleep(
        max(0.0, jwt.decode(token[7:], options={"verify_signature": False})["exp"] - time.time())
        + 0.1
    )
    second = await _post(client, token)
    # then
    assert second.status_code == 401
    assert [e["extensions"]["code"] for e in second.json()["errors"]] == ["UNAUTHENTICATED"]
