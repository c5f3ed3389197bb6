"""Execution scopes: types, the `executionScopes` query and the scope mutations (§3.6)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry

from drivers.mapping import EXECUTION_SCOPE
from drivers.records import ExecutionScopeRecord
from resolvers import scopes as uc
from schema.base import Info, from_record
from schema.enums import RiskClass, ScopeStatus, ScopeTestMode
from schema.mapped import mapped_type

__all__ = [
    "ExecuteWithScopeInput",
    "ExecutionScope",
    "RecoveryScopeInput",
    "ScopeMutations",
    "ScopeQueries",
    "ScopedExecutionResult",
    "execution_scope",
]


@mapped_type(
    EXECUTION_SCOPE, description="A bounded permission to run one recovery action for an incident."
)
class ExecutionScope:
    record: strawberry.Private[ExecutionScopeRecord]

    @strawberry.field
    def attempts_remaining(self) -> int:
        return self.record.max_attempts - self.record.attempts_used


def execution_scope(record: ExecutionScopeRecord) -> ExecutionScope:
    """Convert a scope record."""
    return from_record(ExecutionScope, record)


@strawberry.type(description="Outcome of one scoped execution.")
class ScopedExecutionResult:
    attempt_number: int = strawberry.field(description="1 for the first execution.")
    scope_status: ScopeStatus = strawberry.field(description="EXHAUSTED once attempts run out.")
    attempts_remaining: int = strawberry.field(description="Executions still allowed.")
    cost_used_usd: Decimal = strawberry.field(description="Spent so far in USD.")
    evidence_id: strawberry.ID = strawberry.field(description="The RECOVERY_ACTION evidence.")
    scope: ExecutionScope = strawberry.field(description="The scope after the execution.")


@strawberry.type(description="A dry run of a recovery scope; nothing is written.")
class ScopeTestResult:
    mode: ScopeTestMode = strawberry.field(description="How it was simulated.")
    success: bool = strawberry.field(description="False when the dry run found issues.")
    issues: list[str] = strawberry.field(description="What the dry run flagged.")
    estimated_cost_cents: int = strawberry.field(description="Estimated cost of the action.")
    coverage: float = strawberry.field(description="Always 0 for simulations.")
    samples: int = strawberry.field(description="int(100 x scopeFraction) for scoped modes.")
    scope_fraction: float = strawberry.field(description="Clamped to 0.01..1.0.")
    timeout_ms: int = strawberry.field(description="Time budget of the test.")
    execution_hash: str = strawberry.field(description="First 16 hex of the request's SHA-256.")


@strawberry.input(description="A new recovery scope for one of the tenant's incidents.")
class RecoveryScopeInput:
    incident_id: strawberry.ID = strawberry.field(description="The incident (own tenant).")
    action: str = strawberry.field(description="The one action allowed (e.g. RETRY).")
    intent: str | None = strawberry.field(default=None, description="Why; has a default.")
    max_cost_usd: Decimal = strawberry.field(
        default=Decimal("0.50"), description="Budget in USD, >= 0."
    )
    max_attempts: int = strawberry.field(default=1, description="1..100 executions.")
    ttl_seconds: int = strawberry.field(default=300, description="Lifetime, 1..86400 s.")
    target_agents: list[str] | None = strawberry.field(
        default=None, description="Agents the action may touch."
    )


@strawberry.input(description="One recovery action inside its scope.")
class ExecuteWithScopeInput:
    scope_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required: no recovery action runs without a scope."
    )
    incident_id: strawberry.ID = strawberry.field(description="Must be the scope's incident.")
    action: str = strawberry.field(description="Must be the scope's allowed action.")
    cost_usd: Decimal | None = strawberry.field(
        default=None, description="Actual cost; defaults to the action's estimate."
    )


@strawberry.input(description="A recovery scope to simulate (dry run, no writes).")
class TestRecoveryScopeInput:
    incident_id: strawberry.ID = strawberry.field(description="The incident.")
    action_type: str | None = strawberry.field(default=None, description="The action.")
    mode: ScopeTestMode = strawberry.field(
        default=ScopeTestMode.DRY_RUN, description="How to simulate."
    )
    risk_class: RiskClass = strawberry.field(default=RiskClass.LOW, description="Action risk.")
    target_agents: list[str] | None = strawberry.field(default=None, description="Agents.")
    scope_fraction: float | None = strawberry.field(
        default=None, description="0.01..1.0, default 0.1."
    )
    timeout_ms: int = strawberry.field(default=30000, description="Time budget in ms.")


@strawberry.type
class ScopeQueries:
    @strawberry.field(description="An incident's execution scopes, newest first.")
    async def execution_scopes(
        self,
        info: Info,
        incident_id: Annotated[strawberry.ID, strawberry.argument(description="Incident id.")],
    ) -> list[ExecutionScope]:
        rows = await uc.incident_scopes(info.context, str(incident_id))
        return [execution_scope(r) for r in rows]


@strawberry.type
class ScopeMutations:
    @strawberry.mutation(description="Create a bounded scope for a recovery action. [OPERATOR]")
    async def create_recovery_scope(
        self,
        info: Info,
        input: Annotated[
            RecoveryScopeInput,
            strawberry.argument(
                description="The incident, the one allowed action and the scope's bounds."
            ),
        ],
    ) -> ExecutionScope:
        data = uc.ScopeInput(
            incident_id=str(input.incident_id),
            action=input.action,
            intent=input.intent,
            max_cost_usd=input.max_cost_usd,
            max_attempts=input.max_attempts,
            ttl_seconds=input.ttl_seconds,
            target_agents=input.target_agents,
        )
        return execution_scope(await uc.create_recovery_scope(info.context, data))

    @strawberry.mutation(description="Run one recovery action inside its scope. [OPERATOR]")
    async def execute_with_scope(
        self,
        info: Info,
        input: Annotated[
            ExecuteWithScopeInput,
            strawberry.argument(
                description="The scope, the incident and the action to run under it."
            ),
        ],
    ) -> ScopedExecutionResult:
        data = uc.ExecuteInput(
            scope_id=None if input.scope_id is None else str(input.scope_id),
            incident_id=str(input.incident_id),
            action=input.action,
            cost_usd=input.cost_usd,
        )
        result = await uc.execute_with_scope(info.context, data)
        return ScopedExecutionResult(
            attempt_number=result.attempt_number,
            scope_status=ScopeStatus(result.scope_status),
            attempts_remaining=result.attempts_remaining,
            cost_used_usd=result.cost_used_usd,
            evidence_id=strawberry.ID(result.evidence_id),
            scope=execution_scope(result.scope),
        )

    @strawberry.mutation(description="ACTIVE -> REVOKED. [OPERATOR]")
    async def revoke_scope(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The ACTIVE scope to revoke.")
        ],
    ) -> ExecutionScope:
        return execution_scope(await uc.revoke_scope(info.context, str(id)))

    @strawberry.mutation(
        description="Dry run of a recovery scope: validates and simulates; writes only its audit "
        "row (marked dry_run). [OPERATOR]"
    )
    async def test_recovery_scope(
        self,
        info: Info,
        input: Annotated[
            TestRecoveryScopeInput,
            strawberry.argument(description="The action to simulate and how."),
        ],
    ) -> ScopeTestResult:
        result = await uc.test_recovery_scope(
            info.context,
            uc.ScopeTestInput(
                incident_id=str(input.incident_id),
                action_type=input.action_type,
                mode=str(input.mode),
                risk_class=str(input.risk_class),
                target_agents=input.target_agents,
                scope_fraction=input.scope_fraction,
                timeout_ms=input.timeout_ms,
            ),
        )
        return ScopeTestResult(
            mode=ScopeTestMode(result.mode),
            success=result.success,
            issues=result.issues,
            estimated_cost_cents=result.estimated_cost_cents,
            coverage=result.coverage,
            samples=result.samples,
            scope_fraction=result.scope_fraction,
            timeout_ms=result.timeout_ms,
            execution_hash=result.execution_hash,
        )
