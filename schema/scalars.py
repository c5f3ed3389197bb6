"""Custom scalars of the public schema: the Python types and their scalar_map entries."""

from __future__ import annotations

from typing import Any, NewType

import orjson
import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

from drivers.stored_json import stored_text

__all__ = ["SCALARS", "Long"]

# GraphQL's Int is 32-bit; durations in milliseconds outgrow it after ~24.8 days.
Long = NewType("Long", int)


def _parse_long(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Long cannot represent {value!r}")
    return value


_ECMA_404 = (
    "https://ecma-international.org/wp-content/uploads/ECMA-404_2nd_edition_december_2017.pdf"
)


def _serialize_json(value: Any) -> orjson.Fragment:
    """A JSON value printed in its one form, the stored jsonb text (drivers/stored_json.py).

    The compiled path embeds PostgreSQL's text; a Fragment makes the resolver path write the
    same bytes.
    """
    return orjson.Fragment(stored_text(value))


SCALARS: dict[object, ScalarDefinition] = {
    # Strawberry's JSON scalar (same name, description and parsing), printed as stored.
    JSON: strawberry.scalar(
        name="JSON",
        description=(
            "The `JSON` scalar type represents JSON values as specified by "
            f"[ECMA-404]({_ECMA_404})."
        ),
        specified_by_url=_ECMA_404,
        serialize=_serialize_json,
        parse_value=lambda v: v,
    ),
    Long: strawberry.scalar(
        name="Long",
        description="A 64-bit signed integer, serialized as a JSON number.",
        serialize=int,
        parse_value=_parse_long,
    ),
}
