"""The prepared-write path (gateway/prepared_writes.py) answers exactly as the view does.

The differential test runs the suite's mutation tests twice, MUTATION_FAST_PATH on and off, with
tests/mutation_transcript.py recording every mutation's answer and the rows it left, and
compares the two transcripts. The other tests pin down which requests the plan serves and which
it leaves to the view.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t
from gateway.settings import Settings
from resolvers.roles import MUTATION_ROLES
from schema import Limits, build_schema
from schema.prepared_writes import WritePlans
from tests.factories import incident_row, insert_rows
from tests.helpers import serve, token

ROOT = Path(__file__).resolve().parents[2]

# Test modules that, together, send every mutation of the schema: successes, the use cases'
# refusals (BAD_USER_INPUT, NOT_FOUND, CONFLICT, RATE_LIMITED, GOVERNANCE_ERROR), role refusals,
# Idempotency-Key replays and conflicts, and X-Gateway-LSN against a real standby.
DIFF_MODULES = (
    "tests/gateway/test_role_first.py",
    "tests/gateway/test_lesson_transitions.py",
    "tests/gateway/test_overrides.py",
    "tests/gateway/test_limit_writes.py",
    "tests/gateway/test_scopes.py",
    "tests/gateway/test_postmortem.py",
    "tests/gateway/test_incident_lifecycle.py",
    "tests/gateway/test_incident_mutations.py",
    "tests/gateway/test_governance.py",
    "tests/gateway/test_breaches.py",
    "tests/gateway/test_thresholds.py",
    "tests/gateway/test_exports.py",
    "tests/gateway/test_aggregation.py",
    "tests/gateway/test_breaker.py",
    "tests/gateway/test_alerts.py",
    "tests/gateway/test_idempotency.py",
    "tests/live/test_streaming_replica.py",
)

ADD_EVENT = """mutation Add($id: ID!, $text: String!) {
  addIncidentEvent(incidentId: $id, input: { eventType: NOTE, description: $text }) {
    incidentId eventType description
  }
}"""


def _prepared_writes() -> float:
    return REGISTRY.get_sample_value("gateway_prepared_writes_total") or 0.0


async def _transcript(server_url: str, fast: str, out: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": server_url,
        "MUTATION_FAST_PATH": fast,
        "MUTATION_TRANSCRIPT": str(out),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "tests.mutation_transcript", "-p", "no:xdist", *DIFF_MODULES]
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()[-4000:]


_NUMBERED_ID = re.compile(r"<id:\d+>")


def _blind(value: Any) -> str:
    return _NUMBERED_ID.sub("<id>", orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def _comparable(line: dict[str, Any]) -> Any:
    """A test's answers, notifications and rows, as two runs must give them alike.

    Answers and notifications of sequential requests: in order, ids numbered by first
    appearance, so references between them are compared too. Rows: each table as a multiset
    with ids masked, since tests may also race background jobs (two sweepers), whose order
    decides which row gets which id. Overlapping requests race too, and which one wins may
    differ between runs: then only what the race cannot change is compared, the number of rows
    per table and of notifications. How many racers were told CONFLICT rather than replayed
    depends on timing (test_concurrent_requests_with_one_key_write_once), so neither the
    answers' statuses nor the error counters of such a test are compared; the counters of every
    other test are.
    """
    if not line["concurrent"]:
        tables = {name: sorted(map(_blind, rows)) for name, rows in line["tables"].items()}
        return line["requests"], line["notifications"], tables, line["metrics"]
    counts = {name: len(rows) for name, rows in line["tables"].items()}
    return len(line["notifications"]), counts


def _lines(path: Path) -> dict[str, dict[str, Any]]:
    return {line["test"]: line for line in map(orjson.loads, path.read_bytes().splitlines())}


async def test_every_mutation_of_the_suite_answers_and_writes_alike_both_ways(
    server_url: str, tmp_path: Path
) -> None:
    on, off = tmp_path / "on.jsonl", tmp_path / "off.jsonl"
    await asyncio.gather(_transcript(server_url, "on", on), _transcript(server_url, "off", off))
    fast, view = _lines(on), _lines(off)
    assert fast.keys() == view.keys()
    # Same answers (status, headers, bytes), notifications, rows and counters, test by test.
    differ = [test for test, line in fast.items() if _comparable(line) != _comparable(view[test])]
    assert differ == [], f"transcripts in {tmp_path}"
    assert all(line["prepared_writes"] == 0 for line in view.values())
    # The plan served most of them (refusals before execution fall through to the view) ...
    served = sum(line["prepared_writes"] for line in fast.values())
    sent = sum(len(line["requests"]) for line in fast.values())
    assert sent > 400
    assert served > sent / 2
    # ... and every mutation of the schema was among them, answered and with its rows written.
    documents = " ".join(r["request"] for line in fast.values() for r in line["requests"])
    assert {name for name in MUTATION_ROLES if re.search(rf"\b{name}\b", documents)} == set(
        MUTATION_ROLES
    )
    codes = {key for line in fast.values() for key in line["metrics"] if "code=" in key}
    for code in ("BAD_USER_INPUT", "NOT_FOUND", "FORBIDDEN", "CONFLICT", "RATE_LIMITED"):
        assert f"gateway_graphql_errors_total{{code={code}}}" in codes
    tables_written = {name for line in fast.values() for name in line["tables"]}
    assert {"audit_log", "incidents", "incident_events", "limit_overrides"} <= tables_written
    assert any(
        r["headers"].get("x-gateway-lsn") == "present"
        for line in fast.values()
        for r in line["requests"]
    )
    assert any(
        r["headers"].get("idempotent-replayed") == "true"
        for line in fast.values()
        for r in line["requests"]
    )


@pytest.fixture(scope="module")
async def fast_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings.model_copy(update={"mutation_fast_path": True})) as http:
        yield http


@pytest.fixture(scope="module")
async def view_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings.model_copy(update={"mutation_fast_path": False})) as http:
        yield http


async def _post(
    client: httpx.AsyncClient, body: dict[str, Any], role: str = "OPERATOR", **headers: str
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token(role=role)}", **headers}
    return await client.post("/graphql", json=body, headers=headers)


async def test_a_mutation_runs_from_its_plan_with_its_rows_and_the_views_headers(
    fast_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    body = {"query": ADD_EVENT, "variables": {"id": row["id"], "text": "first"}}
    before = _prepared_writes()
    first = await _post(fast_client, body)
    second = await _post(fast_client, {**body, "variables": {"id": row["id"], "text": "second"}})
    assert _prepared_writes() - before == 2
    assert first.status_code == second.status_code == 200
    assert first.content == (
        b'{"data":{"addIncidentEvent":{"incidentId":"'
        + row["id"].encode()
        + b'","eventType":"NOTE","description":"first"}}}'
    )
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-gateway-read-path"] == "resolver"
    async with engine.connect() as conn:
        events = (await conn.execute(select(t.incident_events.c.description))).scalars().all()
        audits = (await conn.execute(select(t.audit_log.c.operation))).scalars().all()
    assert sorted(events) == ["first", "second"]
    assert audits == ["addIncidentEvent", "addIncidentEvent"]


@pytest.mark.parametrize(
    ("body", "role", "accept"),
    [
        # a caller without the role: FORBIDDEN from Preflight, at the field
        ({"query": ADD_EVENT, "variables": {"id": "x", "text": "t"}}, "VIEWER", None),
        # variables that do not coerce
        ({"query": ADD_EVENT, "variables": {"id": "x", "text": 5}}, "OPERATOR", None),
        # the same, under the newer media type: 400 without data
        (
            {"query": ADD_EVENT, "variables": {"id": "x"}},
            "OPERATOR",
            "application/graphql-response+json",
        ),
        # a value PostgreSQL cannot store
        ({"query": ADD_EVENT, "variables": {"id": "x", "text": "a\u0000b"}}, "OPERATOR", None),
        # a document that does not validate, one that does not parse, an unknown operation
        ({"query": "mutation { addIncidentEvent { id } }"}, "OPERATOR", None),
        ({"query": "mutation {"}, "OPERATOR", None),
        ({"query": ADD_EVENT, "operationName": "Other"}, "OPERATOR", None),
    ],
)
async def test_refusals_before_execution_are_the_views(
    fast_client: httpx.AsyncClient,
    view_client: httpx.AsyncClient,
    body: dict[str, Any],
    role: str,
    accept: str | None,
) -> None:
    headers = {"accept": accept} if accept else {}
    before = _prepared_writes()
    fast = await _post(fast_client, body, role, **headers)
    assert _prepared_writes() == before  # declined: the view answered
    view = await _post(view_client, body, role, **headers)
    assert (fast.status_code, fast.content) == (view.status_code, view.content)
    assert fast.status_code in {200, 400}
    assert orjson.loads(fast.content)["errors"][0]["extensions"]["code"]


async def test_errors_raised_while_executing_are_the_views(
    fast_client: httpx.AsyncClient, view_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    cases = [
        {"id": "00000000-0000-0000-0000-000000000000", "text": "x"},  # NOT_FOUND
        {"id": row["id"], "text": ""},  # BAD_USER_INPUT from the use case
    ]
    for variables in cases:
        body = {"query": ADD_EVENT, "variables": variables}
        before = _prepared_writes()
        fast = await _post(fast_client, body)
        assert _prepared_writes() == before + 1  # served from the plan
        view = await _post(view_client, body)
        assert (fast.status_code, fast.content, fast.headers["content-type"]) == (
            view.status_code,
            view.content,
            view.headers["content-type"],
        )
        assert orjson.loads(fast.content)["data"] is None
    async with engine.connect() as conn:
        assert (await conn.execute(select(t.audit_log))).all() == []


def _plans() -> WritePlans:
    limits = Limits(max_depth=15, max_aliases=30, max_tokens=5000, max_cost=50_000)
    return WritePlans(build_schema(limits), limits)


@pytest.mark.parametrize(
    ("document", "direct"),
    [
        ((ROOT / "bench/queries/q4_add_event.graphql").read_text(), True),
        ((ROOT / "bench/queries/q7_request_override.graphql").read_text(), True),
        (ADD_EVENT, True),
        # aliases and __typename are still plain
        (
            'mutation { a: addIncidentEvent(incidentId: "x", input: {eventType: NOTE, '
            'description: "d"}) { __typename k: eventType } }',
            True,
        ),
        # two root fields, a fragment, a directive, a key selected twice: the executor's
        (
            'mutation { a: addIncidentEvent(incidentId: "x", input: {eventType: NOTE, '
            'description: "d"}) { id } b: addIncidentEvent(incidentId: "y", input: '
            '{eventType: NOTE, description: "d"}) { id } }',
            False,
        ),
        (
            'mutation { addIncidentEvent(incidentId: "x", input: {eventType: NOTE, '
            'description: "d"}) { ...F } } fragment F on IncidentEvent { id }',
            False,
        ),
        (
            'mutation { addIncidentEvent(incidentId: "x", input: {eventType: NOTE, '
            'description: "d"}) { id @include(if: true) } }',
            False,
        ),
        (
            'mutation { addIncidentEvent(incidentId: "x", input: {eventType: NOTE, '
            'description: "d"}) { id id } }',
            False,
        ),
    ],
)
def test_which_plans_call_their_root_field_directly(document: str, direct: bool) -> None:
    plan = _plans().get(document, None)
    assert plan is not None
    assert (plan.direct is not None) is direct


async def test_a_directly_called_mutation_answers_the_views_bytes(
    fast_client: httpx.AsyncClient, view_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Aliases, __typename and a JSON argument (null or not): the same bytes both ways."""
    row = incident_row()
    await insert_rows(engine, t.incidents, [row])
    query = """mutation Add($id: ID!, $data: JSON) {
      added: addIncidentEvent(
        incidentId: $id, input: { eventType: NOTE, description: "d", data: $data }
      ) { __typename kind: eventType incidentId description data }
    }"""
    for data in ({"b": [1, 2.5, None], "a": "x"}, None):
        body = {"query": query, "variables": {"id": row["id"], "data": data}}
        before = _prepared_writes()
        fast = await _post(fast_client, body)
        assert _prepared_writes() == before + 1
        view = await _post(view_client, body)
        assert fast.status_code == view.status_code == 200
        assert fast.content == view.content
        answer = orjson.loads(fast.content)["data"]["added"]
        assert answer["__typename"] == "IncidentEvent"
        assert answer["kind"] == "NOTE"
        assert answer["data"] == (data or {})
    async with engine.connect() as conn:
        stored = (await conn.execute(select(t.incident_events.c.data))).scalars().all()
    assert sorted(stored, key=len) == [{}, {}] + [{"a": "x", "b": [1, 2.5, None]}] * 2
