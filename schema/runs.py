"""Run, step, failure, violation and evidence types, and the run queries (API.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from drivers.records import (
    FailureEvidenceRecord,
    IncidentEvidenceRecord,
    PolicyViolationRecord,
    RunFailureRecord,
    RunRecord,
    RunStepRecord,
)
from resolvers import runs as uc
from resolvers.lists import root_list
from resolvers.thresholds import run_threshold_evaluation as run_threshold_evaluation_uc
from schema.base import Info, from_record
from schema.enums import (
    FailureEvidenceType,
    FailureType,
    IncidentEvidenceType,
    PolicyEvaluationOutcome,
    RunStatus,
    Severity,
    StepStatus,
)
from schema.filters import PAGE_SIZES, FilterInput
from schema.pagination import After, Connection, First, connection
from schema.thresholds import RunThresholdEvaluation, run_threshold_evaluation

if TYPE_CHECKING:
    from schema.incidents import Incident
    from schema.limits import LimitBreach

__all__ = [
    "FailureEvidence",
    "IncidentEvidence",
    "LlmFailure",
    "PolicyEvaluation",
    "PolicyViolation",
    "Run",
    "RunFilter",
    "RunQueries",
    "RunStep",
    "llm_failure",
    "policy_violation",
    "run",
]

_Incident = Annotated["Incident", strawberry.lazy("schema.incidents")]
_LimitBreach = Annotated["LimitBreach", strawberry.lazy("schema.limits")]


@strawberry.type(description="One step of a run.")
class RunStep:
    record: strawberry.Private[RunStepRecord]
    run_id: strawberry.ID = strawberry.field(description="The run.")
    step_index: int = strawberry.field(description="Position of the step in the run, from 0.")
    step_type: str = strawberry.field(description="Kind of step.")
    tokens: int = strawberry.field(description="Tokens used by the step.")
    cost_cents: Decimal = strawberry.field(description="Cost of the step in cents.")
    duration_ms: int = strawberry.field(description="Duration of the step in ms.")
    status: StepStatus = strawberry.field(description="OK, WARNING or VIOLATION.")
    content_hash: str | None = strawberry.field(description="SHA-256 hex of the step content.")
    created_at: datetime = strawberry.field(description="When the step was recorded.")


@strawberry.type(description="Immutable evidence captured with an LLM failure.")
class FailureEvidence:
    record: strawberry.Private[FailureEvidenceRecord]
    id: strawberry.ID = strawberry.field(description="Evidence id.")
    failure_id: strawberry.ID = strawberry.field(description="The failure it belongs to.")
    evidence_type: FailureEvidenceType = strawberry.field(description="Kind of evidence.")
    evidence_data: JSON = strawberry.field(description="The captured evidence (JSON).")
    is_immutable: bool = strawberry.field(description="Always true: the database refuses updates.")
    created_at: datetime = strawberry.field(description="When it was captured.")


@strawberry.type(description="A recorded LLM failure of a run (DOMAIN.md §1.13).")
class LlmFailure:
    record: strawberry.Private[RunFailureRecord]
    id: strawberry.ID = strawberry.field(description="Failure id.")
    run_id: strawberry.ID = strawberry.field(description="The failed run.")
    failure_type: FailureType = strawberry.field(description="Kind of failure.")
    error_code: str | None = strawberry.field(description="Error code, at most 64 characters.")
    error_message: str | None = strawberry.field(description="Error message.")
    model: str | None = strawberry.field(description="The model that failed.")
    request_id: str | None = strawberry.field(description="The provider's request id.")
    duration_ms: int | None = strawberry.field(description="How long the call ran, in ms.")
    metadata: JSON | None = strawberry.field(description="Further details (JSON).")
    created_at: datetime = strawberry.field(description="When it was recorded.")

    @strawberry.field(description="Evidence captured with the failure.")
    async def evidence(self, info: Info) -> list[FailureEvidence]:
        rows = await uc.failure_evidence(info.context, self.record)
        return [from_record(FailureEvidence, r) for r in rows]


def llm_failure(record: RunFailureRecord) -> LlmFailure:
    """Convert a failure record."""
    return from_record(LlmFailure, record)


@strawberry.type(description="A policy violated by a run; at most one per run and policy.")
class PolicyViolation:
    record: strawberry.Private[PolicyViolationRecord]
    id: strawberry.ID = strawberry.field(description="Violation id.")
    run_id: str = strawberry.field(description="The violating run.")
    policy_id: str = strawberry.field(description="The violated policy.")
    violated_rule: str = strawberry.field(description="The rule that was violated.")
    severity: Severity = strawberry.field(description="The violation's own severity.")
    reason: str | None = strawberry.field(description="Why it is a violation.")
    evidence: JSON | None = strawberry.field(description="Evidence supplied with it (JSON).")
    incident_id: str | None = strawberry.field(description="The incident it was aggregated into.")
    created_at: datetime = strawberry.field(description="When it was recorded.")

    @strawberry.field(description="The incident the violation was aggregated into.")
    async def incident(self, info: Info) -> _Incident | None:
        from schema.incidents import incident  # noqa: PLC0415 - cycle between the two modules

        record = await uc.violation_incident(info.context, self.record)
        return None if record is None else incident(record)


def policy_violation(record: PolicyViolationRecord) -> PolicyViolation:
    """Convert a violation record."""
    return from_record(PolicyViolation, record)


@strawberry.type(description="Append-only evidence attached to an incident.")
class IncidentEvidence:
    record: strawberry.Private[IncidentEvidenceRecord]
    id: strawberry.ID = strawberry.field(description="Evidence id.")
    incident_id: strawberry.ID = strawberry.field(description="The incident it is attached to.")
    evidence_type: IncidentEvidenceType = strawberry.field(
        description="POLICY_VIOLATION or RECOVERY_ACTION."
    )
    recovery_executed: bool = strawberry.field(
        description="Whether it records an executed recovery action."
    )
    payload: JSON | None = strawberry.field(description="The evidence itself (JSON).")
    created_at: datetime = strawberry.field(description="When it was attached.")


@strawberry.type(description="One agent run (written by the runtime; read here).")
class Run:
    record: strawberry.Private[RunRecord]
    id: strawberry.ID = strawberry.field(description="Run id.")
    agent_id: str | None = strawberry.field(description="The agent that ran.")
    project_id: str | None = strawberry.field(description="The project it ran in.")
    status: RunStatus = strawberry.field(description="Lifecycle state.")
    error_message: str | None = strawberry.field(description="Why it failed or stopped.")
    started_at: datetime | None = strawberry.field(description="When it started.")
    completed_at: datetime | None = strawberry.field(
        description="When it reached a terminal status."
    )
    input_tokens: int = strawberry.field(description="Input tokens used.")
    output_tokens: int = strawberry.field(description="Output tokens used.")
    estimated_cost_usd: Decimal | None = strawberry.field(description="Estimated cost in USD.")
    incident_count: int = strawberry.field(description="Incidents created from this run.")
    plan_step_count: int | None = strawberry.field(description="Steps planned.")
    completed_step_count: int = strawberry.field(description="Steps completed.")
    created_at: datetime = strawberry.field(description="When it was recorded.")
    updated_at: datetime = strawberry.field(description="Last change.")

    @strawberry.field(description="Incidents whose source is this run, newest first.")
    async def incidents(
        self, info: Info, first: First = 20, after: After = None
    ) -> Connection[_Incident]:
        from schema.incidents import incident  # noqa: PLC0415 - cycle between the two modules

        page = await uc.run_incidents(info.context, self.record, first=first, after=after)
        return connection(page, incident)

    @strawberry.field(description="Limit breaches recorded against this run, newest first.")
    async def breaches(
        self, info: Info, first: First = 20, after: After = None
    ) -> Connection[_LimitBreach]:
        from schema.limits import breach  # noqa: PLC0415 - cycle between the two modules

        page = await uc.run_breaches(info.context, self.record, first=first, after=after)
        return connection(page, breach)

    @strawberry.field(description="The run's steps in step order.")
    async def steps(
        self, info: Info, first: First = 20, after: After = None
    ) -> Connection[RunStep]:
        page = await uc.run_steps(info.context, self.record, first=first, after=after)
        return connection(page, lambda r: from_record(RunStep, r))

    @strawberry.field(description="LLM failures of this run, newest first.")
    async def failures(
        self, info: Info, first: First = 20, after: After = None
    ) -> Connection[LlmFailure]:
        page = await uc.run_failures(info.context, self.record, first=first, after=after)
        return connection(page, llm_failure)

    @strawberry.field(
        description="The run measured against its resolved threshold params (§3.4), now."
    )
    async def threshold_evaluation(self, info: Info) -> RunThresholdEvaluation:
        got = await run_threshold_evaluation_uc(info.context, self.record)
        return run_threshold_evaluation(got)

    @strawberry.field(description="Whether the run violated policy (§3.13).")
    async def policy_evaluation(self, info: Info) -> PolicyEvaluation:
        got = await uc.run_policy_evaluation(info.context, self.record)
        return PolicyEvaluation(
            evaluation_id=got.evaluation_id,
            run_id=self.id,
            outcome=PolicyEvaluationOutcome(got.outcome),
            confidence=got.confidence,
        )

    @strawberry.field(description="Policy violations of this run (one per policy), newest first.")
    async def violations(
        self, info: Info, first: First = 20, after: After = None
    ) -> Connection[PolicyViolation]:
        page = await uc.run_violations(info.context, self.record, first=first, after=after)
        return connection(page, policy_violation)


@strawberry.type(description="Whether a run violated policy (§3.13), derived on read.")
class PolicyEvaluation:
    evaluation_id: str = strawberry.field(
        description='"policy_eval_" + first 8 chars of the run id.'
    )
    run_id: strawberry.ID = strawberry.field(description="The evaluated run.")
    outcome: PolicyEvaluationOutcome = strawberry.field(
        description="VIOLATION_INCIDENT with a violation row; else by run status."
    )
    confidence: float = strawberry.field(
        description="1.0 for NO_VIOLATION and VIOLATION_INCIDENT, else 0.0."
    )


def run(record: RunRecord) -> Run:
    """Convert a run record."""
    return from_record(Run, record)


@strawberry.input(description="Every given field narrows the list (AND); lists match any value.")
class RunFilter(FilterInput, root="runs"):
    pass


@strawberry.type
class RunQueries:
    @strawberry.field(description="The tenant's runs, newest first.")
    async def runs(
        self,
        info: Info,
        first: First = PAGE_SIZES["runs"],
        after: After = None,
        filter: Annotated[
            RunFilter | None,
            strawberry.argument(description="Narrow the list; every given field must match."),
        ] = None,
    ) -> Connection[Run]:
        page = await root_list(
            info.context,
            "runs",
            first=first,
            after=after,
            filter=filter.values() if filter else None,
        )
        return connection(page, run)

    @strawberry.field(description="One run, or null if there is none with this id.")
    async def run(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="Run id; another tenant's id reads as null."),
        ],
    ) -> Run | None:
        record = await uc.get_run(info.context, str(id))
        return None if record is None else run(record)
