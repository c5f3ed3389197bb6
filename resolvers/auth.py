"""Who is calling: the principal, its roles, and the checks every resolver starts with."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from resolvers.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from resolvers.context import Context

__all__ = ["Principal", "Role", "require_role"]


class Role(StrEnum):
    VIEWER = "VIEWER"
    OPERATOR = "OPERATOR"
    ADMIN = "ADMIN"
    INGEST = "INGEST"


# VIEWER < OPERATOR < ADMIN. INGEST machine clients may report signals and read what they wrote
# back (VIEWER level); ADMIN may do everything, INGEST operations included (docs/decisions.md).
_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    subject: str
    role: Role

    def allows(self, required: Role) -> bool:
        """Whether this principal may do what `required` may do."""
        if required is Role.INGEST:
            return self.role in (Role.INGEST, Role.ADMIN)
        if self.role is Role.INGEST:
            return required is Role.VIEWER
        return _RANK[self.role] >= _RANK[required]


def require_role(ctx: Context, required: Role = Role.VIEWER) -> Principal:
    """Return the caller's principal if it holds `required`, else raise."""
    principal = ctx.principal
    if principal is None:
        raise Unauthenticated("a valid bearer token is required")
    if not principal.allows(required):
        raise Forbidden(f"this operation needs the {required} role", required_role=str(required))
    return principal
