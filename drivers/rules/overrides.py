"""Limit-override rules (DOMAIN.md §3.3): input ranges and the state machine."""

from __future__ import annotations

__all__ = [
    "CANCELLABLE",
    "MAX_ACTIVE_PER_TENANT",
    "MAX_DURATION_HOURS",
    "MIN_DURATION_HOURS",
    "OPEN_STATUSES",
    "REASON_MAX",
    "REASON_MIN",
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
