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
from drivers.runs import RunFilter as RunFilterSpec
from resolvers import runs as uc
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
from schema.pagination import Connection, connection
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
    run_id: strawberry.ID
    step_index: int
    step_type: str
    tokens: int
    cost_cents: Decimal
    duration_ms: int
    status: StepStatus
    content_hash: str | None = strawberry.field(description="SHA-256 hex of the step content.")
    created_at: datetime


@strawberry.type(description="Immutable evidence captured with an LLM failure.")
class FailureEvidence:
    record: strawberry.Private[FailureEvidenceRecord]
    id: strawberry.ID
    failure_id: strawberry.ID
    evidence_type: FailureEvidenceType
    evidence_data: JSON
    is_immutable: bool
    created_at: datetime


@strawberry.type(description="A recorded LLM failure of a run (DOMAIN.md §1.13).")
class LlmFailure:
    record: strawberry.Private[RunFailureRecord]
    id: strawberry.ID
    run_id: strawberry.ID
    failure_type: FailureType
    error_code: str | None
    error_message: str | None
    model: str | None
    request_id: str | None
    duration_ms: int | None
    metadata: JSON | None
    created_at: datetime

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
    id: strawberry.ID
    run_id: str
    policy_id: str
    violated_rule: str
    severity: Severity
    reason: str | None
    evidence: JSON | None
    incident_id: str | None
    created_at: datetime

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
    id: strawberry.ID
    incident_id: strawberry.ID
    evidence_type: IncidentEvidenceType
    recovery_executed: bool
    payload: JSON | None
    created_at: datetime


@strawberry.type(description="One agent run (written by the runtime; read here).")
class Run:
    record: strawberry.Private[RunRecord]
    id: strawberry.ID
    agent_id: str | None
    project_id: str | None
    status: RunStatus
    error_message: str | None
    started_at: datetime | None
    completed_at: datetime | None
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: Decimal | None
    incident_count: int
    plan_step_count: int | None
    completed_step_count: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Incidents whose source is this run, newest first.")
    async def incidents(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[_Incident]:
        from schema.incidents import incident  # noqa: PLC0415 - cycle between the two modules

        page = await uc.run_incidents(info.context, self.record, first=first, after=after)
        return connection(page, incident)

    @strawberry.field(description="Limit breaches recorded against this run, newest first.")
    async def breaches(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[_LimitBreach]:
        from schema.limits import breach  # noqa: PLC0415 - cycle between the two modules

        page = await uc.run_breaches(info.context, self.record, first=first, after=after)
        return connection(page, breach)

    @strawberry.field(description="The run's steps in step order.")
    async def steps(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[RunStep]:
        page = await uc.run_steps(info.context, self.record, first=first, after=after)
        return connection(page, lambda r: from_record(RunStep, r))

    @strawberry.field(description="LLM failures of this run, newest first.")
    async def failures(
        self, info: Info, first: int = 20, after: str | None = None
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
        self, info: Info, first: int = 20, after: str | None = None
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
class RunFilter:
    status: list[RunStatus] | None = None
    agent_id: str | None = None
    project_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def to_spec(self) -> RunFilterSpec:
        return RunFilterSpec(
            status=None if self.status is None else tuple(str(s) for s in self.status),
            agent_id=self.agent_id,
            project_id=self.project_id,
            created_after=self.created_after,
            created_before=self.created_before,
        )


@strawberry.type
class RunQueries:
    @strawberry.field(description="The tenant's runs, newest first.")
    async def runs(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        filter: RunFilter | None = None,
    ) -> Connection[Run]:
        page = await uc.list_runs(
            info.context, first=first, after=after, filter=filter.to_spec() if filter else None
        )
        return connection(page, run)

    @strawberry.field(description="One run, or null if there is none with this id.")
    async def run(self, info: Info, id: strawberry.ID) -> Run | None:
        record = await uc.get_run(info.context, str(id))
        return None if record is None else run(record)
