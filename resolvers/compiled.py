"""The compiled read path's use case: check the caller and the arguments, supply the tenant.

Planned per root field: the roots the mapping describes are answered by ONE statement (one JSON
text per root), the others are left to the resolver path (schema/compiled.py runs them through
GraphQL and puts the answer together in selection order). A root is also left to the resolver
path when the resolver path would answer it with an error (a bad cursor, `first` out of range),
and the whole operation is when the caller has no role, so errors keep exactly one source.

An operation that compiled is remembered under the request's key (document, operation name,
variables; see Context.operation_key) with its arguments bound, so the gateway can serve the next
identical request with `run_prepared` without parsing, validating or executing GraphQL again:
only the caller changes, and the tenant is filled in from the caller's principal every time. A
mixed operation's repeat still runs its resolver roots through GraphQL, but reuses the bound
plan and the resolver roots' document (`PreparedRead.rest`).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass

import orjson
from cachetools import LRUCache
from sqlalchemy.engine import Dialect

from drivers.compiler import BoundPlan, PlanCache, bind_plan
from drivers.readpool import fetch_json_parts
from drivers.rules.breaker import BreakerSettings
from drivers.selection import Field, flatten
from resolvers.auth import Principal, Role, require_role
from resolvers.breaker_state import recover_breaker
from resolvers.context import Context, Database
from resolvers.errors import GatewayError, translate_errors
from resolvers.pagination import page_args

__all__ = [
    "PLANS",
    "Caller",
    "Compiled",
    "CompiledRoots",
    "PreparedCache",
    "PreparedRead",
    "compile_roots",
    "fetch_prepared",
    "mixed_read",
    "remember",
    "run_prepared",
    "warm_plan",
]

log = logging.getLogger("gateway.compiled")

PLANS = PlanCache(maxsize=512)

# Root response key -> that root's JSON text, printed as is by orjson.
CompiledRoots = dict[str, orjson.Fragment]


@dataclass(frozen=True, slots=True)
class PreparedRead:
    """A compiled operation with its arguments bound: what an identical request reuses."""

    bound: BoundPlan
    keys: tuple[str, ...]  # every root response key of the operation, in selection order
    # The document of the roots the resolver path answers (a graphql DocumentNode, built and
    # used by schema/compiled.py); None when every root compiled.
    rest: object | None = None


class PreparedCache(LRUCache[Hashable, PreparedRead]):
    """Bounded LRU: request key -> bound plan of an operation that compiled and passed checks.

    One per schema (the gateway's GraphQL app owns it): whether a document passes validation
    and the query limits depends on the schema it was checked against.
    """

    def __init__(self, maxsize: int = 2048) -> None:
        super().__init__(maxsize=maxsize)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a compiled read is for, and what a due breaker recovery needs (resolvers/breakers)."""

    principal: Principal
    breaker: BreakerSettings
    request_id: str


async def _settle(db: Database, caller: Caller, due: list[str]) -> bool:
    """Run the due TTL recoveries first, each in its own transaction; True if any was due."""
    names = sorted({name for part in due for name in orjson.loads(part)})
    if not names or not caller.breaker.auto_recover:
        return False
    for name in names:
        await recover_breaker(
            db.primary,
            tenant_id=caller.principal.tenant_id,
            name=name,
            settings=caller.breaker,
            operation="circuitBreaker",
            request_id=caller.request_id,
        )
    return True


async def _fetch(db: Database, bound: BoundPlan, caller: Caller) -> CompiledRoots | None:
    principal = caller.principal
    params = bound.params(
        tenant_id=principal.tenant_id, actor=principal.subject, role=principal.role.value
    )
    try:
        with translate_errors():
            if db.json_reads is None:
                return None
            parts = await fetch_json_parts(db.json_reads, bound.sql, params)
            roots = len(bound.roots)
            if bound.settle and await _settle(db, caller, parts[roots:]):
                # A breaker recovered on the primary: read it there, as the resolver path does.
                fresh = db.fresh().json_reads
                if fresh is None:
                    return None
                parts = await fetch_json_parts(fresh, bound.sql, params)
    except GatewayError as exc:
        cause = exc.__cause__ or exc
        log.warning("compiled read failed (%s); the resolver path answers", cause)
        return None
    except Exception:
        # A compiler defect must never cost the caller an answer: log it, use the resolver path.
        log.exception("compiled read crashed; the resolver path answers")
        return None
    return {
        key: orjson.Fragment(part) for key, part in zip(bound.roots, parts[:roots], strict=True)
    }


def _bind(ctx: Context, root: tuple[Field, ...]) -> BoundPlan | None:
    """The plan of the roots that compile, bound; a root whose pages fail the checks is dropped."""
    while root:
        try:
            plan = PLANS.get(root, ctx.db.reads.dialect)
        except Exception:
            # A compiler defect must never cost the caller an answer (as in _fetch).
            log.exception("compiling a read crashed; the resolver path answers")
            return None
        if plan is None:
            return None
        nodes = list(flatten(root))
        owner = [f.key for f in root for _ in flatten((f,))]  # node index -> its root's key
        pages = {}
        refused: set[str] = set()
        for index, ordering in plan.connections.items():
            args = nodes[index].args
            try:
                checked = page_args(args.get("first", 20), args.get("after"), ordering)
            except GatewayError:
                refused.add(owner[index])  # the resolver path answers it, with its error
                continue
            pages[index] = (checked.first, checked.after)
        for index, (arg, low, high) in plan.checks.items():
            if not low <= nodes[index].args[arg] <= high:
                refused.add(owner[index])  # out of range: the resolver path's BAD_USER_INPUT
        if not refused:
            return bind_plan(plan, root, pages)
        root = tuple(f for f in root if f.key not in refused)
    return None


@dataclass(frozen=True, slots=True)
class Compiled:
    bound: BoundPlan
    data: CompiledRoots


async def compile_roots(ctx: Context, root: tuple[Field, ...]) -> Compiled | None:
    """Answer the operation's compilable roots with ONE statement; None: the resolver path."""
    if ctx.db.json_reads is None:
        return None
    try:
        principal = require_role(ctx)
    except GatewayError:
        return None
    bound = _bind(ctx, root)
    if bound is None:
        return None
    data = await _fetch(ctx.db, bound, _caller(ctx, principal))
    return None if data is None else Compiled(bound, data)


def remember(ctx: Context, read: PreparedRead) -> None:
    """Keep an answered operation's bound plan for the next identical request."""
    if ctx.prepared is not None and ctx.operation_key is not None:
        ctx.prepared[ctx.operation_key] = read


def mixed_read(ctx: Context) -> PreparedRead | None:
    """The remembered mixed operation of this request's key, if the caller may read."""
    if ctx.prepared is None or ctx.operation_key is None or ctx.principal is None:
        return None
    read = ctx.prepared.get(ctx.operation_key)
    if read is None or read.rest is None or not ctx.principal.allows(Role.VIEWER):
        return None
    return read


def _caller(ctx: Context, principal: Principal) -> Caller:
    return Caller(principal, ctx.breaker, ctx.request_id)


async def fetch_prepared(ctx: Context, read: PreparedRead) -> CompiledRoots | None:
    """The compiled roots of a remembered operation, for this request's caller."""
    assert ctx.principal is not None  # noqa: S101 - mixed_read checked it
    return await _fetch(ctx.db, read.bound, _caller(ctx, ctx.principal))


async def run_prepared(
    db: Database, caller: Caller, prepared: PreparedCache, key: Hashable
) -> CompiledRoots | None:
    """Serve a request identical to one that compiled whole before; None: take the usual way."""
    read = prepared.get(key)
    if read is None or read.rest is not None or not caller.principal.allows(Role.VIEWER):
        return None
    return await _fetch(db, read.bound, caller)


def warm_plan(root: tuple[Field, ...], dialect: Dialect) -> bool:
    """Compile a selection's plan ahead of its first request; True if some root compiles."""
    return PLANS.get(root, dialect) is not None
