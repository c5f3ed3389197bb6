"""GraphQL enums: the exact strings of DOMAIN.md §2, registered from drivers/enums.py."""

from __future__ import annotations

import strawberry

from drivers import enums as e

__all__ = [
    "BreachType",
    "BreakerSeverity",
    "BreakerState",
    "BundleKind",
    "CauseType",
    "Enforcement",
    "IncidentEventType",
    "IncidentListTopic",
    "IncidentSourceType",
    "IncidentStatus",
    "IncidentTopic",
    "IncidentTriggerType",
    "IntegrityStatus",
    "LessonSeverity",
    "LessonSourceType",
    "LessonStatus",
    "LessonType",
    "LimitCategory",
    "LimitConsequence",
    "LimitScope",
    "LimitStatus",
    "OpsEventType",
    "OverrideStatus",
    "PolicyEvaluationOutcome",
    "ProposalSourceType",
    "ProposalStatus",
    "ResetPeriod",
    "ResolutionMethod",
    "RiskClass",
    "Role",
    "RunThresholdSignal",
    "ScopeStatus",
    "ScopeTestMode",
    "Severity",
    "SignalType",
    "ThresholdAction",
    "ThresholdMetric",
]

Severity = e.IncidentSeverity
strawberry.enum(Severity, name="Severity", description="LOW < MEDIUM < HIGH < CRITICAL")
IncidentStatus = e.IncidentStatus
strawberry.enum(IncidentStatus, description="Incident lifecycle state")
CauseType = e.IncidentCauseType
strawberry.enum(CauseType, name="CauseType", description="Who or what caused it")
IncidentTopic = e.IncidentTopic
strawberry.enum(IncidentTopic, description="ACTIVE while open or acknowledged")
IncidentListTopic = e.IncidentListTopic
strawberry.enum(IncidentListTopic, description="Incident list topic: IncidentTopic + HISTORICAL")
IncidentTriggerType = e.IncidentTriggerType
strawberry.enum(IncidentTriggerType, description="What opened the incident")
IncidentSourceType = e.IncidentSourceType
strawberry.enum(IncidentSourceType, description="Path that created it")
ResolutionMethod = e.ResolutionMethod
strawberry.enum(ResolutionMethod, description="How it was resolved")
IncidentEventType = e.IncidentEventType
strawberry.enum(IncidentEventType, description="Timeline entry kind")
LimitCategory = e.LimitCategory
strawberry.enum(LimitCategory, description="BUDGET, RATE or THRESHOLD")
LimitStatus = e.LimitStatus
strawberry.enum(LimitStatus, description="Delete is soft: DISABLED")
LimitScope = e.LimitScope
strawberry.enum(LimitScope, description="What the limit applies to")
ResetPeriod = e.ResetPeriod
strawberry.enum(ResetPeriod, description="Budget reset cadence")
Enforcement = e.LimitEnforcement
strawberry.enum(Enforcement, name="Enforcement", description="What happens on breach")
LimitConsequence = e.LimitConsequence
strawberry.enum(LimitConsequence, description="Follow-up of a breach")
BreachType = e.BreachType
strawberry.enum(BreachType, description="Kind of limit breach")
IntegrityStatus = e.IntegrityStatus
strawberry.enum(IntegrityStatus, description="Integrity of a limit")
OverrideStatus = e.OverrideStatus
strawberry.enum(OverrideStatus, description="Override lifecycle state")
LessonType = e.LessonType
strawberry.enum(LessonType, description="Kind of lesson")
LessonStatus = e.LessonStatus
strawberry.enum(LessonStatus, description="Lesson lifecycle state")
LessonSeverity = e.LessonSeverity
strawberry.enum(LessonSeverity, description="Lesson severity (NONE for successes)")
LessonSourceType = e.LessonSourceType
strawberry.enum(LessonSourceType, description="What produced the lesson")
BreakerState = e.BreakerState
strawberry.enum(BreakerState, description="CLOSED (on) or OPEN (off)")
BreakerSeverity = e.BreakerSeverity
strawberry.enum(BreakerSeverity, description="P1 drift trip, P2 manual disable, P3 schema errors")
Role = e.ApiKeyRole
ProposalStatus = e.ProposalStatus
strawberry.enum(ProposalStatus, description="Policy proposal state")
ProposalSourceType = e.ProposalSourceType
strawberry.enum(ProposalSourceType, description="What a policy proposal came from")
BundleKind = e.BundleKind
strawberry.enum(BundleKind, description="Kind of incident export bundle")
strawberry.enum(Role, name="Role", description="VIEWER < OPERATOR < ADMIN, plus INGEST")
ScopeStatus = e.ScopeStatus
strawberry.enum(ScopeStatus, description="Execution scope lifecycle state")
ScopeTestMode = e.ScopeTestMode
strawberry.enum(ScopeTestMode, description="How a recovery scope test is simulated")
RiskClass = e.RiskClass
strawberry.enum(RiskClass, description="Risk of a recovery action, LOW < MEDIUM < HIGH < CRITICAL")
SignalType = e.SignalType
strawberry.enum(SignalType, description="NEAR (approaching) or BREACH (crossed)")
ThresholdMetric = e.ThresholdMetric
strawberry.enum(ThresholdMetric, description="What a threshold signal measures")
ThresholdAction = e.ThresholdAction
strawberry.enum(ThresholdAction, description="What was done on a BREACH signal")


# --- incident writes and runs --------------------------------------------------------------------
RunStatus = e.RunStatus
strawberry.enum(RunStatus, description="Run lifecycle state")
StepStatus = e.StepStatus
strawberry.enum(StepStatus, description="Outcome of one run step")
FailureType = e.FailureType
strawberry.enum(FailureType, description="Kind of LLM failure")
FailureEvidenceType = e.FailureEvidenceType
strawberry.enum(FailureEvidenceType, description="Kind of failure evidence")
IncidentEvidenceType = e.IncidentEvidenceType
strawberry.enum(IncidentEvidenceType, description="Kind of incident evidence")
AutoAction = e.AutoAction
strawberry.enum(AutoAction, description="Automatic action taken with an incident")
CostAnomalyEntityType = e.CostAnomalyEntityType
strawberry.enum(CostAnomalyEntityType, description="What a cost anomaly was measured on")
RunOutcome = e.RunOutcome
strawberry.enum(RunOutcome, description="Outcome of a terminal run")
RunThresholdSignal = e.RunThresholdSignal
strawberry.enum(RunThresholdSignal, description="What a run's threshold evaluation found (§3.4)")
OpsEventType = e.OpsEventType
strawberry.enum(OpsEventType, description="Ops-event kind of a run threshold signal")
PolicyEvaluationOutcome = e.PolicyEvaluationOutcome
strawberry.enum(PolicyEvaluationOutcome, description="Result of a run's policy evaluation")
