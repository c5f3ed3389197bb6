"""Errors raised by the data layer, translated from the database at one boundary.

    DriverError
    ├── NotFound              a row the caller named does not exist for its tenant
    ├── StaleState            a guarded UPDATE matched no row (the expected state moved on)
    ├── ConstraintViolation   the database refused a write
    │   ├── UniqueViolation       23505
    │   ├── ForeignKeyViolation   23503
    │   └── CheckViolation        23514 (CHECKs and the invariant triggers)
    └── Unavailable           the database cannot be reached

`map_db_errors()` is the only place that looks at SQLSTATEs (the httpx `map_httpcore_exceptions`
pattern); everything above the drivers sees these classes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import asyncpg
from sqlalchemy import exc as sa_exc

__all__ = [
    "CheckViolation",
    "ConstraintViolation",
    "DriverError",
    "ForeignKeyViolation",
    "NotFound",
    "StaleState",
    "Unavailable",
    "UniqueViolation",
    "map_db_errors",
]


class DriverError(Exception):
    """Base of every data-layer error."""


class NotFound(DriverError):
    def __init__(self, entity: str, entity_id: str) -> None:
        super().__init__(f"{entity} {entity_id} not found")
        self.entity = entity
        self.entity_id = entity_id


class StaleState(DriverError):
    """A state-guarded update lost: another transaction changed the row first."""


class ConstraintViolation(DriverError):
    def __init__(self, message: str, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class UniqueViolation(ConstraintViolation):
    pass


class ForeignKeyViolation(ConstraintViolation):
    pass


class CheckViolation(ConstraintViolation):
    pass


class Unavailable(DriverError):
    pass


_BY_SQLSTATE: dict[str, type[ConstraintViolation]] = {
    "23505": UniqueViolation,
    "23503": ForeignKeyViolation,
    "23514": CheckViolation,
}
# Connection-class failures (08xxx), insufficient resources (53xxx: too many connections, out of
# memory, disk full), shutdown and "cannot connect now" (57P0x) and a statement cancelled by
# statement_timeout (57014): the database cannot serve now, so the client should retry.
_UNAVAILABLE = re.compile(r"^(08|53|57P0|57014)")
# asyncpg's words for a statement sent on a connection found closed before it (no class of its
# own; SQLAlchemy's is_disconnect reads the first too). A pool connection that closes is handed
# back to its pool at once, so the statement after it reads as "released".
_LOST = ("connection is closed", "connection has been released back to the pool")


def _sqlstate(error: BaseException | None) -> str | None:
    """The SQLSTATE of a driver error (asyncpg's, or the adapted one SQLAlchemy wraps)."""
    for candidate in (error, getattr(error, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def _constraint(error: BaseException | None) -> str | None:
    for candidate in (error, getattr(error, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return None


@contextlib.contextmanager
def map_db_errors() -> Iterator[None]:
    """Translate SQLAlchemy/asyncpg errors into DriverError subclasses.

    asyncpg's own errors come raw from the plain pools (drivers/one_statement.py); they map as
    the same errors wrapped by SQLAlchemy do.
    """
    try:
        yield
    except DriverError:
        raise
    except (sa_exc.DBAPIError, asyncpg.PostgresError) as exc:
        # SQLAlchemy wraps the driver's error; the plain pools raise asyncpg's own (a lost
        # connection is 08003, ConnectionDoesNotExist).
        wrapped = isinstance(exc, sa_exc.DBAPIError)
        error = exc.orig if wrapped else exc
        state = _sqlstate(error)
        if state in _BY_SQLSTATE:
            raise _BY_SQLSTATE[state](str(error), _constraint(error)) from exc
        invalidated = wrapped and exc.connection_invalidated
        if invalidated or (state is not None and _UNAVAILABLE.match(state)):
            raise Unavailable("database unavailable") from exc
        raise
    except asyncpg.InterfaceError as exc:
        if any(lost in str(exc) for lost in _LOST):
            raise Unavailable("database unavailable") from exc
        raise
    except (OSError, TimeoutError, sa_exc.TimeoutError) as exc:  # the last: the pool is exhausted
        raise Unavailable("database unavailable") from exc
