"""Run, step, failure, violation and evidence types, and the run queries (API.md)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from drivers.mapping import (
    FAILURE_EVIDENCE,
    INCIDENT_EVIDENCE,
    POLICY_VIOLATION,
    RUN,
    RUN_FAILURE,
    RUN_STEP,
)
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
    PolicyEvaluationOutcome,
)
from schema.filters import PAGE_SIZES, FilterInput
from schema.mapped import mapped_type
from schema.pagination import After, Connection, First, connection
from schema.thresholds import RunThresholdEvaluation, run_threshold_evaluation

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


@mapped_type(RUN_STEP, description="One step of a run.")
class RunStep:
    record: strawberry.Private[RunStepRecord]


@mapped_type(FAILURE_EVIDENCE, description="Immutable evidence captured with an LLM failure.")
class FailureEvidence:
    record: strawberry.Private[FailureEvidenceRecord]


@mapped_type(RUN_FAILURE, description="A recorded LLM failure of a run (DOMAIN.md §1.13).")
class LlmFailure:
    record: strawberry.Private[RunFailureRecord]


def llm_failure(record: RunFailureRecord) -> LlmFailure:
    """Convert a failure record."""
    return from_record(LlmFailure, record)


@mapped_type(
    POLICY_VIOLATION, description="A policy violated by a run; at most one per run and policy."
)
class PolicyViolation:
    record: strawberry.Private[PolicyViolationRecord]


def policy_violation(record: PolicyViolationRecord) -> PolicyViolation:
    """Convert a violation record."""
    return from_record(PolicyViolation, record)


@mapped_type(INCIDENT_EVIDENCE, description="Append-only evidence attached to an incident.")
class IncidentEvidence:
    record: strawberry.Private[IncidentEvidenceRecord]


@mapped_type(RUN, description="One agent run (written by the runtime; read here).")
class Run:
    record: strawberry.Private[RunRecord]

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
            run_id=strawberry.ID(self.record.id),
            outcome=PolicyEvaluationOutcome(got.outcome),
            confidence=got.confidence,
        )


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
