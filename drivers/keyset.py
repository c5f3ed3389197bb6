"""Orderings and opaque keyset cursors.

A cursor is base64url(JSON [ordering name, key values…]). Keyset pagination (WHERE keys after the
cursor's values) keeps pages stable under inserts and costs the same on page 1 and page 1000,
unlike OFFSET. Every ordering ends with the primary key so keys are unique and pages never
overlap or skip a row.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import orjson
from sqlalchemy import ColumnElement, and_, false, or_, tuple_

__all__ = ["BadCursor", "OrderKey", "Ordering", "decode_cursor", "encode_cursor"]

Kind = Literal["ts", "str", "int", "dec"]


class BadCursor(ValueError):
    """The `after` cursor is malformed or belongs to another ordering."""


@dataclass(frozen=True, slots=True)
class OrderKey:
    expr: ColumnElement[Any]
    desc: bool
    kind: Kind


@dataclass(frozen=True, slots=True)
class Ordering:
    name: str
    keys: tuple[OrderKey, ...]
    # GraphQL description of the value of a root list's ordering enum (schema/filters.py).
    description: str = ""

    def order_by(self) -> list[ColumnElement[Any]]:
        """ORDER BY clauses for this ordering."""
        return [k.expr.desc() if k.desc else k.expr.asc() for k in self.keys]

    def after(self, values: tuple[Any, ...]) -> ColumnElement[bool]:
        """Rows strictly after `values` in this ordering."""
        keys = self.keys
        if all(k.desc == keys[0].desc for k in keys):
            left = tuple_(*(k.expr for k in keys))
            right = tuple_(*values)
            return left < right if keys[0].desc else left > right
        clauses: list[ColumnElement[bool]] = []
        for i, key in enumerate(keys):
            equal = [keys[j].expr == values[j] for j in range(i)]
            beyond = key.expr < values[i] if key.desc else key.expr > values[i]
            clauses.append(and_(*equal, beyond))
        return or_(false(), *clauses)


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _load(kind: Kind, value: Any) -> Any:
    if kind == "ts" and isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise BadCursor("cursor timestamp without time zone")
        return parsed
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "dec" and isinstance(value, str):
        return Decimal(value)
    raise BadCursor("cursor value of the wrong type")


def encode_cursor(ordering: Ordering, values: tuple[Any, ...]) -> str:
    """Encode the key values of one row as an opaque cursor."""
    raw = orjson.dumps([ordering.name, *(_dump(v) for v in values)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(ordering: Ordering, cursor: str) -> tuple[Any, ...]:
    """Decode a cursor made by `encode_cursor` for the same ordering, or raise BadCursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise BadCursor("malformed cursor") from exc
    if not isinstance(data, list) or len(data) != len(ordering.keys) + 1:
        raise BadCursor("malformed cursor")
    if data[0] != ordering.name:
        raise BadCursor("cursor belongs to another ordering")
    try:
        return tuple(_load(k.kind, v) for k, v in zip(ordering.keys, data[1:], strict=True))
    except (ValueError, InvalidOperation) as exc:
        raise BadCursor("malformed cursor") from exc
