"""Small input checks that answer BAD_USER_INPUT naming the offending field."""

from __future__ import annotations

from resolvers.errors import BadUserInput

__all__ = ["check_length"]


def check_length(field: str, value: str | None, maximum: int, minimum: int = 0) -> None:
    """Refuse a string outside minimum..maximum characters (None passes)."""
    if value is None:
        return
    if not minimum <= len(value) <= maximum:
        raise BadUserInput(
            f"{field} must be {minimum}..{maximum} characters, got {len(value)}", field=field
        )
