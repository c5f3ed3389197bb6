"""The `viewer` field: who the caller is."""

from __future__ import annotations

import strawberry

from resolvers.auth import require_role
from schema.base import Info
from schema.enums import Role

__all__ = ["Viewer", "ViewerQueries"]


@strawberry.type(description="The authenticated caller.")
class Viewer:
    tenant_id: str = strawberry.field(description="The caller's tenant (from the token).")
    actor: str = strawberry.field(description="The caller's subject.")
    role: Role = strawberry.field(description="The caller's role.")


@strawberry.type
class ViewerQueries:
    @strawberry.field(description="Who is calling: tenant, actor and role from the token.")
    def viewer(self, info: Info) -> Viewer:
        principal = require_role(info.context)
        return Viewer(
            tenant_id=principal.tenant_id, actor=principal.subject, role=Role(principal.role.value)
        )
