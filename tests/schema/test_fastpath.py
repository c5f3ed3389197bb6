"""The plain-field fast path answers exactly what Strawberry + graphql-core answer without it."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from graphql import GraphQLObjectType

from schema import Limits, build_schema
from schema.fastpath import PlainAttr, PlainExecutor, install_plain_resolvers


@strawberry.enum
class Color(enum.Enum):
    RED = "RED"
    BLUE = "BLUE"


@strawberry.type
class Item:
    id: strawberry.ID
    name: str
    note: str | None
    color: Color
    at: datetime
    tags: list[str]

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


ROWS: list[dict[str, Any]] = []


def _item(**values: Any) -> Item:
    base: dict[str, Any] = {
        "id": "1",
        "name": "a",
        "note": None,
        "color": "RED",
        "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "tags": ["x"],
    }
    base.update(values)
    return Item(**base)


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [_item(**row) for row in ROWS]


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    stock = strawberry.Schema(query=Query)
    fast = strawberry.Schema(query=Query, execution_context_class=PlainExecutor)
    install_plain_resolvers(fast)
    return stock, fast


QUERY = "{ items { id name note color at tags shout } }"


@pytest.mark.parametrize(
    "rows",
    [
        [{}, {"id": "2", "name": "b", "note": "n", "color": "BLUE"}],
        [{"name": None}],  # non-null field is null: the error and its path
        [{"color": "GREEN"}],  # enum value that does not exist: coercion error
        [{"id": "3"}, {"note": 5}],  # a non-string in a String field: coerced like graphql-core
        [{"at": "not a datetime"}],  # the scalar's serializer fails
    ],
)
def test_same_data_and_errors_as_without_the_fast_path(rows: list[dict[str, Any]]) -> None:
    ROWS[:] = rows
    stock, fast = _schemas()
    want = stock.execute_sync(QUERY)
    got = fast.execute_sync(QUERY)
    assert got.data == want.data
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in want.errors or []]


def test_only_plain_fields_get_the_fast_resolver() -> None:
    _, fast = _schemas()
    item = fast._schema.type_map["Item"]
    assert isinstance(item, GraphQLObjectType)
    kinds = {name: type(field.resolve) is PlainAttr for name, field in item.fields.items()}
    assert kinds == {
        "id": True,
        "name": True,
        "note": True,
        "color": True,
        "at": True,
        "tags": True,
        "shout": False,
    }
    tags = item.fields["tags"].resolve
    assert isinstance(tags, PlainAttr)
    assert tags.leaf is None  # a list goes through graphql-core's completion


def test_the_gateway_schema_uses_it() -> None:
    schema = build_schema(Limits(max_depth=10, max_aliases=30, max_tokens=2000, max_cost=50_000))
    assert schema.execution_context_class is PlainExecutor
    incident = schema._schema.type_map["Incident"]
    assert isinstance(incident, GraphQLObjectType)
    assert type(incident.fields["title"].resolve) is PlainAttr
    assert type(incident.fields["events"].resolve) is not PlainAttr
