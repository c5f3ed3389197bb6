"""Descriptions of every enum value (DOMAIN.md §2).

The enums themselves are plain StrEnums in drivers/enums.py (framework-free), so their values
are described here, once, and attached to the strawberry definitions before the schema is built.
`describe_enum_values` refuses an enum whose values and descriptions differ, so a value added
without its description fails at import (and tests/schema/test_descriptions.py lists it).
"""

from __future__ import annotations

from enum import Enum

from schema import analytics, enums, lessons, subscriptions

__all__ = ["describe_enum_values"]

_VALUES: dict[type[Enum], dict[str, str]] = {
    enums.Severity: {
        "CRITICAL": "Highest severity.",
        "HIGH": "Above MEDIUM.",
        "MEDIUM": "Above LOW; the default for most triggers.",
        "LOW": "Lowest severity.",
    },
    enums.IncidentStatus: {
        "OPEN": "New and not yet handled.",
        "ACKNOWLEDGED": "Someone is handling it; never auto-resolved.",
        "RESOLVED": "Terminal.",
    },
    enums.CauseType: {
        "LLM_RUN": "Came from a run (sourceRunId is set).",
        "SYSTEM": "Automated and governance paths (aggregator, cost anomaly, overflow).",
        "HUMAN": "Created by a person.",
    },
    enums.IncidentTopic: {
        "ACTIVE": "OPEN or ACKNOWLEDGED.",
        "RESOLVED": "RESOLVED.",
    },
    enums.IncidentListTopic: {
        "ACTIVE": "OPEN or ACKNOWLEDGED.",
        "RESOLVED": "RESOLVED, newest resolution first.",
        "HISTORICAL": "Resolved more than 30 days ago.",
    },
    enums.IncidentTriggerType: {
        "FAILURE_SPIKE": "Failure rate spike (initially HIGH).",
        "BUDGET_BREACH": "Budget limit exceeded (initially CRITICAL).",
        "RATE_LIMIT": "Rate limit triggered (initially MEDIUM).",
        "CONTENT_POLICY": "Content policy violation (initially HIGH).",
        "FREEZE": "Traffic stopped (initially CRITICAL).",
        "RATE_LIMIT_OVERFLOW": "More than 20 incidents in an hour: signals are aggregated.",
        "POLICY_VIOLATION": "A run violated a policy (§3.14).",
        "RUN_FAILURE": "A run failed (§3.13).",
        "RUN_COMPLETION": "A run completed (success record).",
        "COST_SPIKE": "Cost spike anomaly.",
        "COST_DRIFT": "Sustained cost drift anomaly.",
        "COST_ANOMALY": "Any other cost anomaly.",
        "BUDGET_WARNING": "Budget warning anomaly.",
        "LLM_FAILURE": "An LLM call failed.",
    },
    enums.IncidentSourceType: {
        "KILLSWITCH": "Signals through the aggregator.",
        "RUN": "A run outcome.",
        "POLICY": "A policy violation.",
        "MANUAL": "Created by a person.",
        "COST_ANOMALY": "A cost anomaly.",
    },
    enums.ResolutionMethod: {
        "AUTO": "Resolved automatically (e.g. after 900 s idle).",
        "MANUAL": "Resolved by an operator.",
        "ROLLBACK": "Resolved by rolling back a change.",
        "MANUAL_CLOSURE": "Closed as a false positive or duplicate (closeIncident).",
    },
    enums.IncidentEventType: {
        "INCIDENT_CREATED": "The incident was created.",
        "SEVERITY_ESCALATED": "Severity went up with the affected calls.",
        "ACKNOWLEDGED": "An operator acknowledged it.",
        "RESOLVED": "It was resolved.",
        "MANUALLY_CLOSED": "It was closed manually.",
        "AUTO_RESOLVED": "It was resolved after 900 s without updates.",
        "EVIDENCE_CAPTURED": "Evidence was attached.",
        "CALL_FAILED": "A related call failed.",
        "THRESHOLD_CROSSED": "A threshold was crossed.",
        "FREEZE_TRIGGERED": "Traffic was frozen.",
        "NOTE": "A free-text note.",
    },
    enums.LimitCategory: {
        "BUDGET": "Spend over a reset period.",
        "RATE": "Requests or tokens per window.",
        "THRESHOLD": "Per-run time, token and cost params (§3.4).",
    },
    enums.LimitStatus: {
        "ACTIVE": "In force.",
        "DISABLED": "Soft-deleted.",
    },
    enums.LimitScope: {
        "GLOBAL": "Everything.",
        "TENANT": "The whole tenant (the default).",
        "PROJECT": "One project (scopeId).",
        "AGENT": "One agent (scopeId).",
        "PROVIDER": "One provider (scopeId).",
    },
    enums.ResetPeriod: {
        "DAILY": "Resets every day.",
        "WEEKLY": "Resets every week.",
        "MONTHLY": "Resets every month.",
        "NONE": "Never resets.",
    },
    enums.Enforcement: {
        "BLOCK": "Refuse the work (the default).",
        "WARN": "Let it through with a warning.",
        "REJECT": "Reject the request.",
        "QUEUE": "Queue it for later.",
        "DEGRADE": "Serve a degraded result.",
        "ALERT": "Only alert.",
    },
    enums.LimitConsequence: {
        "ALERT": "Send an alert.",
        "INCIDENT": "Open an incident.",
        "ABORT": "Abort the run.",
    },
    enums.BreachType: {
        "BREACHED": "The limit was exceeded.",
        "EXHAUSTED": "The budget is used up.",
        "THROTTLED": "Requests were throttled.",
        "VIOLATED": "A threshold was violated.",
    },
    enums.IntegrityStatus: {
        "VERIFIED": "The limit is intact (score 1.0 when created).",
        "DEGRADED": "The limit is partly reliable.",
        "FAILED": "The limit cannot be relied on.",
    },
    enums.OverrideStatus: {
        "PENDING": "Waiting for an ADMIN's decision.",
        "APPROVED": "Approved; starts later.",
        "ACTIVE": "In force (at most 5 per tenant).",
        "EXPIRED": "Its time ran out.",
        "REJECTED": "Refused by an ADMIN.",
        "CANCELLED": "Withdrawn.",
    },
    enums.LessonType: {
        "FAILURE": "Learned from a failure.",
        "NEAR_THRESHOLD": "Learned from a utilization of 85 % or more.",
        "CRITICAL_SUCCESS": "Learned from a notable success.",
    },
    enums.LessonStatus: {
        "PENDING": "Waiting for a decision.",
        "CONVERTED_TO_DRAFT": "Turned into a draft policy (terminal).",
        "DEFERRED": "Put off until deferredUntil.",
        "DISMISSED": "Dismissed (terminal).",
    },
    enums.LessonSeverity: {
        "CRITICAL": "Critical.",
        "HIGH": "High.",
        "MEDIUM": "Medium.",
        "LOW": "Low.",
        "NONE": "No severity (successes).",
    },
    enums.LessonSourceType: {
        "RUN": "The lesson came from a run.",
        "INCIDENT": "The lesson came from an incident.",
    },
    enums.BreakerState: {
        "CLOSED": "On: the guarded component is used.",
        "OPEN": "Off: tripped or disabled.",
    },
    enums.BreakerSeverity: {
        "P1": "Tripped by drift.",
        "P2": "Disabled manually.",
        "P3": "Tripped by schema errors.",
    },
    enums.ProposalStatus: {"DRAFT": "A draft, not yet in force."},
    enums.ProposalSourceType: {
        "LESSON": "Converted from a lesson.",
        "INCIDENT": "Created for a HIGH or CRITICAL run incident.",
    },
    enums.BundleKind: {
        "EVIDENCE": "The evidence bundle (EVD-).",
        "SOC2": "The evidence bundle with SOC2 control mappings (SOC2-).",
        "EXECUTIVE_DEBRIEF": "A plain-language debrief (EXEC-).",
    },
    enums.Role: {
        "VIEWER": "Reads.",
        "OPERATOR": "Reads and operates incidents, overrides, lessons and scopes.",
        "ADMIN": "Everything, including limits and breakers.",
        "INGEST": "Machine clients that report signals.",
    },
    enums.ScopeStatus: {
        "ACTIVE": "Usable.",
        "EXHAUSTED": "All attempts used.",
        "EXPIRED": "Past expiresAt.",
        "REVOKED": "Revoked by an operator.",
    },
    enums.ScopeTestMode: {
        "AGENT_SUBSET": "Simulate on a subset of agents.",
        "REQUEST_SAMPLE": "Simulate on a sample of requests.",
        "BUDGET_FRACTION": "Simulate with a fraction of the budget.",
        "DRY_RUN": "Only validate the request.",
    },
    enums.RiskClass: {
        "LOW": "Low risk.",
        "MEDIUM": "Medium risk: never without a scope.",
        "HIGH": "High risk: needs target agents.",
        "CRITICAL": "Critical risk: needs target agents.",
    },
    enums.SignalType: {
        "NEAR": "Approaching the threshold.",
        "BREACH": "Crossed the threshold.",
    },
    enums.ThresholdMetric: {
        "TOKEN_USAGE": "Tokens used.",
        "COST": "Cost.",
        "BURN_RATE": "Spend per unit of time.",
        "RAG_ACCESS": "Retrieval accesses.",
        "STEP_COUNT": "Steps taken.",
        "LATENCY": "Latency.",
    },
    enums.ThresholdAction: {
        "PAUSE": "The run was paused.",
        "STOP": "The run was stopped.",
        "KILL": "The run was killed.",
    },
    enums.RunStatus: {
        "QUEUED": "Not started.",
        "RUNNING": "Started, not finished.",
        "SUCCEEDED": "Finished successfully.",
        "FAILED": "Finished with an error.",
        "HALTED": "Stopped by governance (e.g. the hard budget limit).",
        "CANCELLED": "Cancelled.",
    },
    enums.StepStatus: {
        "OK": "The step went fine.",
        "WARNING": "The step raised a warning.",
        "VIOLATION": "The step violated a policy.",
    },
    enums.FailureType: {
        "TIMEOUT": "The call timed out.",
        "EXCEPTION": "The call raised an error.",
        "INVALID_OUTPUT": "The call returned unusable output.",
    },
    enums.FailureEvidenceType: {
        "LLM_FAILURE_CAPTURE": "The captured failure.",
        "TIMEOUT_TRACE": "A trace of a timeout.",
        "EXCEPTION_STACK": "A stack trace.",
    },
    enums.IncidentEvidenceType: {
        "POLICY_VIOLATION": "Evidence of a policy violation.",
        "RECOVERY_ACTION": "A recovery action executed under a scope.",
    },
    enums.AutoAction: {
        "FREEZE": "Traffic was frozen.",
        "THROTTLE": "Traffic was throttled.",
        "NONE": "Nothing was done.",
        "AGGREGATE": "Signals are aggregated (rate-limit overflow).",
    },
    enums.CostAnomalyEntityType: {
        "AGENT": "An agent.",
        "PROJECT": "A project.",
        "TENANT": "The whole tenant.",
        "USER": "A user.",
    },
    enums.RunOutcome: {
        "SUCCESS": "The run SUCCEEDED.",
        "FAILURE": "The run FAILED.",
        "BLOCKED": "The run was HALTED.",
        "ABORTED": "The run was CANCELLED.",
    },
    enums.RunThresholdSignal: {
        "EXECUTION_TIME_EXCEEDED": "Ran longer than maxExecutionTimeMs.",
        "TOKEN_LIMIT_EXCEEDED": "Used more input + output tokens than maxTokens.",
        "COST_LIMIT_EXCEEDED": "Cost more than maxCostUsd (finished runs).",
        "RUN_FAILED": "FAILED while failureSignal is on.",
    },
    enums.OpsEventType: {
        "LLM_CALL_FAILED": "A failed run (severity 3).",
        "INFRA_LIMIT_HIT": "A run over a time, token or cost limit (severity 2).",
    },
    enums.PolicyEvaluationOutcome: {
        "NO_VIOLATION": "Succeeded without a violation.",
        "VIOLATION_INCIDENT": "Has a recorded policy violation.",
        "ADVISORY": "Halted without a violation row.",
        "NOT_APPLICABLE": "Failed, cancelled or not finished, without a violation row.",
    },
    analytics.Granularity: {
        "DAY": "One point per day.",
        "WEEK": "One point per week.",
        "MONTH": "One point per month.",
    },
    analytics.PatternType: {
        "CATEGORY_CLUSTER": "Three or more incidents of one category.",
        "SEVERITY_SPIKE": "Three or more OPEN CRITICAL or HIGH incidents in the last hour.",
        "CASCADE_FAILURE": "Two or more incidents from one run.",
    },
    analytics.InsightType: {
        "PREVENTION": "How to avoid it next time.",
        "DETECTION": "How to notice it sooner.",
        "RESPONSE": "How to respond to it.",
        "COMMUNICATION": "How to communicate about it.",
    },
    lessons.LessonSkipReason: {
        "ALREADY_EXISTS": "A lesson for this source and type exists.",
        "BELOW_THRESHOLD": "Utilization below 85 %: nothing to learn.",
        "DEBOUNCED": "A lesson with the same type and band was created in the last 24 h.",
    },
    subscriptions.IncidentChangeKind: {
        "CREATED": "The incident was created.",
        "UPDATED": "The incident changed.",
        "ESCALATED": "Its severity went up.",
        "ACKNOWLEDGED": "It was acknowledged.",
        "RESOLVED": "It was resolved.",
        "RESYNC": "Not a change: the gateway's change listener reconnected and changes made "
        "meanwhile may be missing; re-read the incidents you show (incident and incidentId "
        "are null, changedAt is when the listener came back).",
    },
}


def describe_enum_values() -> None:
    """Attach the descriptions to the strawberry enum definitions (idempotent)."""
    for enum_cls, texts in _VALUES.items():
        definition = enum_cls.__strawberry_definition__  # type: ignore[attr-defined]
        names = {v.name for v in definition.values}
        if names != set(texts):
            raise RuntimeError(f"{definition.name}: describe exactly {sorted(names)}")
        for value in definition.values:
            value.description = texts[value.name]
