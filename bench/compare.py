"""Normalised comparison of responses: same rows, same order, same values, whatever the spelling."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = ["comparable", "first_difference", "normalise"]

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:?\d{2}|Z)$")
_DECIMAL = re.compile(r"^-?\d+\.\d+$")


def _scalar(value: Any) -> Any:
    if isinstance(value, str):
        if _TIMESTAMP.match(value):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.astimezone(UTC).isoformat()
        if _DECIMAL.match(value):
            return str(Decimal(value).normalize())
    return value


def normalise(value: Any, like: Any) -> Any:
    """`value` in canonical form, shaped after the reference `like`.

    Timestamps become UTC ISO strings and decimals lose trailing zeros; where the reference has a
    plain list and `value` a connection object ({"nodes": [...]}, PostGraphile's only list form),
    the nodes are taken.
    """
    if isinstance(like, list) and isinstance(value, dict) and set(value) == {"nodes"}:
        value = value["nodes"]
    if isinstance(value, dict):
        ref = like if isinstance(like, dict) else {}
        return {k: normalise(v, ref.get(k)) for k, v in sorted(value.items())}
    if isinstance(value, list):
        ref_items = like if isinstance(like, list) else []
        return [
            normalise(v, ref_items[i] if i < len(ref_items) else None) for i, v in enumerate(value)
        ]
    return _scalar(value)


def comparable(data: Any, *, mutation: bool) -> Any:
    """The part of a response's `data` that peers share: a write's single payload object."""
    if mutation and isinstance(data, dict) and len(data) == 1:
        (payload,) = data.values()
        if isinstance(payload, dict) and len(payload) == 1:
            (inner,) = payload.values()  # PostGraphile: {createX: {x: {...}}}
            if isinstance(inner, dict):
                return inner
        return payload
    return data


def first_difference(got: Any, want: Any, path: str = "data") -> str | None:  # noqa: PLR0911
    """The first path where two normalised values differ, with both values; None if equal."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want)):
            if key not in got or key not in want:
                return f"{path}.{key}: present in only one ({key in got=}, {key in want=})"
            diff = first_difference(got[key], want[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return f"{path}: {len(got)} items, want {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            diff = first_difference(g, w, f"{path}[{i}]")
            if diff:
                return diff
        return None
    return None if got == want else f"{path}: {got!r} != {want!r}"
