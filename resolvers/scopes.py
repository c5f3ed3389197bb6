"""Scoped execution of recovery actions (DOMAIN.md §3.6) and the scope expiry job (§7)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import audit
from drivers import scopes as db
from drivers.errors import NotFound as DbNotFound
from drivers.mapping import INCIDENT_EXECUTION_SCOPES
from drivers.records import ExecutionScopeRecord
from drivers.rules import scopes as rules
from resolvers.auth import require_role
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, NotFound
from resolvers.limit_writes import check_decimal
from resolvers.lists import nested_list
from resolvers.references import ensure_found
from resolvers.unit_of_work import as_json, unit_of_work
from resolvers.validation import check_length

__all__ = [
    "ExecuteInput",
    "ExecutionResult",
    "ScopeInput",
    "ScopeTestInput",
    "ScopeTestResult",
    "create_recovery_scope",
    "execute_with_scope",
    "expire_scopes",
    "incident_scopes",
    "revoke_scope",
    "test_recovery_scope",
]

_ENTITY = "execution_scopes"
_MONEY_MAX = Decimal(10) ** 8  # num(12,4)
_CENT_FRACTION = Decimal("0.0001")  # the columns' scale


def _now() -> datetime:
    return datetime.now(UTC)


async def incident_scopes(ctx: Context, incident_id: str) -> list[ExecutionScopeRecord]:
    """The incident's scopes, newest first ([] for a missing or foreign incident)."""
    require_role(ctx)
    return await nested_list(ctx, INCIDENT_EXECUTION_SCOPES, incident_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeInput:
    incident_id: str
    action: str
    intent: str | None = None
    max_cost_usd: Decimal = Decimal("0.50")
    max_attempts: int = 1
    ttl_seconds: int = 300
    target_agents: list[str] | None = None


def _check_scope_input(data: ScopeInput) -> None:
    check_length("action", data.action, 100, 1)
    check_length("intent", data.intent, 1000)
    check_decimal("maxCostUsd", data.max_cost_usd, positive=False, maximum=_MONEY_MAX)
    if data.max_cost_usd < 0:
        raise BadUserInput("maxCostUsd must be >= 0", field="maxCostUsd")
    if not 1 <= data.max_attempts <= 100:
        raise BadUserInput("maxAttempts must be 1..100", field="maxAttempts")
    if not 1 <= data.ttl_seconds <= 86400:
        raise BadUserInput("ttlSeconds must be 1..86400", field="ttlSeconds")
    if data.target_agents is not None and len(data.target_agents) > 100:
        raise BadUserInput("targetAgents holds at most 100 ids", field="targetAgents")


async def create_recovery_scope(ctx: Context, data: ScopeInput) -> ExecutionScopeRecord:
    """A bounded scope for one recovery action on one of the tenant's incidents."""
    _check_scope_input(data)
    async with unit_of_work(ctx, "createRecoveryScope") as uow:
        await ensure_found(
            uow.conn,
            "Incident",
            tenant_id=uow.tenant_id,
            entity_id=data.incident_id,
            field="incidentId",
        )
        now = _now()
        scope = await db.insert_scope(
            uow.conn,
            tenant_id=uow.tenant_id,
            values={
                "incident_id": data.incident_id,
                "allowed_actions": [data.action],
                "intent": data.intent or f"Recovery action for incident {data.incident_id}",
                "max_cost_usd": data.max_cost_usd,
                "max_attempts": data.max_attempts,
                "target_agents": data.target_agents,
                "created_by": uow.principal.subject,
                "created_at": now,
                "expires_at": now + timedelta(seconds=data.ttl_seconds),
            },
        )
        uow.audit(_ENTITY, scope.id, before=None, after=as_json(scope))
    return scope


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecuteInput:
    scope_id: str | None
    incident_id: str
    action: str
    cost_usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    attempt_number: int
    scope_status: str
    attempts_remaining: int
    cost_used_usd: Decimal
    evidence_id: str
    scope: ExecutionScopeRecord


def _unusable(scope: ExecutionScopeRecord, now: datetime) -> Conflict | None:
    if scope.status == "REVOKED":
        return Conflict(f"scope {scope.id} was revoked", reason="SCOPE_REVOKED")
    if scope.status == "EXPIRED" or (scope.status == "ACTIVE" and scope.expires_at <= now):
        return Conflict(f"scope {scope.id} has expired", reason="SCOPE_EXPIRED")
    if scope.status == "EXHAUSTED" or scope.attempts_used >= scope.max_attempts:
        return Conflict(f"scope {scope.id} has no attempts left", reason="SCOPE_EXHAUSTED")
    return None


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


async def execute_with_scope(ctx: Context, data: ExecuteInput) -> ExecutionResult:
    """Run one recovery action inside its scope; every refusal consumes nothing (§3.6)."""
    if not data.scope_id:
        raise BadUserInput(
            "a recovery action needs an execution scope",
            field="scopeId",
            reason="SCOPED_EXECUTION_REQUIRED",
        )
    check_decimal("costUsd", data.cost_usd, positive=False, maximum=_MONEY_MAX)
    if data.cost_usd is not None and data.cost_usd < 0:
        raise BadUserInput("costUsd must be >= 0", field="costUsd")
    async with unit_of_work(ctx, "executeWithScope") as uow:
        try:
            scope = await db.fetch_scope(
                uow.conn, tenant_id=uow.tenant_id, scope_id=data.scope_id, lock=True
            )
        except DbNotFound as exc:
            raise NotFound(
                f"scope {data.scope_id} not found", field="scopeId", reason="SCOPE_NOT_FOUND"
            ) from exc
        now = _now()
        refusal = _unusable(scope, now)
        if refusal is not None:
            raise refusal
        if data.incident_id != scope.incident_id:
            raise BadUserInput(
                "the scope is bound to another incident",
                field="incidentId",
                reason="SCOPE_INCIDENT_MISMATCH",
            )
        if data.action not in scope.allowed_actions:
            raise BadUserInput(
                f"the scope does not allow {data.action}",
                field="action",
                reason="SCOPE_ACTION_MISMATCH",
            )
        cost = data.cost_usd if data.cost_usd is not None else rules.estimated_cost_usd(data.action)
        remaining = scope.max_cost_usd - scope.cost_used_usd
        if scope.cost_used_usd + cost > scope.max_cost_usd:
            raise Conflict(
                f"execution cost ${_money(cost)} exceeds remaining scope budget "
                f"${_money(remaining)}",
                reason="SCOPE_BUDGET_EXCEEDED",
            )
        attempt = scope.attempts_used + 1
        cost = cost.quantize(_CENT_FRACTION)
        entry = {
            "action": data.action,
            "cost_usd": str(cost),
            "timestamp": now.isoformat(),
            "attempt": attempt,
        }
        after = await db.update_scope(
            uow.conn,
            tenant_id=uow.tenant_id,
            scope_id=scope.id,
            expected_status="ACTIVE",
            values={
                "attempts_used": attempt,
                "cost_used_usd": scope.cost_used_usd + cost,
                "executions": [*scope.executions, entry],
                "status": "EXHAUSTED" if attempt >= scope.max_attempts else "ACTIVE",
            },
        )
        evidence_id = await db.insert_recovery_evidence(
            uow.conn,
            tenant_id=uow.tenant_id,
            incident_id=scope.incident_id,
            payload={
                "scope_id": scope.id,
                "action": data.action,
                "attempt": attempt,
                "cost_usd": str(cost),
            },
            now=now,
        )
        uow.audit(_ENTITY, scope.id, before=as_json(scope), after=as_json(after))
    return ExecutionResult(
        attempt_number=attempt,
        scope_status=after.status,
        attempts_remaining=after.max_attempts - after.attempts_used,
        cost_used_usd=after.cost_used_usd,
        evidence_id=evidence_id,
        scope=after,
    )


async def revoke_scope(ctx: Context, scope_id: str) -> ExecutionScopeRecord:
    """ACTIVE → REVOKED; any other status is CONFLICT."""
    async with unit_of_work(ctx, "revokeScope") as uow:
        try:
            before = await db.fetch_scope(
                uow.conn, tenant_id=uow.tenant_id, scope_id=scope_id, lock=True
            )
        except DbNotFound as exc:
            raise NotFound(f"scope {scope_id} not found", reason="SCOPE_NOT_FOUND") from exc
        if before.status != "ACTIVE":
            raise Conflict(
                f"cannot revoke a scope in status {before.status}",
                reason=f"SCOPE_{before.status}",
                status=before.status,
            )
        after = await db.update_scope(
            uow.conn,
            tenant_id=uow.tenant_id,
            scope_id=scope_id,
            expected_status="ACTIVE",
            values={"status": "REVOKED", "revoked_at": _now(), "revoked_by": uow.principal.subject},
        )
        uow.audit(_ENTITY, scope_id, before=as_json(before), after=as_json(after))
    return after


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeTestInput:
    incident_id: str
    action_type: str | None
    mode: str = "DRY_RUN"
    risk_class: str = "LOW"
    target_agents: list[str] | None = None
    scope_fraction: float | None = None
    timeout_ms: int = 30000


@dataclass(frozen=True, slots=True)
class ScopeTestResult:
    mode: str
    success: bool
    issues: list[str]
    estimated_cost_cents: int
    coverage: float
    samples: int
    scope_fraction: float
    timeout_ms: int
    execution_hash: str


def _simulate(data: ScopeTestInput) -> ScopeTestResult:
    """Simulate a scoped action (§3.6 "Test"): a pure function of the input."""
    fraction = rules.clamp_fraction(data.scope_fraction)
    issues: list[str] = []
    if data.mode == "DRY_RUN":
        if not data.action_type:
            issues.append("action_type is required")
        if data.risk_class in ("HIGH", "CRITICAL") and not data.target_agents:
            issues.append(f"{data.risk_class} risk actions need target_agents")
    request: dict[str, Any] = {
        "incident_id": data.incident_id,
        "action_type": data.action_type,
        "mode": data.mode,
        "risk_class": data.risk_class,
        "target_agents": data.target_agents,
        "scope_fraction": fraction,
        "timeout_ms": data.timeout_ms,
    }
    digest = hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()
    scoped = data.mode != "DRY_RUN"
    return ScopeTestResult(
        mode=data.mode,
        success=not issues,
        issues=issues,
        estimated_cost_cents=rules.estimated_cost_cents(data.action_type or ""),
        coverage=0.0,
        samples=int(100 * fraction) if scoped else 0,
        scope_fraction=fraction,
        timeout_ms=data.timeout_ms,
        execution_hash=digest[:16],
    )


async def test_recovery_scope(ctx: Context, data: ScopeTestInput) -> ScopeTestResult:
    """TestRecoveryScope: the dry run (§3.6 "Test") plus its one audit row (DOMAIN.md §5).

    The incident must be the caller's (NOT_FOUND otherwise). The row is marked `"dry_run": true`
    in `after`, names the targeted incident, and is the only write: no scope, evidence or
    notification.
    """
    async with unit_of_work(ctx, "testRecoveryScope") as uow:
        await ensure_found(
            uow.conn,
            "Incident",
            tenant_id=uow.tenant_id,
            entity_id=data.incident_id,
            field="incidentId",
        )
        result = _simulate(data)
        uow.audit(
            "incidents",
            data.incident_id,
            before=None,
            after={"dry_run": True, "request": as_json(data), "result": as_json(result)},
        )
    return result


async def expire_scopes(engine: AsyncEngine, *, now: datetime | None = None) -> int:
    """ACTIVE scopes past expires_at → EXPIRED, one short transaction (and audit row) each."""
    moved = 0
    job = "expire_scopes"
    while True:
        at = now or _now()
        async with engine.begin() as conn:
            claimed = await db.claim_expired_scope(conn, now=at)
            if claimed is None:
                return moved
            tenant_id, before = claimed
            after = await db.update_scope(
                conn,
                tenant_id=tenant_id,
                scope_id=before.id,
                expected_status="ACTIVE",
                values={"status": "EXPIRED"},
            )
            await audit.insert_audit(
                conn,
                tenant_id=tenant_id,
                actor=job,
                actor_role="SYSTEM",
                operation=job,
                entity_type=_ENTITY,
                entity_id=before.id,
                before=as_json(before),
                after=as_json(after),
                request_id=None,
            )
        moved += 1
