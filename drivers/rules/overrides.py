"""Limit-override rules (DOMAIN.md §3.3): input ranges and the state machine."""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "CANCELLABLE",
    "MAX_ACTIVE_PER_TENANT",
    "MAX_DURATION_HOURS",
    "MIN_DURATION_HOURS",
    "OPEN_STATUSES",
    "REASON_MAX",
    "REASON_MIN",
    "effective_value",
]

MIN_DURATION_HOURS = 1
MAX_DURATION_HOURS = 168
REASON_MIN = 10
REASON_MAX = 500
# A tenant may hold at most this many ACTIVE overrides; one more request is RATE_LIMITED.
MAX_ACTIVE_PER_TENANT = 5
# At most one of these per limit (the unique partial index limit_overrides_no_stacking).
OPEN_STATUSES = ("PENDING", "APPROVED", "ACTIVE")
CANCELLABLE = OPEN_STATUSES


def effective_value(status: str, override_value: Decimal, original_value: Decimal) -> Decimal:
    """The limit's value while the override is in `status`: the override's only while ACTIVE.

    The same rule as the mapping's derived SQL (drivers/mapping.py LIMIT_OVERRIDE), for a record
    built before it is stored (requestOverride's audit document); a test compares the two.
    """
    return override_value if status == "ACTIVE" else original_value
