"""schema.base.selects: a resolver sees which child fields its selection asks for."""

from __future__ import annotations

import pytest
import strawberry

from schema.base import selects

SEEN: list[bool] = []


@strawberry.type
class Child:
    a: int = 1
    b: int = 2


@strawberry.type
class Query:
    @strawberry.field
    def child(self, info: strawberry.Info) -> Child:
        SEEN.append(selects(info, "b"))
        return Child()


SCHEMA = strawberry.Schema(query=Query)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{ child { a } }", False),
        ("{ child { a b } }", True),
        ("{ child { ... on Child { b } } }", True),
        ("{ child { ...F } } fragment F on Child { a ...G } fragment G on Child { b }", True),
        ("{ child { ...F } } fragment F on Child { a }", False),
        ("{ child { x: b } }", True),
    ],
)
def test_selects(document: str, expected: bool) -> None:
    SEEN.clear()
    result = SCHEMA.execute_sync(document)
    assert result.errors is None
    assert [expected] == SEEN, SEEN
