"""The domain's enumerations (DOMAIN.md §2), one `StrEnum` each, with the exact stored strings.

Why one module: the same strings are written to `text` columns, enforced by CHECK constraints built
from these classes (drivers/tables.py), frozen into the migration, and exposed by GraphQL. Keeping
them here means a value can be added in exactly one place (plus a migration), and comparisons
against plain strings read from the database just work because members *are* strings.

Member order is meaningful where DOMAIN.md gives one (severities, risk classes, RunErrorCode match
order); use `rank` rather than `<` on the strings, which would compare alphabetically.
"""

from __future__ import annotations

from enum import StrEnum, unique
from typing import Final

__all__ = [
    "UNCATEGORIZED",
    "ActorRole",
    "AlertStatus",
    "AlertType",
    "ApiKeyRole",
    "AutoAction",
    "BreachType",
    "BreakerSeverity",
    "BreakerState",
    "BundleKind",
    "Classification",
    "CostAnomalyEntityType",
    "DebriefRiskLevel",
    "FailureEvidenceType",
    "FailureType",
    "Granularity",
    "ImpactScope",
    "IncidentCategory",
    "IncidentCauseType",
    "IncidentEventType",
    "IncidentEvidenceType",
    "IncidentListTopic",
    "IncidentSeverity",
    "IncidentSourceType",
    "IncidentStatus",
    "IncidentTopic",
    "IncidentTriggerType",
    "InsightType",
    "IntegrityStatus",
    "LessonSeverity",
    "LessonSourceType",
    "LessonStatus",
    "LessonType",
    "LimitCategory",
    "LimitConsequence",
    "LimitEnforcement",
    "LimitScope",
    "LimitStatus",
    "OpsEventType",
    "OverrideStatus",
    "PatternType",
    "PolicyEvaluationOutcome",
    "ProposalSourceType",
    "ProposalStatus",
    "RemediationStatus",
    "ResetPeriod",
    "ResolutionMethod",
    "RiskClass",
    "RunErrorCode",
    "RunOutcome",
    "RunStatus",
    "RunThresholdSignal",
    "ScopeStatus",
    "ScopeTestMode",
    "SignalType",
    "Soc2ComplianceStatus",
    "Soc2ReviewStatus",
    "StepStatus",
    "ThresholdAction",
    "ThresholdBand",
    "ThresholdMetric",
]


# --- Limits -------------------------------------------------------------------------------------


@unique
class LimitCategory(StrEnum):
    BUDGET = "BUDGET"
    RATE = "RATE"
    THRESHOLD = "THRESHOLD"


@unique
class LimitStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


@unique
class LimitScope(StrEnum):
    GLOBAL = "GLOBAL"
    TENANT = "TENANT"
    PROJECT = "PROJECT"
    AGENT = "AGENT"
    PROVIDER = "PROVIDER"


