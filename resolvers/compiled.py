"""The compiled read path's use case: check the caller and the arguments, supply the tenant.

Returns PostgreSQL's JSON text of `data`, or None when the operation must run on the resolver
path instead: a selection outside the mapping, or anything the resolver path answers with an
error (no role, a bad cursor, `first` out of range), so errors keep exactly one source.
"""

from __future__ import annotations

import logging

from drivers.compiler import PlanCache, execute_plan
from drivers.selection import Field, flatten
from resolvers.auth import require_role
from resolvers.context import Context
from resolvers.errors import GatewayError, translate_errors
from resolvers.pagination import page_args

__all__ = ["PLANS", "run_compiled"]

log = logging.getLogger("gateway.compiled")

PLANS = PlanCache(maxsize=512)


async def run_compiled(ctx: Context, root: tuple[Field, ...]) -> str | None:
    """Serve a query operation with ONE statement, or return None to use the resolver path."""
    engine = ctx.db.reads
    plan = PLANS.get(root, engine.dialect)
    if plan is None:
        return None
    try:
        principal = require_role(ctx)
        nodes = list(flatten(root))
        pages = {}
        for index, ordering in plan.connections.items():
            args = nodes[index].args
            checked = page_args(args.get("first", 20), args.get("after"), ordering)
            pages[index] = (checked.first, checked.after)
    except GatewayError:
        return None
    try:
        with translate_errors():
            async with engine.connect() as conn:
                return await execute_plan(
                    conn,
                    plan,
                    root,
                    pages,
                    tenant_id=principal.tenant_id,
                    actor=principal.subject,
                    role=principal.role.value,
                )
    except GatewayError as exc:
        log.warning("compiled read failed (%s); the resolver path answers", exc.message)
        return None
    except Exception:
        # A compiler defect must never cost the caller an answer: log it, use the resolver path.
        log.exception("compiled read crashed; the resolver path answers")
        return None
