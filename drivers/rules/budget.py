"""Budget-enforcement halts (DOMAIN.md §3.5): the halt message format."""

from __future__ import annotations

import re

__all__ = ["HALT_AMOUNTS", "HALT_MARKER", "parse_halt"]

HALT_MARKER = "Hard budget limit"
# The amounts of a halt message; also matched in SQL by the compiled read path (POSIX regex).
HALT_AMOUNTS = r"(\d+)c consumed >= (\d+)c limit"
_AMOUNTS = re.compile(HALT_AMOUNTS)


def parse_halt(message: str | None) -> tuple[int, int] | None:
    """(consumed_cents, limit_cents) from `<X>c consumed >= <Y>c limit`, or None."""
    if not message:
        return None
    match = _AMOUNTS.search(message)
    return None if match is None else (int(match.group(1)), int(match.group(2)))
