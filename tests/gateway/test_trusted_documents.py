"""Trusted documents: registering them (CLI, driver, manifests) and requesting them by id.

TRUSTED_DOCUMENTS=allow (the default) serves registered ids, APQ and plain queries; `only` serves
registered documents and nothing else; `off` ignores ids. Registered reads are compiled at
start-up, and a request by id reaches the repeated-read shortcut with the resolved document.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from drivers import tables as t
from drivers.migrate import downgrade, upgrade_head
from drivers.trusted_documents import TrustedDocument, document_hash, insert_documents
from gateway.document_manifests import APOLLO_FORMAT, ManifestError, read_documents
from gateway.settings import Settings
from resolvers.compiled import PLANS
from tests.factories import incident_row, insert_rows
from tests.gateway.test_cli import run_cli
from tests.helpers import serve, token
from tests.live.servers import ThreadedServer
from tests.live.wsclient import subscriber, wait_for_subscribers

LIST = "query Recent { incidents(first: 5) { totalCount nodes { id title } } }"
VIEWER = "query Me { viewer { tenantId role } }"
CREATE = """mutation Create($input: CreateLimitInput!) {
  createLimit(input: $input) { id name maxValue }
}"""
BUDGET = {
    "name": "By id",
    "limitCategory": "BUDGET",
    "limitType": "COST_USD",
    "maxValue": "100",
    "resetPeriod": "MONTHLY",
}


def _auth(tenant: str = "td", role: str = "ADMIN") -> dict[str, str]:
    return {"authorization": f"Bearer {token(tenant, role)}"}


async def _post(client: httpx.AsyncClient, body: dict[str, Any], **auth: str) -> httpx.Response:
    return await client.post("/graphql", json=body, headers=_auth(**auth))


def _apq(hash_: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": hash_.removeprefix("sha256:")}}


def _error(response: httpx.Response) -> dict[str, Any]:
    [error] = response.json()["errors"]
    found: dict[str, Any] = error
    return found


async def _register(engine, *documents: str) -> list[str]:
    async with engine.begin() as conn:
        await insert_documents(conn, [TrustedDocument(document_hash(d), d) for d in documents])
    return [document_hash(d) for d in documents]


async def _stored(engine) -> dict[str, tuple[str, list[str]]]:
    c = t.trusted_documents.c
    async with engine.connect() as conn:
        rows = (await conn.execute(select(c.hash, c.document, c.operation_names))).all()
    return {r.hash: (r.document, list(r.operation_names)) for r in rows}


@pytest.fixture
async def only(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings.model_copy(update={"trusted_documents": "only"})) as http:
        yield http


# --- registering -------------------------------------------------------------------------------


def _manifests(tmp_path: Path) -> tuple[list[Path], dict[str, str]]:
    """A .graphql file, a Relay map (prefixed and bare ids) and an Apollo manifest."""
    relay_doc = "query RelayOne { viewer { role } }"
    relay_bare = "query RelayTwo { viewer { actor } }"
    apollo_doc = (
        "mutation ApolloCreate($input: CreateLimitInput!) { createLimit(input: $input) { id } }"
    )
    plain = tmp_path / "recent.graphql"
    plain.write_text(LIST)
    relay = tmp_path / "relay.json"
    relay.write_text(
        json.dumps(
            {
                document_hash(relay_doc): relay_doc,
                document_hash(relay_bare).removeprefix("sha256:"): relay_bare,
            }
        )
    )
    apollo = tmp_path / "apollo.json"
    apollo.write_text(
        json.dumps(
            {
                "format": APOLLO_FORMAT,
                "version": 1,
                "operations": [
                    {
                        "id": document_hash(apollo_doc).removeprefix("sha256:"),
                        "name": "ApolloCreate",
                        "type": "mutation",
                        "body": apollo_doc,
                    }
                ],
            }
        )
    )
    expected = {
        document_hash(LIST): LIST,
        document_hash(relay_doc): relay_doc,
        document_hash(relay_bare): relay_bare,
        document_hash(apollo_doc): apollo_doc,
    }
    return [plain, relay, apollo], expected


async def test_cli_registers_graphql_files_and_relay_and_apollo_manifests(
    database_url, engine, tmp_path
):
    # given
    files, expected = _manifests(tmp_path)
    # when
    first = run_cli(database_url, "documents", "add", *map(str, files))
    again = run_cli(database_url, "documents", "add", *map(str, files))
    # then
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1] == "4 documents read, 4 new, 0 already registered"
    assert again.stdout.strip().splitlines()[-1] == "4 documents read, 0 new, 4 already registered"
    stored = await _stored(engine)
    assert {h: doc for h, (doc, _) in stored.items()} == expected
    assert stored[document_hash(LIST)][1] == ["Recent"]
    assert sorted(names[0] for _, names in stored.values()) == [
        "ApolloCreate",
        "Recent",
        "RelayOne",
        "RelayTwo",
    ]


async def test_cli_refuses_a_manifest_whose_id_is_not_the_sha256_and_registers_nothing(
    database_url, engine, tmp_path
):
    # given: a valid file, and a Relay map keyed by an MD5-style id
    good = tmp_path / "good.graphql"
    good.write_text(VIEWER)
    relay = tmp_path / "relay.json"
    relay.write_text(json.dumps({"3a7bd3e2360a3d29eea436fcfb7e44c7": VIEWER}))
    # when
    result = run_cli(database_url, "documents", "add", str(good), str(relay))
    # then
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {relay}: '3a7bd3e2360a3d29eea436fcfb7e44c7': id ")
    assert "is not the SHA-256 of its document" in line
    assert await _stored(engine) == {}


def test_cli_documents_add_has_help_and_needs_a_file(database_url):
    helped = run_cli(database_url, "documents", "add", "--help", env={"COLUMNS": "300"})
    missing = run_cli(database_url, "documents", "add")
    text = helped.stdout
    assert helped.returncode == 0
    assert "Relay persisted-query map" in text
    assert "Apollo persisted-query manifest" in text
    assert missing.returncode == 2
    assert "FILE" in missing.stderr


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.graphql", "query {", "bad.graphql: document: not a GraphQL document"),
        ("list.json", "[1]", "expected a JSON object"),
        ("broken.json", "{", "not valid JSON"),
        ("relay.json", '{"abc": 5}', "'abc': the document must be a non-empty string"),
        (
            "apollo.json",
            json.dumps({"format": APOLLO_FORMAT, "version": 2, "operations": []}),
            f"unsupported {APOLLO_FORMAT} version 2",
        ),
        (
            "apollo.json",
            json.dumps({"format": APOLLO_FORMAT, "version": 1, "operations": [{"body": VIEWER}]}),
            "operations[0] needs a string `id`",
        ),
    ],
)
def test_manifest_faults_name_the_file_and_entry(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ManifestError) as raised:
        read_documents([path])
    assert message in str(raised.value)


def test_the_same_document_in_two_files_is_read_once(tmp_path):
    one, two = tmp_path / "one.graphql", tmp_path / "two.json"
    one.write_text(VIEWER)
    two.write_text(json.dumps({document_hash(VIEWER): VIEWER}))
    assert read_documents([one, two]) == [TrustedDocument(document_hash(VIEWER), VIEWER, ("Me",))]


# --- requesting by id (TRUSTED_DOCUMENTS=allow, the default) ----------------------------------


@pytest.mark.parametrize("path", ["resolver", "compiled"])
async def test_a_registered_document_is_served_by_id_on_both_read_paths(
    client, compiled_client, engine, path
):
    # given
    http = client if path == "resolver" else compiled_client
    await insert_rows(engine, t.incidents, [incident_row("td", title="by id")])
    [hash_] = await _register(engine, LIST)
    by_query = await _post(http, {"query": LIST})
    # when: prefixed and bare ids
    prefixed = await _post(http, {"documentId": hash_})
    bare = await _post(http, {"documentId": hash_.removeprefix("sha256:")})
    # then
    for answer in (prefixed, bare):
        assert answer.status_code == 200, answer.text
        assert answer.content == by_query.content
        assert answer.headers["x-gateway-read-path"] == path
    assert [n["title"] for n in prefixed.json()["data"]["incidents"]["nodes"]] == ["by id"]


async def test_a_registered_document_is_served_by_id_over_get(client, engine):
    [hash_] = await _register(engine, VIEWER)
    answer = await client.get("/graphql", params={"documentId": hash_}, headers=_auth())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"data": {"viewer": {"tenantId": "td", "role": "ADMIN"}}}


async def test_a_mutation_runs_by_id(client, engine):
    # given
    [hash_] = await _register(engine, CREATE)
    # when
    answer = await _post(client, {"documentId": hash_, "variables": {"input": BUDGET}})
    # then
    assert answer.status_code == 200, answer.text
    created = answer.json()["data"]["createLimit"]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.limits.c.id, t.limits.c.tenant_id))).all()
    assert [tuple(r) for r in rows] == [(created["id"], "td")]


async def test_an_unknown_id_answers_persisted_query_not_found(client):
    hash_ = document_hash(f"query {{ viewer {{ role }} }} # {secrets.token_hex(8)}")
    answer = await _post(client, {"documentId": hash_})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "private, no-cache, must-revalidate"
    assert answer.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "NOT_FOUND", "reason": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"documentId": "md5:abc"}, "documentId"),
        ({"documentId": 7}, "documentId"),
        ({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}}}, None),
        ({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "xyz"}}}, None),
        (
            {"documentId": document_hash(VIEWER), "extensions": _apq(document_hash(LIST))},
            "documentId",
        ),
        ({"query": LIST, "documentId": document_hash(VIEWER)}, "documentId"),
    ],
)
async def test_malformed_ids_are_bad_user_input_naming_the_field(client, body, field):
    answer = await _post(client, body)
    error = _error(answer)
    assert answer.status_code == 400
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field or error["extensions"]["field"].startswith(
        "extensions.persistedQuery"
    )


async def test_an_id_needs_a_caller(client, engine):
    [hash_] = await _register(engine, VIEWER)
    answer = await client.post("/graphql", json={"documentId": hash_})
    assert answer.status_code == 401
    assert _error(answer)["extensions"]["code"] == "UNAUTHENTICATED"


async def test_apq_flow_registers_in_the_process_only(client, engine):
    # given: a document nobody registered
    query = f"query Apq {{ viewer {{ actor }} }} # {secrets.token_hex(8)}"
    hash_ = document_hash(query)
    # when: the hash alone, then the query with its hash, then the hash alone again
    missed = await _post(client, {"extensions": _apq(hash_)})
    sent = await _post(client, {"query": query, "extensions": _apq(hash_)})
    again = await _post(client, {"extensions": _apq(hash_)})
    # then
    assert _error(missed)["message"] == "PersistedQueryNotFound"
    assert sent.json() == again.json() == {"data": {"viewer": {"actor": "alice"}}}
    assert await _stored(engine) == {}  # remembered by this process, never written


async def test_apq_refuses_a_hash_that_is_not_the_querys(client):
    answer = await _post(client, {"query": VIEWER, "extensions": _apq(document_hash(LIST))})
    assert answer.status_code == 400
    assert _error(answer)["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "extensions.persistedQuery",
    }


async def test_plain_queries_still_work_in_allow_mode(client):
    answer = await _post(client, {"query": VIEWER})
    assert answer.json() == {"data": {"viewer": {"tenantId": "td", "role": "ADMIN"}}}


# --- TRUSTED_DOCUMENTS=only and off ------------------------------------------------------------


async def test_only_mode_refuses_plain_queries_and_serves_registered_ids(only, engine):
    # given
    [hash_] = await _register(engine, VIEWER)
    # when
    plain = await _post(only, {"query": LIST})
    by_id = await _post(only, {"documentId": hash_})
    registered_with_hash = await _post(only, {"query": VIEWER, "extensions": _apq(hash_)})
    # then
    assert plain.status_code == 403
    assert _error(plain)["extensions"] == {
        "code": "FORBIDDEN",
        "reason": "PERSISTED_QUERY_NOT_ALLOWED",
    }
    assert by_id.json() == {"data": {"viewer": {"tenantId": "td", "role": "ADMIN"}}}
    assert registered_with_hash.json() == by_id.json()


async def test_only_mode_never_registers_by_apq(only, engine):
    # given
    query = f"query Sneaky {{ viewer {{ role }} }} # {secrets.token_hex(8)}"
    hash_ = document_hash(query)
    # when
    sent = await _post(only, {"query": query, "extensions": _apq(hash_)})
    again = await _post(only, {"extensions": _apq(hash_)})
    # then
    assert sent.status_code == 403
    assert _error(sent)["extensions"]["reason"] == "PERSISTED_QUERY_NOT_ALLOWED"
    assert _error(again)["extensions"]["reason"] == "PERSISTED_QUERY_NOT_FOUND"
    assert await _stored(engine) == {}


async def test_only_mode_finds_documents_registered_after_start(only, engine):
    # given: the app started before the CLI-style registration
    [hash_] = await _register(engine, CREATE)
    # when
    answer = await _post(only, {"documentId": hash_, "variables": {"input": BUDGET}})
    # then
    assert answer.json()["data"]["createLimit"]["name"] == "By id"


async def test_off_mode_ignores_ids(settings, engine):
    [hash_] = await _register(engine, VIEWER)
    async with serve(settings.model_copy(update={"trusted_documents": "off"})) as http:
        by_id = await _post(http, {"documentId": hash_})
        plain = await _post(http, {"query": VIEWER, "documentId": "not even a hash"})
    assert by_id.status_code == 400
    assert _error(by_id)["extensions"] == {"code": "BAD_USER_INPUT", "field": "query"}
    assert plain.json() == {"data": {"viewer": {"tenantId": "td", "role": "ADMIN"}}}


# --- compiled plans at start-up, and the repeated-read shortcut --------------------------------


async def test_a_database_without_the_table_still_serves_plain_queries(
    settings, fresh_database_url
):
    # given: a database one migration behind, and an app that does not migrate
    await asyncio.to_thread(upgrade_head, fresh_database_url)
    await asyncio.to_thread(downgrade, fresh_database_url, "0002")
    behind = settings.model_copy(update={"database_url": fresh_database_url})
    # when
    async with serve(behind) as http:
        plain = await _post(http, {"query": VIEWER})
    # then: start-up went on (only a lookup by id needs the table)
    assert plain.json() == {"data": {"viewer": {"tenantId": "td", "role": "ADMIN"}}}


def _shortcuts() -> float:
    return REGISTRY.get_sample_value("gateway_prepared_reads_total") or 0.0


async def test_registered_reads_are_compiled_at_start_up_and_repeats_take_the_shortcut(
    settings, engine
):
    # given: a read of a shape no test compiled before (a fresh alias), with a required
    # variable, registered before the app starts
    alias = f"w{secrets.token_hex(6)}"
    query = f"query Warm($n: Int!) {{ {alias}: incidents(first: $n) {{ nodes {{ id title }} }} }}"
    [hash_] = await _register(engine, query)
    await insert_rows(engine, t.incidents, [incident_row("td", title="warm")])
    compiled = settings.model_copy(update={"gateway_compiled_reads": True})
    async with serve(compiled) as http:
        plans_before = PLANS.compiles
        # when
        first = await _post(http, {"documentId": hash_, "variables": {"n": 3}})
        shortcuts = _shortcuts()
        second = await _post(http, {"documentId": hash_, "variables": {"n": 3}})
    # then: the first request found its plan compiled (no plan miss) ...
    assert PLANS.compiles == plans_before
    assert first.headers["x-gateway-read-path"] == "compiled"
    assert [n["title"] for n in first.json()["data"][alias]["nodes"]] == ["warm"]
    # ... and the repeat was answered from its bound plan, with the same bytes
    assert _shortcuts() == shortcuts + 1
    assert second.content == first.content


async def test_a_plan_miss_is_counted_for_reads_not_registered(settings):
    alias = f"c{secrets.token_hex(6)}"
    query = f"query {{ {alias}: incidents(first: 2) {{ nodes {{ id }} }} }}"
    compiled = settings.model_copy(update={"gateway_compiled_reads": True})
    async with serve(compiled) as http:
        before = PLANS.compiles
        answer = await _post(http, {"query": query})
    assert answer.headers["x-gateway-read-path"] == "compiled"
    assert PLANS.compiles == before + 1


# --- subscriptions over graphql-transport-ws ----------------------------------------------------

INCIDENT_CHANGED = "subscription Changes { incidentChanged { kind incidentId } }"
ACK = 'mutation Ack($id: ID!) { acknowledgeIncident(id: $id, note: "ok") { id status } }'


@pytest.fixture
def only_server(settings: Settings) -> Iterator[ThreadedServer]:
    with ThreadedServer(settings.model_copy(update={"trusted_documents": "only"})) as server:
        yield server


async def test_only_mode_holds_for_subscriptions_too(only_server, engine):
    # given: the subscription and the mutation registered, an incident of tenant td
    subscription, ack = await _register(engine, INCIDENT_CHANGED, ACK)
    row = incident_row("td")
    await insert_rows(engine, t.incidents, [row])
    async with (
        subscriber(only_server.url, token("td", "VIEWER")) as ws,
        httpx.AsyncClient(base_url=only_server.url, timeout=10) as http,
    ):
        # when: a plain subscription, an unknown id and a registered id are sent
        plain = await ws.subscribe(INCIDENT_CHANGED)
        unknown = await ws.subscribe(None, documentId=document_hash("subscription { x }"))
        by_id = await ws.subscribe(None, documentId=subscription)
        await wait_for_subscribers(only_server.url, 1)
        acked = await _post(http, {"documentId": ack, "variables": {"id": row["id"]}})
        change = await ws.next(by_id)
        refused = await ws.message(plain)
        missing = await ws.message(unknown)
    # then
    assert acked.json()["data"]["acknowledgeIncident"]["status"] == "ACKNOWLEDGED"
    assert change == {
        "data": {"incidentChanged": {"kind": "ACKNOWLEDGED", "incidentId": row["id"]}}
    }
    assert refused["type"] == missing["type"] == "error"
    assert refused["payload"][0]["extensions"]["reason"] == "PERSISTED_QUERY_NOT_ALLOWED"
    assert missing["payload"][0]["message"] == "PersistedQueryNotFound"


def test_a_graphql_file_is_hashed_byte_for_byte(tmp_path):
    # CRLF line ends and the final newline are part of the text clients hash (sha256sum FILE)
    path = tmp_path / "crlf.graphql"
    path.write_bytes(b"query Crlf {\r\n  viewer { role }\r\n}\n")
    [document] = read_documents([path])
    assert document.hash == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert document.document.encode() == path.read_bytes()
