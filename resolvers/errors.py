"""Errors the resolvers raise; each carries the `extensions.code` of API.md.

    GatewayError
    ├── Unauthenticated      UNAUTHENTICATED
    ├── Forbidden            FORBIDDEN
    ├── NotFound             NOT_FOUND
    ├── BadUserInput         BAD_USER_INPUT (+ field)
    ├── Conflict             CONFLICT (illegal transition, duplicate)
    ├── RateLimited          RATE_LIMITED
    ├── GovernanceError      GOVERNANCE_ERROR (mandatory write failed; all rolled back)
    ├── QueryTooComplex      QUERY_TOO_COMPLEX
    └── Unavailable          SERVICE_UNAVAILABLE

graphql-core copies `extensions` from the original error into `errors[].extensions`; anything
that is not a GatewayError is masked as INTERNAL by the schema (schema/errors.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from drivers import errors as db

__all__ = [
    "BadUserInput",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "GovernanceError",
    "NotFound",
    "QueryTooComplex",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
    "from_driver_error",
    "translate_errors",
]


class GatewayError(Exception):
    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    @property
    def extensions(self) -> dict[str, Any]:
        ext: dict[str, Any] = {"code": self.code}
        if self.field is not None:
            ext["field"] = self.field
        ext.update(self.details)
        return ext


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"


class Forbidden(GatewayError):
    code = "FORBIDDEN"


class NotFound(GatewayError):
    code = "NOT_FOUND"


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"


class Conflict(GatewayError):
    code = "CONFLICT"


class RateLimited(GatewayError):
    code = "RATE_LIMITED"


class GovernanceError(GatewayError):
    code = "GOVERNANCE_ERROR"


class QueryTooComplex(GatewayError):
    code = "QUERY_TOO_COMPLEX"


class Unavailable(GatewayError):
    code = "SERVICE_UNAVAILABLE"


def from_driver_error(exc: db.DriverError) -> GatewayError:  # noqa: PLR0911 - one case each
    """Map a data-layer error to the client-facing error it means."""
    if isinstance(exc, db.NotFound):
        return NotFound(f"{exc.entity} {exc.entity_id} not found")
    if isinstance(exc, db.StaleState):
        return Conflict(str(exc), reason="STALE_STATE")
    if isinstance(exc, db.UniqueViolation):
        return Conflict("a conflicting row already exists", reason=exc.constraint or "UNIQUE")
    if isinstance(exc, db.ForeignKeyViolation):
        return NotFound("a referenced row does not exist", reason=exc.constraint or "FOREIGN_KEY")
    if isinstance(exc, db.CheckViolation):
        return BadUserInput("the value breaks a data rule", reason=exc.constraint or "CHECK")
    if isinstance(exc, db.Unavailable):
        return Unavailable("the database cannot be reached; retry later")
    return GatewayError("Unexpected error.")


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise driver errors as gateway errors (the one translation point above drivers)."""
    try:
        # Also here, not only around statements: connecting (engine.begin/connect) fails first
        # when the database is down, and that must read as SERVICE_UNAVAILABLE, not INTERNAL.
        with db.map_db_errors():
            yield
    except db.DriverError as exc:
        raise from_driver_error(exc) from exc
