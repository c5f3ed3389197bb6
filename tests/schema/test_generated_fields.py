"""Issue #14 item 1: fields generated from the one description in drivers/mapping.py.

The live schema's relation fields, batch-loaded and Python-logic fields and the incidents
ordering enum carry exactly what the mapping says (shape, nullability, arguments,
descriptions); schema/mapped.py refuses a second description or a missing loader.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)

from drivers import tables as t
from drivers.mapping import ENTITIES, INCIDENT, RELATIONS, ROOT_LISTS
from drivers.records import IncidentRecord
from schema import Limits, build_schema
from schema.mapped import mapped_type
from tests.factories import NOW, breach_row, incident_row, insert_rows, make_limits
from tests.factories_incwrites import run_row
from tests.helpers import token

SCHEMA: GraphQLSchema = build_schema(
    Limits(max_depth=10, max_aliases=30, max_tokens=2000, max_cost=50_000)
)._schema


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _field(type_name: str, field: str) -> Any:
    parent = SCHEMA.type_map[type_name]
    assert isinstance(parent, GraphQLObjectType)
    return parent.fields[field]


def test_every_described_relation_is_a_field_of_its_shape() -> None:
    described = [r for (parent, _), r in RELATIONS.items() if parent != "Query" and r.description]
    assert len(described) >= 25  # every plain relation of every mapped type
    for relation in described:
        assert relation.on is not None
        parent, name = relation.on
        field = _field(parent, name)
        assert field.description == relation.description, relation.on
        child = relation.target.name
        if relation.kind == "one":
            assert isinstance(field.type, GraphQLNonNull) is relation.required, relation.on
            assert get_named_type(field.type).name == child
        elif relation.kind == "list":
            # [Child!]!
            assert isinstance(field.type, GraphQLNonNull)
            assert isinstance(field.type.of_type, GraphQLList)
            assert get_named_type(field.type).name == child
        else:
            assert get_named_type(field.type).name == f"{child}Connection"
            assert {"first", "after"} <= set(field.args), relation.on
            assert field.args["first"].default_value == 20


def test_a_relation_without_a_description_is_no_field() -> None:
    # allIncidents is the switch target of CircuitBreaker.incidents(includeResolved: true).
    assert RELATIONS[("CircuitBreaker", "allIncidents")].description == ""
    breaker = SCHEMA.type_map["CircuitBreaker"]
    assert isinstance(breaker, GraphQLObjectType)
    assert "allIncidents" not in breaker.fields


def test_batch_loaded_and_python_logic_fields_take_the_mapping_description() -> None:
    checked = 0
    for entity in ENTITIES.values():
        loaded = entity.loaded.fields.items() if entity.loaded is not None else ()
        for name, derived in (*entity.computed.items(), *loaded):
            assert _field(entity.name, _camel(name)).description == derived.description
            checked += 1
    assert checked == 14  # Incident 8, CircuitBreaker 4, ExecutionScope 1, ThresholdSignal 1
    assert str(_field("Incident", "recurrenceCount").type) == "Int!"
    assert str(_field("Incident", "lastSeenAt").type) == "DateTime!"


def test_the_incident_order_enum_is_the_mapping_orderings() -> None:
    spec = ROOT_LISTS[("Query", "incidents")]
    assert spec.order_enum is not None
    enum = SCHEMA.type_map[spec.order_enum[0]]
    assert isinstance(enum, GraphQLEnumType)
    assert enum.description == spec.order_enum[1]
    assert {n: v.description for n, v in enum.values.items()} == {
        n: o.description for n, o in spec.orderings.items()
    }
    assert list(enum.values) == [
        "CREATED_AT_DESC",
        "CREATED_AT_ASC",
        "SEVERITY_DESC",
        "RESOLVED_AT_DESC",
    ]
    order_by = _field("Query", "incidents").args["orderBy"]
    assert isinstance(order_by.type, GraphQLNonNull)
    assert order_by.type.of_type is enum


def test_a_second_description_of_a_mapped_field_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Incident\.topic: described in the mapping, not here"):

        @mapped_type(INCIDENT, description="x", load=None)
        class Twin:
            record: strawberry.Private[IncidentRecord]

            @strawberry.field
            def first_seen_at(self) -> str:
                return ""

            @strawberry.field(description="A second text.")  # type: ignore[untyped-decorator]
            def topic(self) -> str:
                return ""


def test_a_python_logic_field_needs_its_resolver() -> None:
    with pytest.raises(
        TypeError, match=r"Incident\.first_seen_at: described in the mapping, needs"
    ):

        @mapped_type(INCIDENT, description="x")
        class NoResolver:
            record: strawberry.Private[IncidentRecord]


def test_batch_loaded_fields_need_a_loader() -> None:
    with pytest.raises(TypeError, match="Incident: batch-loaded fields need `load`"):

        @mapped_type(INCIDENT, description="x")
        class NoLoader:
            record: strawberry.Private[IncidentRecord]

            @strawberry.field
            def first_seen_at(self) -> str:
                return ""

            @strawberry.field
            def topic(self) -> str:
                return ""

            @strawberry.field
            def time_to_resolution_millis(self) -> str:
                return ""

            @strawberry.field
            def time_to_resolution_ms(self) -> str:
                return ""


BREACHES = """query($id: ID!) {
  incident(id: $id) {
    breaches { id limit { id integrity { integrityStatus } } incident { id } run { id } }
  }
}"""


async def test_a_generated_list_loads_its_rows_to_one_fields_in_one_batch_each(
    client, engine, count_statements
):
    # given: an incident with 4 breaches over 2 limits and 2 runs
    tenant = "gen-prefetch"
    limits = await make_limits(engine, 2, tenant)
    runs = [run_row(tenant), run_row(tenant)]
    await insert_rows(engine, t.runs, runs)
    incident = incident_row(tenant)
    await insert_rows(engine, t.incidents, [incident])
    breaches = [
        breach_row(
            limits[i % 2]["id"],
            tenant,
            incident_id=incident["id"],
            run_id=runs[i % 2]["id"],
            breached_at=NOW - timedelta(minutes=i),
        )
        for i in range(4)
    ]
    await insert_rows(engine, t.limit_breaches, breaches)
    count_statements.reset()
    # when: the resolver path answers
    response = await client.post(
        "/graphql",
        json={"query": BREACHES, "variables": {"id": incident["id"]}},
        headers={"authorization": f"Bearer {token(tenant)}"},
    )
    # then: every breach has its rows, newest first ...
    assert response.headers["x-gateway-read-path"] == "resolver"
    body = response.json()
    assert "errors" not in body, body
    got = body["data"]["incident"]["breaches"]
    assert [b["id"] for b in got] == [b["id"] for b in breaches]
    assert [b["limit"]["id"] for b in got] == [limits[i % 2]["id"] for i in range(4)]
    assert [b["run"]["id"] for b in got] == [runs[i % 2]["id"] for i in range(4)]
    assert all(b["incident"] == {"id": incident["id"]} for b in got)
    assert all(b["limit"]["integrity"]["integrityStatus"] for b in got)
    # ... in one statement per level and relation: incident, breaches, then limits, incidents
    # and runs side by side (prefetched), then the limits' integrity rows.
    outermost = re.compile(r"FROM (\w+) WHERE \1\.tenant_id = ")  # the last match
    tables = [outermost.findall(" ".join(s.split()))[-1] for s in count_statements.statements]
    assert tables[:2] == ["incidents", "limit_breaches"]
    assert sorted(tables[2:5]) == ["incidents", "limits", "runs"]  # in any order
    assert tables[5:] == ["limit_integrity"]
