"""Frozen records the drivers return upward: plain rows, never ORM objects or GraphQL types.

Field order matters: records are built positionally from the SELECT list that drivers/mapping.py
derives from these very fields. A column declared here is typed for the code that reads it
(tests/drivers/test_records.py holds it equal to the table); a column not declared yet is
appended to the record at run time (drivers/mapping.py Entity), so a new column needs no edit
here to reach the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "AlertOutboxRecord",
    "ApiKeyRecord",
    "BreakerIncidentRecord",
    "CircuitBreakerRecord",
    "ExecutionScopeRecord",
    "IncidentDerivedRecord",
    "IncidentEventRecord",
    "IncidentRecord",
    "LessonRecord",
    "LimitBreachRecord",
    "LimitIntegrityRecord",
    "LimitOverrideRecord",
    "LimitRecord",
    "PolicyProposalRecord",
    "ThresholdSignalRecord",
]

JSON = Any


@dataclass(frozen=True, slots=True)
class IncidentDerivedRecord:
    """The values of one incident derived from other rows on read (DOMAIN.md §1.18)."""

    last_seen_at: datetime
    evidence_count: int
    recovery_attempted: bool
    recurrence_count: int


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    id: str
    title: str
    severity: str
    status: str
    trigger_type: str
    trigger_value: str | None
    category: str | None
    source_type: str
    cause_type: str
    source_run_id: str | None
    calls_affected: int
    related_call_ids: JSON
    cost_delta_cents: Decimal
    cost_impact: Decimal | None
    error_rate: Decimal | None
    auto_action: str | None
    action_details: JSON
    description: str | None
    error_code: str | None
    error_message: str | None
    impact_scope: str | None
    affected_agent_id: str | None
    affected_count: int
    started_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    ended_at: datetime | None
    resolved_by: str | None
    duration_seconds: int | None
    resolution_method: str | None
    resolution_type: str | None
    resolution_notes: str | None
    resolution_summary: str | None
    postmortem_artifact_id: str | None
    recurrence_signature: str | None
    signature_version: str | None
    escalated: bool
    escalated_at: datetime | None
    escalated_to: str | None
    inflection_step_index: int | None
    inflection_timestamp: datetime | None
    inflection_context: JSON
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class IncidentEventRecord:
    id: str
    incident_id: str
    event_type: str
    description: str
    data: JSON
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LimitBreachRecord:
    id: str
    limit_id: str
    run_id: str | None
    incident_id: str | None
    breach_type: str
    value_at_breach: Decimal | None
    limit_value: Decimal
    details: JSON
    breached_at: datetime
    recovered_at: datetime | None


@dataclass(frozen=True, slots=True)
class LessonRecord:
    id: str
    lesson_type: str
    severity: str | None
    source_event_id: str
    source_event_type: str
    source_run_id: str | None
    title: str
    description: str
    proposed_action: str | None
    detected_pattern: JSON
    status: str
    draft_proposal_id: str | None
    converted_at: datetime | None
    deferred_until: datetime | None
    dismissed_at: datetime | None
    dismissed_by: str | None
    dismissed_reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LimitRecord:
    id: str
    name: str
    description: str | None
    limit_category: str
    limit_type: str
    scope: str
    scope_id: str | None
    max_value: Decimal
    reset_period: str | None
    next_reset_at: datetime | None
    window_seconds: int | None
    measurement_window_seconds: int | None
    params: JSON
    enforcement: str
    consequence: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    # Derived on read (DOMAIN.md §1.18).
    effective_value: Decimal
    breach_count_30d: int
    last_breached_at: datetime | None


@dataclass(frozen=True, slots=True)
class LimitIntegrityRecord:
    id: str
    limit_id: str
    integrity_status: str
    integrity_score: Decimal
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class LimitOverrideRecord:
    id: str
    limit_id: str
    original_value: Decimal
    override_value: Decimal
    status: str
    requested_at: datetime
    requested_by: str
    reason: str
    starts_at: datetime
    expires_at: datetime
    approved_at: datetime | None
    approved_by: str | None
    rejection_reason: str | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    # Derived: override_value while ACTIVE, else original_value (DOMAIN.md §3.3).
    effective_value: Decimal
    # Derived: the overridden limit's name (DOMAIN.md §3.3 "responses add limit_name").
    limit_name: str


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    tenant_id: str
    name: str | None
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class PolicyProposalRecord:
    id: str
    title: str
    status: str
    source_type: str
    source_id: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CircuitBreakerRecord:
    # In the GraphQL type's field order (the generated fields follow the record).
    id: int | None  # None: the breaker was never written (reads as CLOSED, DOMAIN.md §3.7)
    name: str
    consecutive_failures: int
    last_failure_at: datetime | None
    disabled_until: datetime | None
    disabled_by: str | None
    # Derived: the current breaker incident's created_at while OPEN (the trip time).
    opened_at: datetime | None
    updated_at: datetime | None
    disabled: bool
    disabled_reason: str | None
    incident_id: str | None
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class BreakerIncidentRecord:
    id: str
    circuit_breaker_name: str
    created_at: datetime
    reason: str
    severity: str
    drift_score: float | None
    sample_count: int | None
    details: JSON
    resolved: bool
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_notes: str | None
    alert_sent: bool
    alert_sent_at: datetime | None
    alert_response: str | None


@dataclass(frozen=True, slots=True)
class AlertOutboxRecord:
    id: int
    tenant_id: str
    payload: JSON
    alert_type: str
    circuit_breaker_name: str | None
    incident_id: str | None
    attempts: int
    max_attempts: int
    last_attempt_at: datetime | None
    next_attempt_at: datetime
    last_error: str | None
    status: str
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class ExecutionScopeRecord:
    id: str
    incident_id: str
    allowed_actions: JSON
    intent: str
    max_cost_usd: Decimal
    cost_used_usd: Decimal
    max_attempts: int
    attempts_used: int
    target_agents: JSON
    status: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    executions: JSON


@dataclass(frozen=True, slots=True)
class ThresholdSignalRecord:
    id: int
    signal_id: str
    run_id: str
    policy_id: str
    step_index: int | None
    signal_type: str
    metric: str
    current_value: float
    threshold_value: float
    percentage: float | None
    action_taken: str | None
    timestamp: datetime
    acknowledged: bool
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    alert_sent: bool
    alert_sent_at: datetime | None
    alert_channels: JSON


# --- incident writes and runs (DOMAIN.md §1.8, §1.11-1.13) --------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentEvidenceRecord:
    id: str
    incident_id: str
    evidence_type: str
    recovery_executed: bool
    payload: JSON
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    agent_id: str | None
    project_id: str | None
    status: str
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


@dataclass(frozen=True, slots=True)
class RunStepRecord:
    run_id: str
    step_index: int
    step_type: str
    tokens: int
    cost_cents: Decimal
    duration_ms: int
    status: str
    content_hash: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RunFailureRecord:
    id: str
    run_id: str
    failure_type: str
    error_code: str | None
    error_message: str | None
    model: str | None
    request_id: str | None
    duration_ms: int | None
    metadata: JSON
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FailureEvidenceRecord:
    id: str
    failure_id: str
    evidence_type: str
    evidence_data: JSON
    is_immutable: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PolicyViolationRecord:
    id: str
    run_id: str
    policy_id: str
    violated_rule: str
    severity: str
    reason: str | None
    evidence: JSON
    incident_id: str | None
    created_at: datetime
