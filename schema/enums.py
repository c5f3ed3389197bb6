"""GraphQL enums: the exact strings of DOMAIN.md §2, registered from drivers/enums.py."""

from __future__ import annotations

from enum import Enum

import strawberry

from drivers import enums as e

__all__ = [
    "BreachType",
    "BreakerSeverity",
    "BreakerState",
    "CauseType",
    "Enforcement",
    "IncidentEventType",
    "IncidentOrder",
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
    "OverrideStatus",
    "ResetPeriod",
    "ResolutionMethod",
    "Role",
    "Severity",
]

Severity = e.IncidentSeverity
strawberry.enum(Severity, name="Severity", description="LOW < MEDIUM < HIGH < CRITICAL")
IncidentStatus = e.IncidentStatus
strawberry.enum(IncidentStatus, description="Incident lifecycle state")
CauseType = e.IncidentCauseType
strawberry.enum(CauseType, name="CauseType", description="Who or what caused it")
IncidentTopic = e.IncidentTopic
strawberry.enum(IncidentTopic, description="ACTIVE while open or acknowledged")
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
strawberry.enum(Role, name="Role", description="VIEWER < OPERATOR < ADMIN, plus INGEST")


@strawberry.enum(description="Orderings of the incidents list")
class IncidentOrder(Enum):
    CREATED_AT_DESC = "CREATED_AT_DESC"
    CREATED_AT_ASC = "CREATED_AT_ASC"
    SEVERITY_DESC = "SEVERITY_DESC"
    RESOLVED_AT_DESC = "RESOLVED_AT_DESC"
