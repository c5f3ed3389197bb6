"""The data model of DOMAIN.md §1 as SQLAlchemy Core tables — the drivers' single source of truth.

Core rather than ORM: drivers build explicit statements and return frozen records, so there is no
identity map or lazy loading to reason about. The migrations are frozen copies of this module;
tests/drivers/test_model.py fails when the two drift apart. Rules the schema can hold (enum
CHECKs, state CHECKs, unique partial indexes) live here so that every writer, not only the
gateway, is held to them; the invariant triggers live in the migration only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from drivers.db import metadata
from drivers.enums import (
    ActorRole,
    AlertStatus,
    AlertType,
    ApiKeyRole,
    AutoAction,
    BreachType,
    BreakerSeverity,
    FailureEvidenceType,
    FailureType,
    ImpactScope,
    IncidentCauseType,
    IncidentEventType,
    IncidentEvidenceType,
    IncidentSeverity,
    IncidentSourceType,
    IncidentStatus,
    IncidentTriggerType,
    IntegrityStatus,
    LessonSeverity,
    LessonSourceType,
    LessonStatus,
    LessonType,
    LimitCategory,
    LimitConsequence,
    LimitEnforcement,
    LimitScope,
    LimitStatus,
    OverrideStatus,
    ProposalSourceType,
    ProposalStatus,
    ResetPeriod,
    ResolutionMethod,
    RunStatus,
    ScopeStatus,
    SignalType,
    StepStatus,
    ThresholdAction,
    ThresholdMetric,
)

__all__ = [
    "alert_outbox",
    "api_keys",
    "audit_log",
    "breaker_incidents",
    "change_outbox",
    "circuit_breakers",
    "enum_check",
    "execution_scopes",
    "failure_evidence",
    "idempotency_keys",
    "incident_events",
    "incident_evidence",
    "incidents",
    "lessons_learned",
    "limit_breaches",
    "limit_integrity",
    "limit_overrides",
    "limits",
    "metadata",
    "policy_proposals",
    "policy_violations",
    "run_failures",
    "run_steps",
    "runs",
    "threshold_signals",
    "trusted_documents",
]

# Defaults rendered by PostgreSQL, so rows written outside the gateway (seeds, psql) get them too.
UUID_ID = sa.text("gen_random_uuid()::text")
NOW = sa.func.now()
EMPTY_OBJECT = sa.text("'{}'::jsonb")
EMPTY_ARRAY = sa.text("'[]'::jsonb")
FALSE = sa.text("false")
TRUE = sa.text("true")
ZERO = sa.text("0")


def enum_check(column: str, enum: type[StrEnum]) -> sa.CheckConstraint:
    """CHECK that `column` holds one of the enum's strings; named ck_<table>_<column>.

    NULL passes (as with any CHECK), so nullable enum columns need nothing more.
    """
    values = ", ".join("'" + member.value.replace("'", "''") + "'" for member in enum)
    return sa.CheckConstraint(f"{column} IN ({values})", name=column)


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.Text, nullable=False)


def _text_id(default: sa.TextClause = UUID_ID) -> sa.Column[str]:
    return sa.Column("id", sa.Text, primary_key=True, server_default=default)


def _identity_id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True)


def _created_at() -> sa.Column[datetime]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW)


def _updated_at() -> sa.Column[datetime]:
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW)


def _tstz(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


# --- §1.12 runs ---------------------------------------------------------------------------------

runs = sa.Table(
    "runs",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column("agent_id", sa.Text),
    sa.Column("project_id", sa.Text),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'QUEUED'")),
    sa.Column("error_message", sa.Text),
    _tstz("started_at"),
    _tstz("completed_at"),
    sa.Column("input_tokens", sa.Integer, nullable=False, server_default=ZERO),
    sa.Column("output_tokens", sa.Integer, nullable=False, server_default=ZERO),
    sa.Column("estimated_cost_usd", sa.Numeric(18, 6)),
    sa.Column("incident_count", sa.Integer, nullable=False, server_default=ZERO),
    sa.Column("plan_step_count", sa.Integer),
    sa.Column("completed_step_count", sa.Integer, nullable=False, server_default=ZERO),
    _created_at(),
    _updated_at(),
    enum_check("status", RunStatus),
    sa.Index("ix_runs_tenant_id_created_at", "tenant_id", "created_at"),
    sa.Index("ix_runs_tenant_id_status", "tenant_id", "status"),
)

run_steps = sa.Table(
    "run_steps",
    metadata,
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("step_index", sa.Integer, primary_key=True),
    _tenant(),
    sa.Column("step_type", sa.Text, nullable=False),
    sa.Column("tokens", sa.Integer, nullable=False, server_default=ZERO),
    sa.Column("cost_cents", sa.Numeric(12, 4), nullable=False, server_default=ZERO),
    sa.Column("duration_ms", sa.Integer, nullable=False, server_default=ZERO),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'OK'")),
    sa.Column("content_hash", sa.Text),
    _created_at(),
    enum_check("status", StepStatus),
)

# --- §1.6-1.8 incidents -------------------------------------------------------------------------

incidents = sa.Table(
    "incidents",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column("title", sa.String(255), nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'OPEN'")),
    sa.Column("trigger_type", sa.Text, nullable=False),
    sa.Column("trigger_value", sa.Text),
    sa.Column("category", sa.Text),
    sa.Column("source_type", sa.Text, nullable=False, server_default=sa.text("'KILLSWITCH'")),
    sa.Column("cause_type", sa.Text, nullable=False, server_default=sa.text("'HUMAN'")),
    sa.Column("source_run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="SET NULL")),
    sa.Column("calls_affected", sa.Integer, nullable=False, server_default=ZERO),
    sa.Column("related_call_ids", JSONB, nullable=False, server_default=EMPTY_ARRAY),
    sa.Column("cost_delta_cents", sa.Numeric(10, 4), nullable=False, server_default=ZERO),
    sa.Column("cost_impact", sa.Numeric(12, 2)),
    sa.Column("error_rate", sa.Numeric(5, 4)),
    sa.Column("auto_action", sa.Text),
    sa.Column("action_details", JSONB),
    sa.Column("description", sa.Text),
    sa.Column("error_code", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("impact_scope", sa.Text),
    sa.Column("affected_agent_id", sa.Text),
    sa.Column("affected_count", sa.Integer, nullable=False, server_default=sa.text("1")),
    _tstz("started_at", nullable=False),
    _tstz("acknowledged_at"),
    sa.Column("acknowledged_by", sa.String(100)),
    _tstz("resolved_at"),
    _tstz("ended_at"),
    sa.Column("resolved_by", sa.String(100)),
    sa.Column("duration_seconds", sa.Integer),
    sa.Column("resolution_method", sa.Text),
    sa.Column("resolution_type", sa.String(50)),
    sa.Column("resolution_notes", sa.Text),
    sa.Column("resolution_summary", sa.Text),
    sa.Column("postmortem_artifact_id", sa.String(64)),
    sa.Column("recurrence_signature", sa.String(128)),
    sa.Column("signature_version", sa.String(20)),
    sa.Column("escalated", sa.Boolean, nullable=False, server_default=FALSE),
    _tstz("escalated_at"),
    sa.Column("escalated_to", sa.Text),
    sa.Column("inflection_step_index", sa.Integer),
    _tstz("inflection_timestamp"),
    sa.Column("inflection_context", JSONB),
    _created_at(),
    _updated_at(),
    enum_check("severity", IncidentSeverity),
    enum_check("status", IncidentStatus),
    enum_check("trigger_type", IncidentTriggerType),
    enum_check("source_type", IncidentSourceType),
    enum_check("cause_type", IncidentCauseType),
    enum_check("auto_action", AutoAction),
    enum_check("impact_scope", ImpactScope),
    enum_check("resolution_method", ResolutionMethod),
    sa.CheckConstraint(
        "status <> 'ACKNOWLEDGED' OR acknowledged_at IS NOT NULL", name="acknowledged_fields"
    ),
    sa.CheckConstraint(
        "status <> 'RESOLVED' OR (resolved_at IS NOT NULL AND ended_at IS NOT NULL"
        " AND resolution_method IS NOT NULL)",
        name="resolved_fields",
    ),
    sa.Index("ix_incidents_tenant_id_status", "tenant_id", "status"),
    sa.Index("ix_incidents_tenant_id_created_at", "tenant_id", "created_at"),
    sa.Index("ix_incidents_tenant_id_severity", "tenant_id", "severity"),
    sa.Index("ix_incidents_tenant_id_category", "tenant_id", "category"),
    # The aggregator's "open incident of this trigger type in this window" lookup (§3.10).
    sa.Index(
        "ix_incidents_unresolved_trigger",
        "tenant_id",
        "trigger_type",
        "started_at",
        postgresql_where=sa.text("status <> 'RESOLVED'"),
    ),
    sa.Index(
        "ix_incidents_tenant_id_source_run_id",
        "tenant_id",
        "source_run_id",
        postgresql_where=sa.text("source_run_id IS NOT NULL"),
    ),
    # One RUN incident per run (§3.13): a concurrent duplicate fails here.
    sa.Index(
        "uq_incidents_run_source_run_id",
        "source_run_id",
        unique=True,
        postgresql_where=sa.text("source_type = 'RUN'"),
    ),
    sa.Index(
        "ix_incidents_tenant_id_resolution_method",
        "tenant_id",
        "resolution_method",
        postgresql_where=sa.text("resolution_method IS NOT NULL"),
    ),
    sa.Index(
        "ix_incidents_tenant_id_cost_impact",
        "tenant_id",
        "cost_impact",
        postgresql_where=sa.text("cost_impact IS NOT NULL"),
    ),
    sa.Index("ix_incidents_tenant_id_inflection_timestamp", "tenant_id", "inflection_timestamp"),
    sa.Index("ix_incidents_tenant_id_recurrence_signature", "tenant_id", "recurrence_signature"),
)

incident_events = sa.Table(
    "incident_events",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column(
        "incident_id",
        sa.Text,
        sa.ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("data", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    _created_at(),
    enum_check("event_type", IncidentEventType),
    sa.Index("ix_incident_events_incident_id_created_at", "incident_id", "created_at"),
    sa.Index("ix_incident_events_tenant_id_created_at", "tenant_id", "created_at"),
)

incident_evidence = sa.Table(
    "incident_evidence",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column(
        "incident_id",
        sa.Text,
        sa.ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("evidence_type", sa.Text, nullable=False),
    sa.Column("recovery_executed", sa.Boolean, nullable=False, server_default=FALSE),
    sa.Column("payload", JSONB),
    _created_at(),
    enum_check("evidence_type", IncidentEvidenceType),
    sa.Index("ix_incident_evidence_incident_id", "incident_id"),
    sa.Index("ix_incident_evidence_incident_id_evidence_type", "incident_id", "evidence_type"),
)

# --- §1.1-1.4 limits ----------------------------------------------------------------------------

limits = sa.Table(
    "limits",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("limit_category", sa.Text, nullable=False),
    sa.Column("limit_type", sa.String(32), nullable=False),
    sa.Column("scope", sa.Text, nullable=False, server_default=sa.text("'TENANT'")),
    sa.Column("scope_id", sa.String(100)),
    sa.Column("max_value", sa.Numeric(18, 4), nullable=False),
    sa.Column("reset_period", sa.Text),
    _tstz("next_reset_at"),
    sa.Column("window_seconds", sa.Integer),
    sa.Column("measurement_window_seconds", sa.Integer),
    sa.Column("params", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("enforcement", sa.Text, nullable=False, server_default=sa.text("'BLOCK'")),
    sa.Column("consequence", sa.Text),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'ACTIVE'")),
    _created_at(),
    _updated_at(),
    enum_check("limit_category", LimitCategory),
    enum_check("scope", LimitScope),
    enum_check("reset_period", ResetPeriod),
    enum_check("enforcement", LimitEnforcement),
    enum_check("consequence", LimitConsequence),
    enum_check("status", LimitStatus),
    sa.CheckConstraint("max_value > 0", name="max_value_positive"),
    sa.CheckConstraint("window_seconds > 0", name="window_seconds_positive"),
    sa.Index("ix_limits_tenant_id_limit_category", "tenant_id", "limit_category"),
    sa.Index("ix_limits_tenant_id_scope", "tenant_id", "scope"),
    sa.Index("ix_limits_tenant_id_status", "tenant_id", "status"),
    sa.Index(
        "ix_limits_active_threshold",
        "tenant_id",
        "limit_category",
        postgresql_where=sa.text("limit_category = 'THRESHOLD' AND status = 'ACTIVE'"),
    ),
    sa.Index(
        "ix_limits_active_scope",
        "tenant_id",
        "scope",
        "scope_id",
        "limit_category",
        postgresql_where=sa.text("status = 'ACTIVE'"),
    ),
)

limit_integrity = sa.Table(
    "limit_integrity",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column(
        "limit_id",
        sa.Text,
        sa.ForeignKey("limits.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    sa.Column("integrity_status", sa.Text, nullable=False),
    sa.Column("integrity_score", sa.Numeric(5, 4), nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    enum_check("integrity_status", IntegrityStatus),
    sa.CheckConstraint(
        "integrity_score >= 0 AND integrity_score <= 1", name="integrity_score_range"
    ),
    sa.Index("ix_limit_integrity_integrity_status", "integrity_status"),
    sa.Index("ix_limit_integrity_computed_at", "computed_at"),
)

limit_breaches = sa.Table(
    "limit_breaches",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column("limit_id", sa.Text, sa.ForeignKey("limits.id", ondelete="CASCADE"), nullable=False),
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="SET NULL")),
    sa.Column("incident_id", sa.Text, sa.ForeignKey("incidents.id", ondelete="SET NULL")),
    sa.Column("breach_type", sa.Text, nullable=False),
    sa.Column("value_at_breach", sa.Numeric(18, 4)),
    sa.Column("limit_value", sa.Numeric(18, 4), nullable=False),
    sa.Column("details", JSONB),
    sa.Column("breached_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    _tstz("recovered_at"),
    enum_check("breach_type", BreachType),
    sa.Index("ix_limit_breaches_limit_id_breached_at", "limit_id", "breached_at"),
    sa.Index("ix_limit_breaches_tenant_id_breached_at", "tenant_id", "breached_at"),
    sa.Index("ix_limit_breaches_run_id", "run_id"),
    sa.Index("ix_limit_breaches_incident_id", "incident_id"),
)

limit_overrides = sa.Table(
    "limit_overrides",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column("limit_id", sa.Text, sa.ForeignKey("limits.id", ondelete="CASCADE"), nullable=False),
    sa.Column("original_value", sa.Numeric(20, 4), nullable=False),
    sa.Column("override_value", sa.Numeric(20, 4), nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'PENDING'")),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    _tstz("starts_at", nullable=False),
    _tstz("expires_at", nullable=False),
    _tstz("approved_at"),
    sa.Column("approved_by", sa.String(128)),
    sa.Column("rejection_reason", sa.Text),
    _tstz("cancelled_at"),
    sa.Column("cancelled_by", sa.String(128)),
    enum_check("status", OverrideStatus),
    sa.CheckConstraint("override_value > 0", name="override_value_positive"),
    sa.Index("ix_limit_overrides_tenant_id_status", "tenant_id", "status"),
    sa.Index("ix_limit_overrides_limit_id_status", "limit_id", "status"),
    sa.Index(
        "ix_limit_overrides_active_expires_at",
        "expires_at",
        postgresql_where=sa.text("status = 'ACTIVE'"),
    ),
    sa.Index(
        "ix_limit_overrides_approved_starts_at",
        "starts_at",
        postgresql_where=sa.text("status = 'APPROVED'"),
    ),
    # At most one live override per limit (§3.3); the name is part of the contract.
    sa.Index(
        "limit_overrides_no_stacking",
        "limit_id",
        unique=True,
        postgresql_where=sa.text("status IN ('PENDING', 'APPROVED', 'ACTIVE')"),
    ),
)

# --- §1.5 threshold signals ---------------------------------------------------------------------

threshold_signals = sa.Table(
    "threshold_signals",
    metadata,
    _identity_id(),
    _tenant(),
    sa.Column("signal_id", sa.String(64), nullable=False, unique=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("policy_id", sa.String(64), nullable=False),
    sa.Column("step_index", sa.Integer),
    sa.Column("signal_type", sa.Text, nullable=False),
    sa.Column("metric", sa.Text, nullable=False),
    sa.Column("current_value", sa.Float, nullable=False),
    sa.Column("threshold_value", sa.Float, nullable=False),
    sa.Column("percentage", sa.Float),
    sa.Column("action_taken", sa.Text),
    sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("acknowledged", sa.Boolean, nullable=False, server_default=FALSE),
    sa.Column("acknowledged_by", sa.String(64)),
    _tstz("acknowledged_at"),
    sa.Column("alert_sent", sa.Boolean, nullable=False, server_default=FALSE),
    _tstz("alert_sent_at"),
    sa.Column("alert_channels", JSONB),
    enum_check("signal_type", SignalType),
    enum_check("metric", ThresholdMetric),
    enum_check("action_taken", ThresholdAction),
    sa.Index("ix_threshold_signals_run_id_timestamp", "run_id", "timestamp"),
    sa.Index("ix_threshold_signals_tenant_id_timestamp", "tenant_id", "timestamp"),
    sa.Index(
        "ix_threshold_signals_breach",
        "tenant_id",
        "signal_type",
        postgresql_where=sa.text("signal_type = 'BREACH'"),
    ),
)

# --- §1.9-1.11 lessons, proposals, violations ---------------------------------------------------

policy_proposals = sa.Table(
    "policy_proposals",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'DRAFT'")),
    sa.Column("source_type", sa.Text, nullable=False),
    sa.Column("source_id", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    _created_at(),
    enum_check("status", ProposalStatus),
    enum_check("source_type", ProposalSourceType),
)

lessons_learned = sa.Table(
    "lessons_learned",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column("lesson_type", sa.Text, nullable=False),
    sa.Column("severity", sa.Text),
    sa.Column("source_event_id", sa.Text, nullable=False),
    sa.Column("source_event_type", sa.Text, nullable=False),
    sa.Column("source_run_id", sa.Text),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("proposed_action", sa.Text),
    sa.Column("detected_pattern", JSONB),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'PENDING'")),
    sa.Column(
        "draft_proposal_id", sa.Text, sa.ForeignKey("policy_proposals.id", ondelete="SET NULL")
    ),
    _tstz("converted_at"),
    _tstz("deferred_until"),
    _tstz("dismissed_at"),
    sa.Column("dismissed_by", sa.String(255)),
    sa.Column("dismissed_reason", sa.Text),
    _created_at(),
    enum_check("lesson_type", LessonType),
    enum_check("severity", LessonSeverity),
    enum_check("source_event_type", LessonSourceType),
    enum_check("status", LessonStatus),
    # Lesson creation is idempotent on this key (§3.16).
    sa.UniqueConstraint("tenant_id", "source_event_id", "lesson_type"),
    sa.Index("ix_lessons_learned_tenant_id_status", "tenant_id", "status"),
    sa.Index("ix_lessons_learned_tenant_id_lesson_type", "tenant_id", "lesson_type"),
    sa.Index(
        "ix_lessons_learned_source_event_id_source_event_type",
        "source_event_id",
        "source_event_type",
    ),
    sa.Index("ix_lessons_learned_tenant_id_created_at", "tenant_id", "created_at"),
    sa.Index(
        "ix_lessons_learned_draft_proposal_id",
        "draft_proposal_id",
        postgresql_where=sa.text("draft_proposal_id IS NOT NULL"),
    ),
    sa.Index(
        "ix_lessons_learned_deferred_until",
        "deferred_until",
        postgresql_where=sa.text("status = 'DEFERRED'"),
    ),
)

policy_violations = sa.Table(
    "policy_violations",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("policy_id", sa.Text, nullable=False),
    sa.Column("violated_rule", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False, server_default=sa.text("'MEDIUM'")),
    sa.Column("reason", sa.Text),
    sa.Column("evidence", JSONB),
    sa.Column("incident_id", sa.Text, sa.ForeignKey("incidents.id", ondelete="SET NULL")),
    _created_at(),
    enum_check("severity", IncidentSeverity),
    # Recording a violation is idempotent on this key (§3.14).
    sa.UniqueConstraint("tenant_id", "run_id", "policy_id"),
    sa.Index("ix_policy_violations_incident_id", "incident_id"),
)

# --- §1.13 LLM failure facts --------------------------------------------------------------------

run_failures = sa.Table(
    "run_failures",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("failure_type", sa.Text, nullable=False),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("model", sa.String(64)),
    sa.Column("request_id", sa.String(64)),
    sa.Column("duration_ms", sa.Integer),
    sa.Column("metadata", JSONB),
    _created_at(),
    enum_check("failure_type", FailureType),
    sa.Index("ix_run_failures_run_id", "run_id"),
    sa.Index("ix_run_failures_tenant_id_created_at", "tenant_id", "created_at"),
    sa.Index("ix_run_failures_tenant_id_failure_type", "tenant_id", "failure_type"),
)

failure_evidence = sa.Table(
    "failure_evidence",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column(
        "failure_id",
        sa.Text,
        sa.ForeignKey("run_failures.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("evidence_type", sa.Text, nullable=False),
    sa.Column("evidence_data", JSONB, nullable=False),
    sa.Column("is_immutable", sa.Boolean, nullable=False, server_default=TRUE),
    _created_at(),
    enum_check("evidence_type", FailureEvidenceType),
    # Not in DOMAIN.md: serves the FK (cascade from run_failures, per-failure reads).
    sa.Index("ix_failure_evidence_failure_id", "failure_id"),
)

# --- §1.14-1.15 circuit breaker and alert outbox ------------------------------------------------

breaker_incidents = sa.Table(
    "breaker_incidents",
    metadata,
    # First 12 characters of a uuid4 string (§1.14).
    _text_id(sa.text("left(gen_random_uuid()::text, 12)")),
    _tenant(),
    sa.Column("circuit_breaker_name", sa.Text, nullable=False),
    _created_at(),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("drift_score", sa.Float),
    sa.Column("sample_count", sa.Integer),
    sa.Column("details", JSONB),
    sa.Column("resolved", sa.Boolean, nullable=False, server_default=FALSE),
    _tstz("resolved_at"),
    sa.Column("resolved_by", sa.Text),
    sa.Column("resolution_notes", sa.Text),
    sa.Column("alert_sent", sa.Boolean, nullable=False, server_default=FALSE),
    _tstz("alert_sent_at"),
    sa.Column("alert_response", sa.Text),
    enum_check("severity", BreakerSeverity),
    sa.Index(
        "ix_breaker_incidents_tenant_id_circuit_breaker_name_created_at",
        "tenant_id",
        "circuit_breaker_name",
        "created_at",
    ),
    sa.Index(
        "ix_breaker_incidents_unresolved",
        "tenant_id",
        "circuit_breaker_name",
        postgresql_where=sa.text("NOT resolved"),
    ),
)

circuit_breakers = sa.Table(
    "circuit_breakers",
    metadata,
    _identity_id(),
    _tenant(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=FALSE),
    sa.Column("disabled_by", sa.Text),
    sa.Column("disabled_reason", sa.Text),
    _tstz("disabled_until"),
    sa.Column("incident_id", sa.Text, sa.ForeignKey("breaker_incidents.id", ondelete="SET NULL")),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default=ZERO),
    _tstz("last_failure_at"),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("tenant_id", "name"),
)

alert_outbox = sa.Table(
    "alert_outbox",
    metadata,
    _identity_id(),
    _tenant(),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("alert_type", sa.Text, nullable=False),
    sa.Column("circuit_breaker_name", sa.Text),
    sa.Column("incident_id", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=ZERO),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default=sa.text("10")),
    _tstz("last_attempt_at"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("last_error", sa.Text),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'PENDING'")),
    _created_at(),
    _tstz("sent_at"),
    enum_check("alert_type", AlertType),
    enum_check("status", AlertStatus),
    sa.Index("ix_alert_outbox_next_attempt_at", "next_attempt_at"),
    sa.Index("ix_alert_outbox_status", "status"),
    sa.Index(
        "ix_alert_outbox_pending",
        "status",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'PENDING'"),
    ),
)

# --- §1.16 execution scopes ---------------------------------------------------------------------

execution_scopes = sa.Table(
    "execution_scopes",
    metadata,
    # `scope_` + 24 hex (§1.16).
    _text_id(sa.text("'scope_' || left(replace(gen_random_uuid()::text, '-', ''), 24)")),
    _tenant(),
    sa.Column(
        "incident_id",
        sa.Text,
        sa.ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("allowed_actions", JSONB, nullable=False),
    sa.Column("intent", sa.Text, nullable=False),
    sa.Column("max_cost_usd", sa.Numeric(12, 4), nullable=False, server_default=sa.text("0.50")),
    sa.Column("cost_used_usd", sa.Numeric(12, 4), nullable=False, server_default=ZERO),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("attempts_used", sa.Integer, nullable=False, server_default=ZERO),
    sa.Column("target_agents", JSONB),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'ACTIVE'")),
    sa.Column("created_by", sa.Text, nullable=False),
    _created_at(),
    _tstz("expires_at", nullable=False),
    _tstz("revoked_at"),
    sa.Column("revoked_by", sa.Text),
    sa.Column("executions", JSONB, nullable=False, server_default=EMPTY_ARRAY),
    enum_check("status", ScopeStatus),
    sa.CheckConstraint("attempts_used <= max_attempts", name="attempts_within_max"),
    sa.CheckConstraint("cost_used_usd <= max_cost_usd", name="cost_within_max"),
    sa.Index("ix_execution_scopes_tenant_id_incident_id", "tenant_id", "incident_id"),
    sa.Index(
        "ix_execution_scopes_active_expires_at",
        "expires_at",
        postgresql_where=sa.text("status = 'ACTIVE'"),
    ),
)

# --- §1.17 gateway-owned ------------------------------------------------------------------------

audit_log = sa.Table(
    "audit_log",
    metadata,
    _identity_id(),
    _tenant(),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("actor_role", sa.Text, nullable=False),
    sa.Column("operation", sa.Text, nullable=False),
    sa.Column("entity_type", sa.Text, nullable=False),
    sa.Column("entity_id", sa.Text, nullable=False),
    sa.Column("before", JSONB),
    sa.Column("after", JSONB),
    sa.Column("request_id", sa.Text),
    _created_at(),
    enum_check("actor_role", ActorRole),
    sa.Index("ix_audit_log_tenant_id_created_at", "tenant_id", "created_at"),
    sa.Index(
        "ix_audit_log_tenant_id_entity_type_entity_id", "tenant_id", "entity_type", "entity_id"
    ),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    _text_id(),
    _tenant(),
    sa.Column("name", sa.Text),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    _created_at(),
    _tstz("last_used_at"),
    _tstz("revoked_at"),
    enum_check("role", ApiKeyRole),
)

# --- API.md Idempotency-Key: stored answers, kept 24 h (docs/decisions.md) -----------------------

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    _tenant(),
    # Keys are scoped per caller, so one user never receives another's stored answer.
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("request_hash", sa.Text, nullable=False),
    # NULL while the first request runs; the stored answer afterwards.
    sa.Column("status_code", sa.Integer),
    sa.Column("content_type", sa.Text),
    sa.Column("body", sa.LargeBinary),
    _created_at(),
    sa.PrimaryKeyConstraint("tenant_id", "actor", "key"),
    sa.Index("ix_idempotency_keys_created_at", "created_at"),
)

# --- Trusted documents (README.md § Trusted documents): global, not per tenant --------------

trusted_documents = sa.Table(
    "trusted_documents",
    metadata,
    # "sha256:<hex>" of the document's exact text: the id clients send as `documentId`.
    sa.Column("hash", sa.Text, primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("operation_names", sa.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")),
    _created_at(),
    sa.CheckConstraint("hash ~ '^sha256:[0-9a-f]{64}$'", name="hash"),
)

# --- Change outbox (docs/decisions.md § Change notifications through an outbox) --------------

# A committed transaction's change notifications, waiting for the one publisher
# (gateway/publisher.py) to send them with pg_notify and delete them: the table holds only
# what is not yet published. id is the order within a transaction (and between transactions
# that touched the same row); a row is the payload {"tenant_id", "kind", "id"}.
change_outbox = sa.Table(
    "change_outbox",
    metadata,
    _identity_id(),
    _tenant(),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("entity_id", sa.Text, nullable=False),
    _created_at(),
)