@unique
class ResetPeriod(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    NONE = "NONE"


@unique
class LimitEnforcement(StrEnum):
    BLOCK = "BLOCK"
    WARN = "WARN"
    REJECT = "REJECT"
    QUEUE = "QUEUE"
    DEGRADE = "DEGRADE"
    ALERT = "ALERT"


@unique
class LimitConsequence(StrEnum):
    ALERT = "ALERT"
    INCIDENT = "INCIDENT"
    ABORT = "ABORT"


@unique
class BreachType(StrEnum):
    BREACHED = "BREACHED"
    EXHAUSTED = "EXHAUSTED"
    THROTTLED = "THROTTLED"
    VIOLATED = "VIOLATED"


@unique
class IntegrityStatus(StrEnum):
    VERIFIED = "VERIFIED"
    DEGRADED = "DEGRADED"
    FAILED = "FAILED"


@unique
class OverrideStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


# --- Threshold signals --------------------------------------------------------------------------


@unique
class SignalType(StrEnum):
    NEAR = "NEAR"
    BREACH = "BREACH"


@unique
class ThresholdMetric(StrEnum):
    TOKEN_USAGE = "TOKEN_USAGE"  # noqa: S105 - a metric name, not a secret
    COST = "COST"
    BURN_RATE = "BURN_RATE"
    RAG_ACCESS = "RAG_ACCESS"
    STEP_COUNT = "STEP_COUNT"
    LATENCY = "LATENCY"


@unique
class ThresholdAction(StrEnum):
    PAUSE = "PAUSE"
    STOP = "STOP"
    KILL = "KILL"


@unique
class RunThresholdSignal(StrEnum):
    EXECUTION_TIME_EXCEEDED = "EXECUTION_TIME_EXCEEDED"
    TOKEN_LIMIT_EXCEEDED = "TOKEN_LIMIT_EXCEEDED"  # noqa: S105 - a signal name, not a secret
    COST_LIMIT_EXCEEDED = "COST_LIMIT_EXCEEDED"
    RUN_FAILED = "RUN_FAILED"


@unique
class OpsEventType(StrEnum):
    """Ops-event form of a run threshold signal (§3.4)."""

    LLM_CALL_FAILED = "LLM_CALL_FAILED"
    INFRA_LIMIT_HIT = "INFRA_LIMIT_HIT"


# --- Incidents ----------------------------------------------------------------------------------


@unique
class IncidentSeverity(StrEnum):
    """Declared from most to least severe, as in DOMAIN.md; `rank` gives LOW < … < CRITICAL."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"

    @property
    def rank(self) -> int:
        """0 for LOW up to 3 for CRITICAL, so escalation can compare with `>`."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK: Final[dict[IncidentSeverity, int]] = {
    IncidentSeverity.LOW: 0,
    IncidentSeverity.MEDIUM: 1,
    IncidentSeverity.HIGH: 2,
    IncidentSeverity.CRITICAL: 3,
}


