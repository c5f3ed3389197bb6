"""Hostile values print the same bytes on both read paths (issue 14 item 4).

Strings with characters JSON encoders treat differently (U+2028, control characters, DEL,
`</script>`, quotes, astral characters), stored JSON whose numbers other printers reformat (`1e20`,
`1e-7`, `1.50`, 23-digit integers, -0.0), keys jsonb reorders, objects wider than 100 arguments
and response keys no SQL text may carry.
"""

from __future__ import annotations

import math
import random
import struct
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Float, literal_column
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t
from drivers.compiler import bind_plan, compile_operation, float_json
from drivers.readpool import create_read_pool, fetch_json_parts
from drivers.selection import Field
from drivers.stored_json import json_dumps, jsonb_text
from tests.compiled.test_differential import both
from tests.factories import event_row, incident_row, insert_rows
from tests.helpers import token

TENANT = "bytes"
HOSTILE = 'a</script>\u2028b\u2029\x1f\x01\x7f"q"\\ \U0001f600 \u00fc/\t\n'
STORED = (
    '{"big": 1e20, "small": 1e-7, "trail": 1.50, "neg0": -0.0, "exp": 1.5E+3,'
    ' "huge": 12345678901234567890123, "precise": 0.10000000000000000555111512,'
    ' "s": "</script>\\u2028\\u001f\\u007f\\"\\\\\\ud83d\\ude00", "zz": {"\\u00e9": [1, 2.0, null,'
    ' true, {}]}, "a": [], "b": 1, "b": 2}'
)
STORED_ARRAY = '["call-1", 1e20, 1.50, {"bb": 1, "a": 2}]'
QUERY = """query($id: ID!) { incident(id: $id) {
  title description: title triggerValue relatedCallIds actionDetails
  events(first: 5) { nodes { description data eventType } }
} }"""


async def _hostile_incident(engine: AsyncEngine) -> str:
    row = incident_row(TENANT, title=HOSTILE, trigger_value=HOSTILE)
    await insert_rows(engine, t.incidents, [row])
    event = event_row(row["id"], TENANT, description=HOSTILE)
    await insert_rows(engine, t.incident_events, [event])
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "UPDATE incidents SET action_details = $1::text::jsonb,"
            " related_call_ids = $2::text::jsonb WHERE id = $3",
            (STORED, STORED_ARRAY, row["id"]),
        )
        await conn.exec_driver_sql(
            "UPDATE incident_events SET data = $1::text::jsonb WHERE id = $2", (STORED, event["id"])
        )
    return str(row["id"])


async def test_hostile_strings_and_stored_json_print_the_same_bytes(
    client, compiled_client, engine
):
    # given
    incident_id = await _hostile_incident(engine)
    # when
    path, want, got = await both(client, compiled_client, QUERY, {"id": incident_id}, TENANT)
    # then: one form, PostgreSQL's text of the stored jsonb, on both paths
    assert path == "compiled"
    assert got == want
    incident = orjson.loads(got)["data"]["incident"]
    assert incident["title"] == HOSTILE
    assert orjson.dumps(HOSTILE) in got  # strings: escaped exactly as orjson escapes
    assert b"\xe2\x80\xa8" in got and b"\\u001f" in got and b"</script>" in got
    for printed in (
        b'"big": 100000000000000000000',
        b'"small": 0.0000001',
        b'"trail": 1.50',
        b'"neg0": 0.0',
        b'"exp": 1500',
        b'"huge": 12345678901234567890123',
        b'"precise": 0.10000000000000000555111512',
        b'{"a": [], "b": 2, "s": ',  # jsonb's order: shortest key first; the last duplicate
    ):
        assert printed in got, printed
    assert b'"relatedCallIds":["call-1", 100000000000000000000, 1.50, {"a": 2, "bb": 1}]' in got
    assert incident["events"]["nodes"][0]["data"] == orjson.loads(STORED)


async def test_json_written_by_a_mutation_prints_as_it_is_read_back(
    client, compiled_client, engine
):
    # given: the mutation answers with the value it computed in Python, not a read
    incident_id = await _hostile_incident(engine)
    data: dict[str, Any] = {
        "zeta": 1e20,
        "tiny": 1e-7,
        "f": 0.30000000000000004,
        "neg": -0.0,
        "s": HOSTILE,
        "n": [1, {"yy": None, "x": False}],
    }
    mutation = """mutation($id: ID!, $data: JSON) {
      addIncidentEvent(incidentId: $id, input: {eventType: NOTE, description: "d", data: $data}) {
        id data } }"""
    headers = {"authorization": f"Bearer {token(TENANT, 'OPERATOR')}"}
    written = await client.post(
        "/graphql",
        json={"query": mutation, "variables": {"id": incident_id, "data": data}},
        headers=headers,
    )
    event = written.json()["data"]["addIncidentEvent"]
    # when
    query = """query($id: ID!) { incident(id: $id) { events(first: 5) { nodes { id data } } } }"""
    path, want, got = await both(client, compiled_client, query, {"id": incident_id}, TENANT)
    # then
    assert path == "compiled"
    assert got == want
    nodes = orjson.loads(got)["data"]["incident"]["events"]["nodes"]
    read_back = next(n for n in nodes if n["id"] == event["id"])
    stored = orjson.dumps(read_back["data"])  # compact, to cut the printed form out of the body
    assert b'"data":' + jsonb_text(data).encode() in written.content
    assert b'"data":' + jsonb_text(data).encode() in got
    assert orjson.loads(stored) == orjson.loads(jsonb_text(data))
    assert b'"zeta": 100000000000000000000' in written.content


