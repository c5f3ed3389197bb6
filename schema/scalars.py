"""Custom scalars of the public schema: the Python types and their scalar_map entries."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

__all__ = ["SCALARS", "Long"]

# GraphQL's Int is 32-bit; durations in milliseconds outgrow it after ~24.8 days.
Long = NewType("Long", int)


def _parse_long(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Long cannot represent {value!r}")
    return value


SCALARS: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        description="A 64-bit signed integer, serialized as a JSON number.",
        serialize=int,
        parse_value=_parse_long,
    ),
}