@unique
class IncidentStatus(StrEnum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


@unique
class IncidentCauseType(StrEnum):
    LLM_RUN = "LLM_RUN"
    SYSTEM = "SYSTEM"
    HUMAN = "HUMAN"


@unique
class IncidentTopic(StrEnum):
    """Derived topic of one incident (DOMAIN.md §1.18)."""

    ACTIVE = "ACTIVE"
    RESOLVED = "RESOLVED"


@unique
class IncidentListTopic(StrEnum):
    """Topic argument of incident lists: IncidentTopic plus HISTORICAL (DOMAIN.md §2, §3.17)."""

    ACTIVE = "ACTIVE"
    RESOLVED = "RESOLVED"
    HISTORICAL = "HISTORICAL"


@unique
class IncidentTriggerType(StrEnum):
    FAILURE_SPIKE = "FAILURE_SPIKE"
    BUDGET_BREACH = "BUDGET_BREACH"
    RATE_LIMIT = "RATE_LIMIT"
    CONTENT_POLICY = "CONTENT_POLICY"
    FREEZE = "FREEZE"
    RATE_LIMIT_OVERFLOW = "RATE_LIMIT_OVERFLOW"
    POLICY_VIOLATION = "POLICY_VIOLATION"
    RUN_FAILURE = "RUN_FAILURE"
    RUN_COMPLETION = "RUN_COMPLETION"
    COST_SPIKE = "COST_SPIKE"
    COST_DRIFT = "COST_DRIFT"
    COST_ANOMALY = "COST_ANOMALY"
    BUDGET_WARNING = "BUDGET_WARNING"
    LLM_FAILURE = "LLM_FAILURE"


@unique
class IncidentSourceType(StrEnum):
    KILLSWITCH = "KILLSWITCH"
    RUN = "RUN"
    POLICY = "POLICY"
    MANUAL = "MANUAL"
    COST_ANOMALY = "COST_ANOMALY"


@unique
class ResolutionMethod(StrEnum):
    AUTO = "AUTO"
    MANUAL = "MANUAL"
    ROLLBACK = "ROLLBACK"
    MANUAL_CLOSURE = "MANUAL_CLOSURE"


@unique
class AutoAction(StrEnum):
    FREEZE = "FREEZE"
    THROTTLE = "THROTTLE"
    NONE = "NONE"
    AGGREGATE = "AGGREGATE"


@unique
class ImpactScope(StrEnum):
    SINGLE_RUN = "SINGLE_RUN"
    AGENT = "AGENT"
    PROJECT = "PROJECT"
    TENANT = "TENANT"
    USER = "USER"
    SYSTEM = "SYSTEM"


@unique
class CostAnomalyEntityType(StrEnum):
    AGENT = "AGENT"
    PROJECT = "PROJECT"
    TENANT = "TENANT"
    USER = "USER"


@unique
class IncidentEventType(StrEnum):
    INCIDENT_CREATED = "INCIDENT_CREATED"
    SEVERITY_ESCALATED = "SEVERITY_ESCALATED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"
    MANUALLY_CLOSED = "MANUALLY_CLOSED"
    AUTO_RESOLVED = "AUTO_RESOLVED"
    EVIDENCE_CAPTURED = "EVIDENCE_CAPTURED"
    CALL_FAILED = "CALL_FAILED"
    THRESHOLD_CROSSED = "THRESHOLD_CROSSED"
    FREEZE_TRIGGERED = "FREEZE_TRIGGERED"
    NOTE = "NOTE"


@unique
class IncidentEvidenceType(StrEnum):
    POLICY_VIOLATION = "POLICY_VIOLATION"
    RECOVERY_ACTION = "RECOVERY_ACTION"


@unique
class IncidentCategory(StrEnum):
    """Known categories. The column is free UPPER_CASE text with no CHECK (DOMAIN.md §2)."""

    EXECUTION_FAILURE = "EXECUTION_FAILURE"
    POLICY_VIOLATION = "POLICY_VIOLATION"
    COST_ANOMALY = "COST_ANOMALY"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
    RATE_LIMIT = "RATE_LIMIT"
    RESOURCE_EXHAUSTION = "RESOURCE_EXHAUSTION"
    MANUAL = "MANUAL"
    LOOP_DETECTED = "LOOP_DETECTED"
    EXECUTION_SUCCESS = "EXECUTION_SUCCESS"


# How a null incident category is reported (never stored).
UNCATEGORIZED: Final = "UNCATEGORIZED"


# --- Runs ---------------------------------------------------------------------------------------


@unique
class RunStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    HALTED = "HALTED"
    CANCELLED = "CANCELLED"


@unique
class RunOutcome(StrEnum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    BLOCKED = "BLOCKED"
    ABORTED = "ABORTED"


@unique
class RunErrorCode(StrEnum):
    """Declared in match order (DOMAIN.md §3.13): iterate the class to find the first match."""

    EXECUTION_TIMEOUT = "EXECUTION_TIMEOUT"
    AGENT_CRASH = "AGENT_CRASH"
    STEP_FAILURE = "STEP_FAILURE"
    SKILL_ERROR = "SKILL_ERROR"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    RESOURCE_EXHAUSTION = "RESOURCE_EXHAUSTION"
    CANCELLED = "CANCELLED"
    MANUAL_STOP = "MANUAL_STOP"
    RETRY_EXHAUSTED = "RETRY_EXHAUSTED"
    UNKNOWN = "UNKNOWN"


@unique
class StepStatus(StrEnum):
    OK = "OK"
    WARNING = "WARNING"
    VIOLATION = "VIOLATION"


@unique
class PolicyEvaluationOutcome(StrEnum):
    NO_VIOLATION = "NO_VIOLATION"
    VIOLATION_INCIDENT = "VIOLATION_INCIDENT"
    ADVISORY = "ADVISORY"
    NOT_APPLICABLE = "NOT_APPLICABLE"


@unique
class FailureType(StrEnum):
    TIMEOUT = "TIMEOUT"
    EXCEPTION = "EXCEPTION"
    INVALID_OUTPUT = "INVALID_OUTPUT"


@unique
class FailureEvidenceType(StrEnum):
    LLM_FAILURE_CAPTURE = "LLM_FAILURE_CAPTURE"
    TIMEOUT_TRACE = "TIMEOUT_TRACE"
    EXCEPTION_STACK = "EXCEPTION_STACK"


# --- Lessons and proposals ----------------------------------------------------------------------


@unique
class LessonType(StrEnum):
    FAILURE = "FAILURE"
    NEAR_THRESHOLD = "NEAR_THRESHOLD"
    CRITICAL_SUCCESS = "CRITICAL_SUCCESS"


@unique
class LessonStatus(StrEnum):
    PENDING = "PENDING"
    CONVERTED_TO_DRAFT = "CONVERTED_TO_DRAFT"
    DEFERRED = "DEFERRED"
    DISMISSED = "DISMISSED"


@unique
class LessonSeverity(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    NONE = "NONE"


@unique
class LessonSourceType(StrEnum):
    RUN = "RUN"
    INCIDENT = "INCIDENT"


@unique
class ThresholdBand(StrEnum):
    """detected_pattern.threshold_band of NEAR_THRESHOLD lessons (not a column, no CHECK)."""

    BAND_85_90 = "85-90"
    BAND_90_95 = "90-95"
    BAND_95_100 = "95-100"


@unique
class ProposalStatus(StrEnum):
    DRAFT = "DRAFT"


@unique
class ProposalSourceType(StrEnum):
    LESSON = "LESSON"
    INCIDENT = "INCIDENT"


# --- Circuit breaker, outbox, scopes ------------------------------------------------------------


@unique
class BreakerState(StrEnum):
    """Derived from circuit_breakers.disabled: CLOSED = false, OPEN = true (not stored)."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"


@unique
class BreakerSeverity(StrEnum):
    P1 = "P1"  # drift trip
    P2 = "P2"  # manual disable
    P3 = "P3"  # schema errors


@unique
class AlertType(StrEnum):
    DISABLE = "DISABLE"
    ENABLE = "ENABLE"


@unique
class AlertStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


@unique
class RiskClass(StrEnum):
    """Declared from least to most risky, as in DOMAIN.md; `rank` gives LOW < … < CRITICAL."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        """0 for LOW up to 3 for CRITICAL ("MEDIUM or higher" is `rank >= 1`)."""
        return list(RiskClass).index(self)


@unique
class ScopeStatus(StrEnum):
    ACTIVE = "ACTIVE"
    EXHAUSTED = "EXHAUSTED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


@unique
class ScopeTestMode(StrEnum):
    AGENT_SUBSET = "AGENT_SUBSET"
    REQUEST_SAMPLE = "REQUEST_SAMPLE"
    BUDGET_FRACTION = "BUDGET_FRACTION"
    DRY_RUN = "DRY_RUN"


# --- Analytics and export -----------------------------------------------------------------------


@unique
class PatternType(StrEnum):
    CATEGORY_CLUSTER = "CATEGORY_CLUSTER"
    SEVERITY_SPIKE = "SEVERITY_SPIKE"
    CASCADE_FAILURE = "CASCADE_FAILURE"


@unique
class InsightType(StrEnum):
    PREVENTION = "PREVENTION"
    DETECTION = "DETECTION"
    RESPONSE = "RESPONSE"
    COMMUNICATION = "COMMUNICATION"


@unique
class Granularity(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@unique
class BundleKind(StrEnum):
    EVIDENCE = "EVIDENCE"
    SOC2 = "SOC2"
    EXECUTIVE_DEBRIEF = "EXECUTIVE_DEBRIEF"


@unique
class Soc2ComplianceStatus(StrEnum):
    DEMONSTRATED = "DEMONSTRATED"
    PARTIAL = "PARTIAL"
    NOT_APPLICABLE = "NOT_APPLICABLE"


@unique
class Soc2ReviewStatus(StrEnum):
    PENDING = "PENDING"
    REVIEWED = "REVIEWED"
    APPROVED = "APPROVED"


@unique
class DebriefRiskLevel(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


@unique
class RemediationStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


@unique
class Classification(StrEnum):
    INTERNAL = "INTERNAL"
    CONFIDENTIAL = "CONFIDENTIAL"
    PUBLIC = "PUBLIC"


# --- Principals ---------------------------------------------------------------------------------


@unique
class ActorRole(StrEnum):
    """audit_log.actor_role: the API key roles plus SYSTEM for background jobs."""

    VIEWER = "VIEWER"
    OPERATOR = "OPERATOR"
    ADMIN = "ADMIN"
    INGEST = "INGEST"
    SYSTEM = "SYSTEM"


@unique
class ApiKeyRole(StrEnum):
    """api_keys.role (DOMAIN.md §1.17); SYSTEM is never a key's role."""

    VIEWER = "VIEWER"
    OPERATOR = "OPERATOR"
    ADMIN = "ADMIN"
    INGEST = "INGEST"
