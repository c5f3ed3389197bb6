"""Run reads (DOMAIN.md §1.12): the runs list, one run, and its batched nested fields."""

from __future__ import annotations

from drivers.mapping import (
    LESSON_SOURCE_RUN,
    LIMIT_BREACH_RUN,
    LLM_FAILURE_EVIDENCE,
    POLICY_VIOLATION_INCIDENT,
    QUERY_RUN,
    RUN_BREACHES,
    RUN_FAILURES,
    RUN_INCIDENTS,
    RUN_STEPS,
    RUN_VIOLATIONS,
)
from drivers.records import (
    FailureEvidenceRecord,
    IncidentRecord,
    LessonRecord,
    LimitBreachRecord,
    PolicyViolationRecord,
    RunFailureRecord,
    RunRecord,
    RunStepRecord,
)
from drivers.rules.runs import PolicyEvaluation, policy_evaluation
from resolvers.context import Context
from resolvers.lists import nested_connection, nested_list, nested_one, root_one
from resolvers.pagination import ConnectionResult

__all__ = [
    "failure_evidence",
    "get_run",
    "lesson_source_run",
    "run_breaches",
    "run_failures",
    "run_incidents",
    "run_policy_evaluation",
    "run_steps",
    "run_violations",
    "violation_incident",
]


async def get_run(ctx: Context, run_id: str) -> RunRecord | None:
    """One run of the tenant, or None (also for another tenant's id)."""
    return await root_one(ctx, QUERY_RUN, run_id)


async def run_incidents(
    ctx: Context, run: RunRecord, *, first: int, after: str | None
) -> ConnectionResult[IncidentRecord]:
    """Incidents whose source is the run, newest first."""
    return await nested_connection(ctx, RUN_INCIDENTS, run.id, first=first, after=after)


async def run_breaches(
    ctx: Context, run: RunRecord, *, first: int, after: str | None
) -> ConnectionResult[LimitBreachRecord]:
    """Limit breaches recorded against the run, newest first."""
    return await nested_connection(ctx, RUN_BREACHES, run.id, first=first, after=after)


async def run_steps(
    ctx: Context, run: RunRecord, *, first: int, after: str | None
) -> ConnectionResult[RunStepRecord]:
    """The run's steps in step_index order."""
    return await nested_connection(ctx, RUN_STEPS, run.id, first=first, after=after)


async def run_failures(
    ctx: Context, run: RunRecord, *, first: int, after: str | None
) -> ConnectionResult[RunFailureRecord]:
    """LLM failures recorded for the run, newest first."""
    return await nested_connection(ctx, RUN_FAILURES, run.id, first=first, after=after)


async def run_violations(
    ctx: Context, run: RunRecord, *, first: int, after: str | None
) -> ConnectionResult[PolicyViolationRecord]:
    """Policy violations of the run (at most one per policy), newest first."""
    return await nested_connection(ctx, RUN_VIOLATIONS, run.id, first=first, after=after)


async def run_policy_evaluation(ctx: Context, run: RunRecord) -> PolicyEvaluation:
    """§3.13 policy evaluation; whether the run has a violation is counted in one batch."""
    violations = await ctx.loaders.count(RUN_VIOLATIONS).load(run.id)
    return policy_evaluation(run.id, run.status, has_violation=violations > 0)


async def failure_evidence(ctx: Context, failure: RunFailureRecord) -> list[FailureEvidenceRecord]:
    """The immutable evidence captured with a failure."""
    return await nested_list(ctx, LLM_FAILURE_EVIDENCE, failure.id)


async def violation_incident(
    ctx: Context, violation: PolicyViolationRecord
) -> IncidentRecord | None:
    """The incident a violation was aggregated into, if any."""
    return await nested_one(ctx, POLICY_VIOLATION_INCIDENT, violation.incident_id)


async def lesson_source_run(ctx: Context, lesson: LessonRecord) -> RunRecord | None:
    """The run a lesson refers to, if any (batched)."""
    return await nested_one(ctx, LESSON_SOURCE_RUN, lesson.source_run_id)


async def breach_run(ctx: Context, breach: LimitBreachRecord) -> RunRecord | None:
    """The run a breach happened in, if any (batched)."""
    return await nested_one(ctx, LIMIT_BREACH_RUN, breach.run_id)
