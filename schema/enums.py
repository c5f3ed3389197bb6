"""GraphQL enums: the exact strings of DOMAIN.md §2, registered from drivers/enums.py."""

from __future__ import annotations

from enum import Enum

import strawberry

from drivers import enums as e

__all__ = [
    "BreachType",
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

Severity = strawberry.enum(e.IncidentSeverity, name="Severity", description="LOW < MEDIUM < HIGH < CRITICAL")
IncidentStatus = strawberry.enum(e.IncidentStatus, description="Incident lifecycle state")
CauseType = strawberry.enum(e.IncidentCauseType, name="CauseType", description="Who or what caused it")
IncidentTopic = strawberry.enum(e.IncidentTopic, description="ACTIVE while open or acknowledged")
IncidentTriggerType = strawberry.enum(e.IncidentTriggerType, description="What opened the incident")
IncidentSourceType = strawberry.enum(e.IncidentSourceType, description="Path that created it")
ResolutionMethod = strawberry.enum(e.ResolutionMethod, description="How it was resolved")
IncidentEventType = strawberry.enum(e.IncidentEventType, description="Timeline entry kind")
LimitCategory = strawberry.enum(e.LimitCategory, description="BUDGET, RATE or THRESHOLD")
LimitStatus = strawberry.enum(e.LimitStatus, description="Delete is soft: DISABLED")
LimitScope = strawberry.enum(e.LimitScope, description="What the limit applies to")
ResetPeriod = strawberry.enum(e.ResetPeriod, description="Budget reset cadence")
Enforcement = strawberry.enum(e.LimitEnforcement, name="Enforcement", description="What happens on breach")
LimitConsequence = strawberry.enum(e.LimitConsequence, description="Follow-up of a breach")
BreachType = strawberry.enum(e.BreachType, description="Kind of limit breach")
IntegrityStatus = strawberry.enum(e.IntegrityStatus, description="Integrity of a limit")
OverrideStatus = strawberry.enum(e.OverrideStatus, description="Override lifecycle state")
LessonType = strawberry.enum(e.LessonType, description="Kind of lesson")
LessonStatus = strawberry.enum(e.LessonStatus, description="Lesson lifecycle state")
LessonSeverity = strawberry.enum(e.LessonSeverity, description="Lesson severity (NONE for successes)")
LessonSourceType = strawberry.enum(e.LessonSourceType, description="What produced the lesson")
Role = strawberry.enum(e.ApiKeyRole, name="Role", description="VIEWER < OPERATOR < ADMIN, plus INGEST")


@strawberry.enum(description="Orderings of the incidents list")
class IncidentOrder(Enum):
    CREATED_AT_DESC = "CREATED_AT_DESC"
    CREATED_AT_ASC = "CREATED_AT_ASC"
    SEVERITY_DESC = "SEVERITY_DESC"
    RESOLVED_AT_DESC = "RESOLVED_AT_DESC"
