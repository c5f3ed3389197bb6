"""Governance mutations: cost anomalies, policy violations and LLM failures (API.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from resolvers import governance as uc
from resolvers import run_outcomes
from resolvers import runs as run_reads
from schema.base import Info
from schema.enums import CostAnomalyEntityType, FailureType, RunOutcome, Severity
from schema.incidents import Incident, incident
from schema.runs import LlmFailure, PolicyViolation, Run, llm_failure, policy_violation, run

__all__ = [
    "CostAnomalyInput",
    "CostAnomalyResult",
    "GovernanceMutations",
    "LlmFailureInput",
    "PolicyViolationInput",
    "PolicyViolationResult",
    "RunOutcomeResult",
    "TruthCheck",
]


@strawberry.input(description="A detected cost anomaly (DOMAIN.md §3.12).")
class CostAnomalyInput:
    anomaly_id: str = strawberry.field(description="The detector's id, 1..128 chars.")
    anomaly_type: str = strawberry.field(
        description="e.g. BUDGET_EXCEEDED, USER_SPIKE, DRIFT, BUDGET_WARNING (maps the trigger)."
    )
    severity: Severity = strawberry.field(description="Only HIGH and CRITICAL open an incident.")
    current_value_cents: Decimal = strawberry.field(description="Observed cost, 0 ≤ x < 1000000.")
    expected_value_cents: Decimal = strawberry.field(description="Expected cost, 0 ≤ x < 1000000.")
    entity_type: CostAnomalyEntityType | None = strawberry.field(
        default=None, description="What was measured; the incident's impact scope."
    )
    entity_id: str | None = strawberry.field(default=None, description="Id of that entity.")
    description: str | None = strawberry.field(
        default=None, description="Overrides the generated description."
    )


@strawberry.type(description="Whether a cost anomaly opened an incident.")
class CostAnomalyResult:
    created: bool = strawberry.field(description="True when an incident was opened.")
    reason: str | None = strawberry.field(description="Why no incident was opened.")
    incident: Incident | None = strawberry.field(description="The new incident, if any.")


@strawberry.input(description="A policy violated by a run (DOMAIN.md §3.14).")
class PolicyViolationInput:
    run_id: str = strawberry.field(description="The violating run.")
    policy_id: str = strawberry.field(description="The violated policy.")
    violated_rule: str = strawberry.field(description="The rule within the policy.")
    policy_type: str | None = strawberry.field(default=None, description="Kind of policy.")
    severity: Severity = strawberry.field(
        default=Severity.MEDIUM, description="The violation's own severity."
    )
    reason: str | None = strawberry.field(default=None, description="Why it was violated.")
    evidence: JSON | None = strawberry.field(
        default=None, description="A JSON object kept as immutable evidence."
    )


@strawberry.type(description="Acceptance checks of a recorded violation.")
class TruthCheck:
    violation_persisted: bool = strawberry.field(description="AC-1: the violation is stored.")
    incident_exists: bool = strawberry.field(description="AC-2: its incident exists.")
    incident_severity: Severity | None = strawberry.field(description="AC-2: with this severity.")
    evidence_exists: bool = strawberry.field(description="AC-3: evidence is attached.")
    single_incident: bool = strawberry.field(description="AC-7: at most one incident.")
    passed: bool = strawberry.field(description="All four checks hold.")


@strawberry.type(description="A recorded (or already known) policy violation.")
class PolicyViolationResult:
    violation: PolicyViolation = strawberry.field(description="The violation row.")
    incident: Incident | None = strawberry.field(description="The incident it was folded into.")
    created: bool = strawberry.field(description="False when it had been recorded before.")
    overflow: bool = strawberry.field(
        description="True when the hourly cap folded it into the overflow incident."
    )
    truth_check: TruthCheck = strawberry.field(description="Acceptance checks.")


@strawberry.input(description="An LLM failure of a run (DOMAIN.md §3.15).")
class LlmFailureInput:
    run_id: str = strawberry.field(description="The failing run (the caller's tenant's).")
    failure_type: FailureType = strawberry.field(description="TIMEOUT, EXCEPTION, ...")
    evidence: JSON = strawberry.field(description="A JSON object stored as immutable evidence.")
    error_code: str | None = strawberry.field(default=None, description="≤ 64 chars.")
    error_message: str | None = strawberry.field(default=None, description="≤ 10000 chars.")
    model: str | None = strawberry.field(default=None, description="≤ 64 chars.")
    request_id: str | None = strawberry.field(default=None, description="≤ 64 chars.")
    duration_ms: int | None = strawberry.field(default=None, description="≥ 0.")
    metadata: JSON | None = strawberry.field(default=None, description="A JSON object.")


@strawberry.type(description="What a run's outcome recorded (DOMAIN.md §3.13).")
class RunOutcomeResult:
    outcome: RunOutcome = strawberry.field(description="SUCCESS, FAILURE, BLOCKED or ABORTED.")
    run: Run = strawberry.field(description="The run, with its incident count.")
    incident: Incident | None = strawberry.field(description="The RUN incident; null on SUCCESS.")
    error_code: str | None = strawberry.field(description="The RunErrorCode found, if failed.")
    proposal_id: strawberry.ID | None = strawberry.field(
        description="The DRAFT policy proposal opened for HIGH/CRITICAL incidents."
    )
    proposal_type: str | None = strawberry.field(description="e.g. TIMEOUT_POLICY.")
    suggested_action: str | None = strawberry.field(
        description="ALERT for HIGH, BLOCK for CRITICAL (kept only here, DOMAIN.md §8.3)."
    )


@strawberry.type
class GovernanceMutations:
    @strawberry.mutation(
        description="Open an incident for a HIGH/CRITICAL cost anomaly; a failed write rolls "
        "everything back (GOVERNANCE_ERROR). [INGEST]"
    )
    async def create_incident_from_cost_anomaly(
        self,
        info: Info,
        input: Annotated[
            CostAnomalyInput, strawberry.argument(description="The detected cost anomaly.")
        ],
    ) -> CostAnomalyResult:
        outcome = await uc.create_incident_from_cost_anomaly(
            info.context,
            uc.CostAnomaly(
                anomaly_id=input.anomaly_id,
                anomaly_type=input.anomaly_type,
                severity=str(input.severity),
                current_value_cents=input.current_value_cents,
                expected_value_cents=input.expected_value_cents,
                entity_type=None if input.entity_type is None else str(input.entity_type),
                entity_id=input.entity_id,
                description=input.description,
            ),
        )
        return CostAnomalyResult(
            created=outcome.created,
            reason=outcome.reason,
            incident=None if outcome.incident is None else incident(outcome.incident),
        )

    @strawberry.mutation(
        description="Record a policy violation once per run and policy; its incident comes "
        "from the aggregator. [INGEST]"
    )
    async def record_policy_violation(
        self,
        info: Info,
        input: Annotated[
            PolicyViolationInput,
            strawberry.argument(description="The violation (idempotent per run and policy)."),
        ],
    ) -> PolicyViolationResult:
        outcome = await uc.record_policy_violation(
            info.context,
            uc.ViolationInput(
                run_id=input.run_id,
                policy_id=input.policy_id,
                violated_rule=input.violated_rule,
                policy_type=input.policy_type,
                severity=str(input.severity),
                reason=input.reason,
                evidence=input.evidence,
            ),
        )
        found = await run_reads.violation_incident(info.context, outcome.violation)
        check = outcome.truth_check
        return PolicyViolationResult(
            violation=policy_violation(outcome.violation),
            incident=None if found is None else incident(found),
            created=outcome.created,
            overflow=outcome.overflow,
            truth_check=TruthCheck(
                violation_persisted=check.violation_persisted,
                incident_exists=check.incident_exists,
                incident_severity=None
                if check.incident_severity is None
                else Severity(check.incident_severity),
                evidence_exists=check.evidence_exists,
                single_incident=check.single_incident,
                passed=check.passed,
            ),
        )

    @strawberry.mutation(
        description="Record an LLM failure with immutable evidence and mark the run FAILED. "
        "[INGEST]"
    )
    async def record_llm_failure(
        self,
        info: Info,
        input: Annotated[
            LlmFailureInput, strawberry.argument(description="The failure and its evidence.")
        ],
    ) -> LlmFailure:
        record = await uc.record_llm_failure(
            info.context,
            uc.LlmFailureInput(
                run_id=input.run_id,
                failure_type=str(input.failure_type),
                evidence=input.evidence,
                error_code=input.error_code,
                error_message=input.error_message,
                model=input.model,
                request_id=input.request_id,
                duration_ms=input.duration_ms,
                metadata=input.metadata,
            ),
        )
        return llm_failure(record)

    @strawberry.mutation(
        description="Record a terminal run's outcome: one RUN incident per failed run. [INGEST]"
    )
    async def record_run_outcome(
        self,
        info: Info,
        run_id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The terminal run whose outcome to record."),
        ],
    ) -> RunOutcomeResult:
        result = await run_outcomes.record_run_outcome(info.context, str(run_id))
        return RunOutcomeResult(
            outcome=RunOutcome(result.outcome),
            run=run(result.run),
            incident=None if result.incident is None else incident(result.incident),
            error_code=result.error_code,
            proposal_id=None if result.proposal_id is None else strawberry.ID(result.proposal_id),
            proposal_type=result.proposal_type,
            suggested_action=result.suggested_action,
        )
