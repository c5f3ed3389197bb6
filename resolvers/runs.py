"""Run reads (DOMAIN.md §1.12): one run, its policy evaluation, a violation's incident.

The runs list and the plain nested fields are generated from the mapping (drivers/mapping.py
ROOT_LISTS and RELATIONS).
"""

from __future__ import annotations

from drivers.mapping import POLICY_VIOLATION_INCIDENT, QUERY_RUN, RUN_VIOLATIONS
from drivers.records import IncidentRecord, PolicyViolationRecord, RunRecord
from drivers.rules.runs import PolicyEvaluation, policy_evaluation
from resolvers.context import Context
from resolvers.lists import nested_one, root_one

__all__ = [
    "get_run",
    "run_policy_evaluation",
    "violation_incident",
]


async def get_run(ctx: Context, run_id: str) -> RunRecord | None:
    """One run of the tenant, or None (also for another tenant's id)."""
    return await root_one(ctx, QUERY_RUN, run_id)


async def run_policy_evaluation(ctx: Context, run: RunRecord) -> PolicyEvaluation:
    """§3.13 policy evaluation; whether the run has a violation is counted in one batch."""
    violations = await ctx.loaders.count(RUN_VIOLATIONS).load(run.id)
    return policy_evaluation(run.id, run.status, has_violation=violations > 0)


async def violation_incident(
    ctx: Context, violation: PolicyViolationRecord
) -> IncidentRecord | None:
    """The incident a violation was aggregated into, if any (reportPolicyViolation's answer)."""
    return await nested_one(ctx, POLICY_VIOLATION_INCIDENT, violation.incident_id)
