"""The one printed form of a stored JSON value: PostgreSQL's text form of the jsonb.

A JSON scalar prints exactly as PostgreSQL prints the stored jsonb (`{"a": 1, "bb": [1.50, 2]}`):
keys shortest first, then bytewise; `", "` and `": "` between tokens; numbers as stored
(numeric: `1e20` is `100000000000000000000`, `1e-7` is `0.0000001`, `1.50` keeps its zero);
strings escaped as JSON requires and nothing more. Why this form: the compiled path embeds
PostgreSQL's text with no work per value, and it is the exact value (no float rounding).

The resolver path gets the same bytes two ways: a jsonb object or array read through the engine
keeps the text it was parsed from (StoredObject, StoredArray: a dict and a list with `.stored`),
and a value computed in Python is printed as PostgreSQL would print it once stored (jsonb_text).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

__all__ = [
    "StoredArray",
    "StoredObject",
    "json_dumps",
    "jsonb_text",
    "load_stored",
    "stored_text",
]


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_dumps(value: Any) -> str:
    """Serialize jsonb values as the drivers write them (datetimes ISO 8601, decimals strings)."""
    return orjson.dumps(value, default=_json_default).decode()


class StoredObject(dict[str, Any]):
    """A jsonb object as read, with PostgreSQL's text of it in `stored`."""

    stored: str


class StoredArray(list[Any]):
    """A jsonb array as read, with PostgreSQL's text of it in `stored`."""

    stored: str


def load_stored(text: str) -> Any:
    """The engine's jsonb decoder: orjson's value; objects and arrays keep their text."""
    value = orjson.loads(text)
    kept: StoredObject | StoredArray
    if isinstance(value, dict):
        kept = StoredObject(value)
    elif isinstance(value, list):
        kept = StoredArray(value)
    else:
        return value
    kept.stored = text
    return kept


def stored_text(value: Any) -> str:
    """The JSON scalar's printed form of `value` (see the module's docstring).

    A value read from jsonb prints its stored text unless it was changed in place since (checked:
    the text must still parse to an equal value); anything else is printed by jsonb_text.
    """
    stored = getattr(value, "stored", None)
    if stored is not None and orjson.loads(stored) == value:
        return str(stored)
    return jsonb_text(value)


def jsonb_text(value: Any) -> str:
    """PostgreSQL's text form of `value` once written as jsonb (as the drivers write it)."""
    return _print(json.loads(json_dumps(value), parse_float=Decimal))


def _print(value: Any) -> str:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(f"{_string(k)}: {_print(value[k])}" for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_print(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return _numeric(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # any size (orjson stops at 64 bits)
    return _string(value)  # a string, true, false or null


def _string(value: Any) -> str:
    # orjson escapes strings exactly as PostgreSQL's escape_json (", \, control characters).
    return orjson.dumps(value).decode()


def _numeric(value: Decimal) -> str:
    """numeric_out(numeric_in(text)): plain digits, the scale the text gave, no negative zero."""
    text = format(value, "f")
    return text.lstrip("-") if value.is_zero() else text
