"""The compiled read path's use case: check the caller and the arguments, supply the tenant.

Returns PostgreSQL's JSON text of `data`, or None when the operation must run on the resolver
path instead: a selection outside the mapping, or anything the resolver path answers with an
error (no role, a bad cursor, `first` out of range), so errors keep exactly one source.

An operation that compiled is remembered under the request's key (document, operation name,
variables; see Context.operation_key) with its arguments bound, so the gateway can serve the next
identical request with `run_prepared` without parsing, validating or executing GraphQL again:
only the caller changes, and the tenant is filled in from the caller's principal every time.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from cachetools import LRUCache
from sqlalchemy.engine import Dialect

from drivers.compiler import BoundPlan, PlanCache, bind_plan
from drivers.readpool import fetch_json_text
from drivers.selection import Field, flatten
from resolvers.auth import Principal, Role, require_role
from resolvers.context import Context, Database
from resolvers.errors import GatewayError, translate_errors
from resolvers.pagination import page_args

__all__ = ["PLANS", "PreparedCache", "run_compiled", "run_prepared", "warm_plan"]

log = logging.getLogger("gateway.compiled")

PLANS = PlanCache(maxsize=512)


class PreparedCache(LRUCache[Hashable, BoundPlan]):
    """Bounded LRU: request key -> bound plan of an operation that compiled and passed checks.

    One per schema (the gateway's GraphQL app owns it): whether a document passes validation
    and the query limits depends on the schema it was checked against.
    """

    def __init__(self, maxsize: int = 2048) -> None:
        super().__init__(maxsize=maxsize)


async def _fetch(db: Database, bound: BoundPlan, principal: Principal) -> str | None:
    if db.json_reads is None:
        return None
    params = bound.params(
        tenant_id=principal.tenant_id, actor=principal.subject, role=principal.role.value
    )
    try:
        with translate_errors():
            return await fetch_json_text(db.json_reads, bound.sql, params)
    except GatewayError as exc:
        log.warning("compiled read failed (%s); the resolver path answers", exc.message)
        return None
    except Exception:
        # A compiler defect must never cost the caller an answer: log it, use the resolver path.
        log.exception("compiled read crashed; the resolver path answers")
        return None


async def run_compiled(ctx: Context, root: tuple[Field, ...]) -> str | None:
    """Serve a query operation with ONE statement, or return None to use the resolver path."""
    plan = PLANS.get(root, ctx.db.reads.dialect)
    if plan is None or ctx.db.json_reads is None:
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
    bound = bind_plan(plan, root, pages)
    body = await _fetch(ctx.db, bound, principal)
    if body is not None and ctx.prepared is not None and ctx.operation_key is not None:
        ctx.prepared[ctx.operation_key] = bound
    return body


async def run_prepared(
    db: Database, principal: Principal, prepared: PreparedCache, key: Hashable
) -> str | None:
    """Serve a request identical to one that compiled before; None: take the usual way."""
    bound = prepared.get(key)
    if bound is None or not principal.allows(Role.VIEWER):
        return None
    return await _fetch(db, bound, principal)


def warm_plan(root: tuple[Field, ...], dialect: Dialect) -> bool:
    """Compile a selection's plan ahead of its first request; True if it compiles."""
    return PLANS.get(root, dialect) is not None