async def test_wide_objects_keep_selection_order(client, compiled_client, engine):
    # given: 55 keys = 111 concat arguments, more than one call takes
    incident_id = await _hostile_incident(engine)
    leaves = ["title", "status", "severity", "createdAt", "triggerValue"]
    keys = [f"k{i:02d}_{leaves[i % 5]}" for i in range(29)][::-1]
    selection = " ".join(f"{k}: {k.split('_')[1]}" for k in keys)
    fields = "id title status severity createdAt triggerValue relatedCallIds actionDetails"
    query = f"query($id: ID!) {{ incident(id: $id) {{ {selection} {fields} }} }}"
    # when
    path, want, got = await both(client, compiled_client, query, {"id": incident_id}, TENANT)
    # then
    assert path == "compiled"
    assert got == want
    assert list(orjson.loads(got)["data"]["incident"]) == keys + fields.split()


async def test_response_keys_are_bound_never_spliced(database_url, engine):
    # given: keys no GraphQL document can hold (aliases are Names), built by hand
    incident_id = await _hostile_incident(engine)
    hostile = [
        "x'); DROP TABLE incidents; --",
        'q"}',
        "\\",
        "\u2028",
        "$$ || pg_sleep(1) || $$",
        "é" * 3,
    ]

    def leaf(key: str, name: str, type_name: str = "String") -> Field:
        return Field(key, name, name, type_name, True, False, False, {}, ())

    leaves = (*(leaf(k, "title") for k in hostile), leaf("id", "id", "ID"))
    root = (
        Field(
            "incident",
            "incident",
            "incident",
            "Incident",
            False,
            False,
            False,
            {"id": incident_id},
            leaves,
        ),
    )
    # when
    plan = compile_operation(root, engine.dialect)
    bound = bind_plan(plan, root, {})
    pool = await create_read_pool(database_url, size=1, statement_timeout_ms=0)
    try:
        params = bound.params(tenant_id=TENANT, actor="a", role="ADMIN")
        parts = await fetch_json_parts(pool, bound.sql, params)
    finally:
        await pool.close()
    # then: the keys are in the parameters, JSON-encoded, and come out exactly
    for key in hostile:
        assert key not in plan.sql
        assert orjson.dumps(key).decode() not in plan.sql
    expected = {"incident": {**dict.fromkeys(hostile, HOSTILE), "id": incident_id}}
    assert orjson.dumps({"incident": orjson.Fragment(parts[0])}) == orjson.dumps(expected)


async def test_floats_print_as_orjson_prints_them(database_url, engine):
    # given: layout edges (plain vs exponent, whole numbers, -0.0, subnormals) and
    # 3,000 doubles from random bit patterns
    rng = random.Random(14)  # noqa: S311 - reproducible test data
    edges = [0.0, -0.0, 1.0, 0.1, 100.0, -3.25, 1e15, 9999999999999998.0, 1e16, 1e-5, 1e-6]
    edges += [9.999999999999999e-06, 1e-7, 1.5e-7, 5e-324, 1.7976931348623157e308, 1e22]
    edges += [0.30000000000000004, 1234567890123456.8, 73.33333333333333, 1e100, -2.5e-300]
    doubles = (
        struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(3000)
    )
    values = edges + [v for v in doubles if math.isfinite(v)]
    values += [rng.uniform(-1e6, 1e6) for _ in range(500)] + [
        float(rng.randint(0, 10**17)) for _ in range(200)
    ]
    column = literal_column("u.v", Float)
    printed = str(
        float_json(column).compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    )
    sql = (
        f"SELECT array_agg({printed} ORDER BY u.i) "  # noqa: S608 - our compiled expression
        "FROM unnest($1::float8[]) WITH ORDINALITY AS u(v, i)"
    )
    pool = await create_read_pool(database_url, size=1, statement_timeout_ms=0)
    # when
    try:
        got = await pool.fetchval(sql, values)
    finally:
        await pool.close()
    # then
    want = [orjson.dumps(v).decode() for v in values]
    assert [(v, g) for v, g, w in zip(values, got, want, strict=True) if g != w] == []
    assert want[:3] == ["0.0", "-0.0", "1.0"] and "1e-7" in want


async def test_python_values_print_as_postgresql_prints_them_stored(database_url):
    # given: 400 JSON values from hypothesis (unicode keys of every length, floats, 64-bit
    # integers, nesting) plus the awkward ones
    values: list[Any] = [
        {"b": 1, "a": 2, "é": 3, "aa": [], "\u2028": {"": None}},
        [1e20, 1e-7, -0.0, 0.30000000000000004, 2**63 - 1, -(2**63), 5e-324],
        HOSTILE,
        {"k": Decimal("1.50"), "when": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)},
    ]
    storable = st.characters(exclude_categories=["Cs"], exclude_characters="\0")  # jsonb refuses
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(alphabet=storable)
    )
    keys = st.text(alphabet=storable)
    json_values = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )

    @settings(max_examples=400, derandomize=True, database=None, deadline=None)
    @given(value=json_values)
    def collect(value: Any) -> None:
        values.append(value)

    collect()
    pool = await create_read_pool(database_url, size=1, statement_timeout_ms=0)
    # when
    try:
        stored = await pool.fetchval(
            "SELECT array_agg(v::jsonb::text ORDER BY i) FROM unnest($1::text[])"
            " WITH ORDINALITY AS u(v, i)",
            [json_dumps(v) for v in values],
        )
    finally:
        await pool.close()
    # then
    printed = [jsonb_text(v) for v in values]
    assert [(v, p, s) for v, p, s in zip(values, printed, stored, strict=True) if p != s] == []
    assert len(values) > 400
