"""One transaction per mutation: state change, events, audit row and notifications together.

    async with unit_of_work(ctx, "acknowledgeIncident", Role.OPERATOR) as uow:
        ... driver writes on uow.conn ...
        uow.audit("incidents", incident.id, before=old, after=new)
        uow.notify("INCIDENT_ACKNOWLEDGED", incident.id)

On a clean exit the audit row and the pg_notify calls are written inside the same transaction,
then it commits; any exception rolls everything back and nothing is published (PostgreSQL only
delivers NOTIFY on commit). Forgetting the audit row is a programming error, caught here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import audit
from resolvers.auth import Principal, Role, require_role
from resolvers.context import Context
from resolvers.errors import translate_errors

__all__ = ["UnitOfWork", "as_json", "unit_of_work"]


def as_json(record: Any) -> dict[str, Any] | None:
    """A record as the audit row's before/after document."""
    if record is None:
        return None
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


@dataclass(slots=True)
class UnitOfWork:
    conn: AsyncConnection
    principal: Principal
    operation: str
    request_id: str
    _audit: dict[str, Any] | None = None
    _notifications: list[tuple[str, str]] = field(default_factory=list)

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    def audit(self, entity_type: str, entity_id: str, *, before: Any, after: Any) -> None:
        """Record the mutation's one audit row (written at commit)."""
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
        self._notifications.append((kind, entity_id))

    async def _finish(self) -> None:
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


@asynccontextmanager
async def unit_of_work(ctx: Context, operation: str, role: Role) -> AsyncIterator[UnitOfWork]:
    """Check the caller's role, then run the body in one transaction on the primary."""
    principal = require_role(ctx, role)
    with translate_errors():
        async with ctx.db.primary.begin() as conn:
            uow = UnitOfWork(conn, principal, operation, ctx.request_id)
            yield uow
            await uow._finish()
