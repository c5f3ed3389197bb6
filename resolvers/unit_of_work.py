"""One transaction per mutation: state change, events, audit row and notifications together.

    async with unit_of_work(ctx, "acknowledgeIncident") as uow:
        ... driver writes on uow.conn ...
        uow.audit("incidents", incident.id, before=old, after=new)
        uow.notify("INCIDENT_ACKNOWLEDGED", incident.id)

On a clean exit the audit row and the notifications are written inside the same transaction,
then it commits; any exception rolls everything back and nothing is published (change_outbox
rows of a rolled-back transaction never existed, and PostgreSQL only delivers NOTIFY on commit;
drivers/audit.py says which of the two the engine uses). Forgetting the audit row is a
programming error, caught here.

`unit_of_work(..., one_statement=True)` is for a mutation whose whole write is ONE statement
that also carries the audit row and notifications (the driver gets them from
`uow.take_audit()`): the connection is autocommit, so that statement is its own transaction and
the mutation costs one round trip instead of BEGIN, statements and COMMIT. Its body must send
exactly that one write (reads before it are their own transactions: requestOverride reads the
limit first); finishing without take_audit() is the same programming error. Its `uow.conn` is a
drivers/one_statement.py StatementConnection: a connection of the primary's plain asyncpg pool
when the Database has one (the gateway's: no SQLAlchemy pool, greenlet or isolation switch per
mutation), else an AUTOCOMMIT SQLAlchemy connection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, overload

from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import audit
from drivers.audit import AuditEntry, NotifyMode
from drivers.one_statement import EngineConnection, StatementConnection
from resolvers.auth import Principal
from resolvers.context import Context
from resolvers.errors import translate_errors
from resolvers.roles import authorize_mutation

__all__ = ["OneStatementUnit", "UnitOfWork", "as_json", "unit_of_work"]

Conn = TypeVar("Conn", AsyncConnection, StatementConnection)


def as_json(record: Any) -> dict[str, Any] | None:
    """A record as the audit row's before/after document."""
    if record is None:
        return None
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


@dataclass(slots=True)
class _Unit(Generic[Conn]):
    """What both kinds of unit record: the audit row and notifications, on their connection."""

    conn: Conn
    principal: Principal
    operation: str
    request_id: str
    _audit: dict[str, Any] | None = None
    _notifications: list[tuple[str, str]] = field(default_factory=list)
    _taken: bool = False

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    def audit(self, entity_type: str, entity_id: str, *, before: Any, after: Any) -> None:
        """Record the mutation's one audit row (written at commit)."""
        self._check_open()
        if self._audit is not None:
            raise RuntimeError(f"{self.operation} recorded two audit rows")
        self._audit = {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "before": before,
            "after": after,
        }

    def notify(self, kind: str, entity_id: str) -> None:
        """Publish a change to subscribers once the transaction commits."""
        self._check_open()
        self._notifications.append((kind, entity_id))

    def take_audit(self) -> AuditEntry:
        """The audit row and notifications so far, for a driver that writes them itself.

        After this the unit of work writes nothing at its end, and recording more is an error.
        """
        self._check_open()
        if self._audit is None:
            raise RuntimeError(f"{self.operation} took its audit row before recording it")
        self._taken = True
        return AuditEntry(
            tenant_id=self.tenant_id,
            actor=self.principal.subject,
            actor_role=str(self.principal.role),
            operation=self.operation,
            request_id=self.request_id,
            notifications=tuple(self._notifications),
            mode=self._notify_mode(),
            **self._audit,
        )

    def _notify_mode(self) -> NotifyMode:
        raise NotImplementedError

    def _check_open(self) -> None:
        if self._taken:
            raise RuntimeError(f"{self.operation} recorded audit data after take_audit()")

    async def _finish(self) -> None:
        raise NotImplementedError


class UnitOfWork(_Unit[AsyncConnection]):
    """A mutation's transaction; at its end the audit row and notifications are written."""

    __slots__ = ()

    def _notify_mode(self) -> NotifyMode:
        return audit.notify_mode(self.conn)

    async def _finish(self) -> None:
        if self._taken:
            return
        if self._audit is None:
            raise RuntimeError(f"{self.operation} finished without an audit row")
        await audit.insert_audit_and_notify(
            self.conn,
            tenant_id=self.tenant_id,
            actor=self.principal.subject,
            actor_role=str(self.principal.role),
            operation=self.operation,
            request_id=self.request_id,
            notifications=self._notifications,
            **self._audit,
        )


class OneStatementUnit(_Unit[StatementConnection]):
    """A mutation whose one statement is its transaction (see the module docstring)."""

    __slots__ = ()

    def _notify_mode(self) -> NotifyMode:
        return self.conn.notify_mode

    async def _finish(self) -> None:
        if not self._taken:
            raise RuntimeError(f"{self.operation} finished without its audit row in its statement")


@overload
def unit_of_work(
    ctx: Context, operation: str, *, one_statement: Literal[False] = False
) -> AbstractAsyncContextManager[UnitOfWork]: ...


@overload
def unit_of_work(
    ctx: Context, operation: str, *, one_statement: Literal[True]
) -> AbstractAsyncContextManager[OneStatementUnit]: ...


@asynccontextmanager
async def unit_of_work(
    ctx: Context, operation: str, *, one_statement: bool = False
) -> AsyncIterator[Any]:  # the overloads above say which unit
    """Check the caller's role for `operation`, then run the body in one transaction.

    The role comes from resolvers/roles.py; the transaction runs on the primary.

    one_statement=True: the body's single statement is the transaction (see the module doc).
    """
    principal = authorize_mutation(ctx, operation)
    with translate_errors():
        if not one_statement:
            async with ctx.db.primary.begin() as conn:
                uow = UnitOfWork(conn, principal, operation, ctx.request_id)
                yield uow
                await uow._finish()
        elif ctx.db.one_statement is not None:
            async with ctx.db.one_statement.acquire() as pooled:
                single = OneStatementUnit(pooled, principal, operation, ctx.request_id)
                yield single
                await single._finish()
        else:
            async with ctx.db.primary.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                single = OneStatementUnit(
                    EngineConnection(conn), principal, operation, ctx.request_id
                )
                yield single
                await single._finish()
    ctx.note_commit()  # read-your-writes: the payload reads the primary (resolvers/context.py)
