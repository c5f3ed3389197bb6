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
    "change_snapshots",
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
# The writing transaction's id as a bigint (xid8 has no bigint cast; its text is the number).
CURRENT_XID = sa.text("(pg_current_xact_id())::text::bigint")
ZERO = sa.text("0")


def enum_check(column: str, enum: type[StrEnum]) -> sa.CheckConstraint:
    """CHECK that `column` holds one of the enum's strings; named ck_<table>_<column>.

    NULL passes (as with any CHECK), so nullable enum columns need nothing more.
    """
    values = ", ".join("'" + member.value.replace("'", "''") + "'" for member in enum)
    # `info` lets the mapping type the column as this enum in GraphQL (drivers/mapping.py).
    return sa.CheckConstraint(
        f"{column} IN ({values})", name=column, info={"enum": enum, "column": column}
    )


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.Text, nullable=False)


def _text_id(default: sa.TextClause = UUID_ID, *, comment: str | None = None) -> sa.Column[str]:
    return sa.Column("id", sa.Text, primary_key=True, server_default=default, comment=comment)


def _identity_id(*, comment: str | None = None) -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True, comment=comment)


def _created_at(*, comment: str | None = None) -> sa.Column[datetime]:
    return sa.Column(
        "created_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=NOW,
        comment=comment,
    )


def _updated_at(*, comment: str | None = None) -> sa.Column[datetime]:
    return sa.Column(
        "updated_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=NOW,
        comment=comment,
    )


def _tstz(name: str, *, nullable: bool = True, comment: str | None = None) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, comment=comment)


# --- §1.12 runs ---------------------------------------------------------------------------------

runs = sa.Table(
    "runs",
    metadata,
    _text_id(comment="Run id."),
    _tenant(),
    sa.Column("agent_id", sa.Text, comment="The agent that ran."),
    sa.Column("project_id", sa.Text, comment="The project it ran in."),
    sa.Column(
        "status",
        sa.Text,
        nullable=False,
        server_default=sa.text("'QUEUED'"),
        comment="Lifecycle state.",
    ),
    sa.Column("error_message", sa.Text, comment="Why it failed or stopped."),
    _tstz("started_at", comment="When it started."),
    _tstz("completed_at", comment="When it reached a terminal status."),
    sa.Column(
        "input_tokens",
        sa.Integer,
        nullable=False,
        server_default=ZERO,
        comment="Input tokens used.",
    ),
    sa.Column(
        "output_tokens",
        sa.Integer,
        nullable=False,
        server_default=ZERO,
        comment="Output tokens used.",
    ),
    sa.Column("estimated_cost_usd", sa.Numeric(18, 6), comment="Estimated cost in USD."),
    sa.Column(
        "incident_count",
        sa.Integer,
        nullable=False,
        server_default=ZERO,
        comment="Incidents created from this run.",
    ),
    sa.Column("plan_step_count", sa.Integer, comment="Steps planned."),
    sa.Column(
        "completed_step_count",
        sa.Integer,
        nullable=False,
        server_default=ZERO,
        comment="Steps completed.",
    ),
    _created_at(comment="When it was recorded."),
    _updated_at(comment="Last change."),
    enum_check("status", RunStatus),
    sa.Index("ix_runs_tenant_id_created_at", "tenant_id", "created_at"),
    sa.Index("ix_runs_tenant_id_status", "tenant_id", "status"),
)

run_steps = sa.Table(
    "run_steps",
    metadata,
    sa.Column(
        "run_id",
        sa.Text,
        sa.ForeignKey("runs.id", ondelete="CASCADE"),
        primary_key=True,
        comment="The run.",
    ),
    sa.Column(
        "step_index",
        sa.Integer,
        primary_key=True,
        comment="Position of the step in the run, from 0.",
    ),
    _tenant(),
    sa.Column("step_type", sa.Text, nullable=False, comment="Kind of step."),
    sa.Column(
        "tokens",
        sa.Integer,
        nullable=False,
        server_default=ZERO,
        comment="Tokens used by the step.",
    ),
    sa.Column(
        "cost_cents",
        sa.Numeric(12, 4),
        nullable=False,
        server_default=ZERO,
        comment="Cost of the step in cents.",
    ),
    sa.Column(
        "duration_ms",
        sa.Integer,
        nullable=False,
        server_default=ZERO,
        comment="Duration of the step in ms.",
    ),
    sa.Column(
        "status",
        sa.Text,
        nullable=False,
        server_default=sa.text("'OK'"),
        comment="OK, WARNING or VIOLATION.",
    ),
    sa.Column("content_hash", sa.Text, comment="SHA-256 hex of the step content."),
    _created_at(comment="When the step was recorded."),
    enum_check("status", StepStatus),
)

# --- §1.6-1.8 incidents -------------------------------------------------------------------------

incidents = sa.Table(
    "incidents",
    metadata,
    _text_id(comment="Incident id (a uuid; run-path incidents are inc_ + 16 hex)."),
    _tenant(),
    sa.Column(
        "title", sa.String(255), nullable=False, comment="Short title, at most 255 characters."
    ),
    sa.Column(
        "severity", sa.Text, nullable=False, comment="Current severity; escalation only raises it."
    ),
    sa.Column(
        "status",
        sa.Text,
        nullable=False,
        server_default=sa.text("'OPEN'"),
        comment="Lifecycle state: OPEN -> ACKNOWLEDGED -> RESOLVED.",
    ),
    sa.Column("trigger_type", sa.Text, nullable=False, comment="What opened the incident."),
    sa.Column(
        "trigger_value",
        sa.Text,
        comment="Free-text detail of the trigger (structured for policy violations).",
    ),
    sa.Column(
        "category",
        sa.Text,
        comment="Free UPPER_CASE category (e.g. EXECUTION_FAILURE); null = uncategorized.",
    ),
    sa.Column(
        "source_type",
        sa.Text,
        nullable=False,
        server_default=sa.text("'KILLSWITCH'"),
        comment="The path that created the incident.",
    ),
    sa.Column(
        "cause_type",
        sa.Text,
        nullable=False,
        server_default=sa.text("'HUMAN'"),
        comment="LLM_RUN with a source run, SYSTEM for automated paths, HUMAN for people.",
    ),
    sa.Column(
        "source_run_id",
        sa.Text,
        sa.ForeignKey("runs.id", ondelete="SET NULL"),
        comment="The run this incident came from, if any.",
    ),
    sa.Column(
        "calls_affected",
        sa.Integer,
        nullable=False,
        server_default=ZERO,
        comment="Number of distinct related call ids.",
    ),
    sa.Column(
        "related_call_ids",
        JSONB,
        nullable=False,
        server_default=EMPTY_ARRAY,
        comment="Call or run ids aggregated into this incident (at most 1000).",
    ),
    sa.Column(
        "cost_delta_cents",
        sa.Numeric(10, 4),
        nullable=False,
        server_default=ZERO,
        comment="Cost attributed to the incident, in cents.",
    ),
    sa.Column("cost_impact", sa.Numeric(12, 2), comment="Cost impact in USD; null when unknown."),
    sa.Column("error_rate", sa.Numeric(5, 4), comment="Error rate 0..1, when known."),
    sa.Column(
        "auto_action",
        sa.Text,
        comment="Automatic action taken (FREEZE, THROTTLE, NONE, AGGREGATE).",
    ),
    sa.Column("action_details", JSONB, comment="Details of the automatic action (JSON)."),
    sa.Column("description", sa.Text, comment="Longer description."),
    sa.Column("error_code", sa.Text, comment="Error code of the failure behind the incident."),
    sa.Column(
        "error_message", sa.Text, comment="Error message of the failure behind the incident."
    ),
    sa.Column(
        "impact_scope",
        sa.Text,
        comment="How far the impact reaches (SINGLE_RUN, AGENT, PROJECT, TENANT, USER, SYSTEM).",
    ),
    sa.Column("affected_agent_id", sa.Text, comment="The affected agent, when one is."),
    sa.Column(
        "affected_count",
        sa.Integer,
        nullable=False,
        server_default=sa.text("1"),
        comment="How many entities are affected.",
    ),
    _tstz("started_at", nullable=False, comment="When the problem started."),
    _tstz("acknowledged_at", comment="When it was acknowledged."),
    sa.Column("acknowledged_by", sa.String(100), comment="Who acknowledged it."),
    _tstz("resolved_at", comment="When it was resolved (equals endedAt)."),
    _tstz("ended_at", comment="When the problem ended (equals resolvedAt)."),
    sa.Column("resolved_by", sa.String(100), comment="Who or what resolved it."),
    sa.Column("duration_seconds", sa.Integer, comment="endedAt - startedAt in whole seconds."),
    sa.Column("resolution_method", sa.Text, comment="How it was resolved."),
    sa.Column(
        "resolution_type",
        sa.String(50),
        comment="Free-text resolution type (at most 50 characters).",
    ),
    sa.Column(
        "resolution_notes", sa.Text, comment="Notes given on resolution, or the closure reason."
    ),
    sa.Column("resolution_summary", sa.Text, comment="Summary given on resolution."),
    sa.Column(
        "postmortem_artifact_id",
        sa.String(64),
        comment="Postmortem document id (pm- + 16 hex), see createPostmortemStub.",
    ),
    sa.Column(
        "recurrence_signature",
        sa.String(128),
        comment="Signature grouping recurrences of the same problem (see recurrenceGroup).",
    ),
    sa.Column(
        "signature_version",
        sa.String(20),
        comment="Version of the algorithm that computed recurrenceSignature.",
    ),
    sa.Column(
        "escalated",
        sa.Boolean,
        nullable=False,
        server_default=FALSE,
        comment="Whether severity was ever escalated.",
    ),
    _tstz("escalated_at", comment="When severity was last escalated."),
    sa.Column("escalated_to", sa.Text, comment="Where it was escalated to."),
    sa.Column(
        "inflection_step_index", sa.Integer, comment="Run step at which the incident was triggered."
    ),
    _tstz("inflection_timestamp", comment="Time at which the incident was triggered."),
    sa.Column(
        "inflection_context", JSONB, comment="Context captured at the inflection point (JSON)."
    ),
    _created_at(comment="When the incident was recorded."),
    _updated_at(comment="Last change; OPEN incidents idle for 900 s are auto-resolved."),
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
    _text_id(comment="Event id."),
    _tenant(),
    sa.Column(
        "incident_id",
        sa.Text,
        sa.ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
        comment="The incident this event belongs to.",
    ),
    sa.Column(
        "event_type",
        sa.Text,
        nullable=False,
        comment="What happened (lifecycle types come only from the transitions).",
    ),
    sa.Column(
        "description",
        sa.Text,
        nullable=False,
        comment='Human-readable text, e.g. "Incident acknowledged by <actor>".',
    ),
    sa.Column(
        "data",
        JSONB,
        nullable=False,
        server_default=EMPTY_OBJECT,
        comment="Structured details of the event (JSON object).",
    ),
    _created_at(comment="When the event was appended."),
    enum_check("event_type", IncidentEventType),
    sa.Index("ix_incident_events_incident_id_created_at", "incident_id", "created_at"),
    sa.Index("ix_incident_events_tenant_id_created_at", "tenant_id", "created_at"),
)

incident_evidence = sa.Table(
    "incident_evidence",
    metadata,
    _text_id(comment="Evidence id."),
    _tenant(),
    sa.Column(
        "incident_id",
        sa.Text,
        sa.ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
        comment="The incident it is attached to.",
    ),
    sa.Column(
        "evidence_type", sa.Text, nullable=False, comment="POLICY_VIOLATION or RECOVERY_ACTION."
    ),
    sa.Column(
        "recovery_executed",
        sa.Boolean,
        nullable=False,
        server_default=FALSE,
        comment="Whether it records an executed recovery action.",
    ),
    sa.Column("payload", JSONB, comment="The evidence itself (JSON)."),
    _created_at(comment="When it was attached."),
    enum_check("evidence_type", IncidentEvidenceType),
    sa.Index("ix_incident_evidence_incident_id", "incident_id"),
    sa.Index("ix_incident_evidence_incident_id_evidence_type", "incident_id", "evidence_type"),
)

# --- §1.1-1.4 limits ----------------------------------------------------------------------------

limits = sa.Table(
    "limits",
    metadata,
    _text_id(comment="Limit id."),
    _tenant(),
    sa.Column("name", sa.String(256), nullable=False, comment="Name, 1..256 characters."),
    sa.Column("description", sa.Text, comment="Description, at most 1024 characters."),
    sa.Column(
        "limit_category", sa.Text, nullable=False, comment="BUDGET, RATE or THRESHOLD; immutable."
    ),
    sa.Column(
        "limit_type",
        sa.String(32),
        nullable=False,
        comment="Free-text type such as COST_USD or TOKENS_PER_RUN; immutable.",
    ),
    sa.Column(
        "scope",
        sa.Text,
        nullable=False,
        server_default=sa.text("'TENANT'"),
        comment="What the limit applies to.",
    ),
    sa.Column(
        "scope_id", sa.String(100), comment="Project, agent or provider id for scoped limits."
    ),
    sa.Column(
        "max_value", sa.Numeric(18, 4), nullable=False, comment="The configured maximum (> 0)."
    ),
    sa.Column("reset_period", sa.Text, comment="Budget reset cadence (BUDGET only)."),
    _tstz("next_reset_at", comment="Next budget reset, as supplied (BUDGET only)."),
    sa.Column("window_seconds", sa.Integer, comment="Rate window in seconds (RATE only)."),
    sa.Column(
        "measurement_window_seconds",
        sa.Integer,
        comment="Measurement window in seconds (THRESHOLD only).",
    ),
    sa.Column(
        "params",
        JSONB,
        nullable=False,
        server_default=EMPTY_OBJECT,
        comment="Threshold params (THRESHOLD only; {} otherwise).",
    ),
    sa.Column(
        "enforcement",
        sa.Text,
        nullable=False,
        server_default=sa.text("'BLOCK'"),
        comment="What happens on breach.",
    ),
    sa.Column("consequence", sa.Text, comment="Follow-up of a breach."),
    sa.Column(
        "status",
        sa.Text,
        nullable=False,
        server_default=sa.text("'ACTIVE'"),
        comment="ACTIVE, or DISABLED after a (soft) delete.",
    ),
    _created_at(comment="When it was created."),
    _updated_at(comment="Last change."),
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
    _text_id(comment="Integrity row id."),
    _tenant(),
    sa.Column(
        "limit_id",
        sa.Text,
        sa.ForeignKey("limits.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
        comment="The limit it verifies.",
    ),
    sa.Column(
        "integrity_status",
        sa.Text,
        nullable=False,
        comment="Verdict: VERIFIED, DEGRADED or FAILED.",
    ),
    sa.Column(
        "integrity_score",
        sa.Numeric(5, 4),
        nullable=False,
        comment="Score 0..1 (1.0000 when created).",
    ),
    sa.Column(
        "computed_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=NOW,
        comment="When the verdict was computed.",
    ),
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
    _text_id(comment="Breach id."),
    _tenant(),
    sa.Column(
        "limit_id",
        sa.Text,
        sa.ForeignKey("limits.id", ondelete="CASCADE"),
        nullable=False,
        comment="The breached limit.",
    ),
    sa.Column(
        "run_id",
        sa.Text,
        sa.ForeignKey("runs.id", ondelete="SET NULL"),
        comment="The run that breached it, if known.",
    ),
    sa.Column(
        "incident_id",
        sa.Text,
        sa.ForeignKey("incidents.id", ondelete="SET NULL"),
        comment="The incident it is linked to, if any.",
    ),
    sa.Column("breach_type", sa.Text, nullable=False, comment="Kind of breach."),
    sa.Column("value_at_breach", sa.Numeric(18, 4), comment="The measured value at the breach."),
    sa.Column(
        "limit_value",
        sa.Numeric(18, 4),
        nullable=False,
        comment="The limit value that was exceeded.",
    ),
    sa.Column("details", JSONB, comment="Structured details (JSON)."),
    sa.Column(
        "breached_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=NOW,
        comment="When the breach happened.",
    ),
    _tstz("recovered_at", comment="When the breach condition cleared, as supplied."),
    enum_check("breach_type", BreachType),
    sa.Index("ix_limit_breaches_limit_id_breached_at", "limit_id", "breached_at"),
    sa.Index("ix_limit_breaches_tenant_id_breached_at", "tenant_id", "breached_at"),
    sa.Index("ix_limit_breaches_run_id", "run_id"),
    sa.Index("ix_limit_breaches_incident_id", "incident_id"),
)

limit_overrides = sa.Table(
    "limit_overrides",
    metadata,
    _text_id(comment="Override id."),
    _tenant(),
    sa.Column(
        "limit_id",
        sa.Text,
        sa.ForeignKey("limits.id", ondelete="CASCADE"),
        nullable=False,
        comment="The overridden limit.",
    ),
    sa.Column(
        "original_value",
        sa.Numeric(20, 4),
        nullable=False,
        comment="The limit's maxValue when the override was requested.",
    ),
    sa.Column(
        "override_value", sa.Numeric(20, 4), nullable=False, comment="The temporary value (> 0)."
    ),
    sa.Column(
        "status",
        sa.Text,
        nullable=False,
        server_default=sa.text("'PENDING'"),
        comment="Lifecycle state.",
    ),
    sa.Column(
        "requested_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=NOW,
        comment="When it was requested.",
    ),
    sa.Column("requested_by", sa.String(128), nullable=False, comment="Who requested it."),
    sa.Column("reason", sa.Text, nullable=False, comment="Justification, 10..500 characters."),
    _tstz("starts_at", nullable=False, comment="When it takes effect."),
    _tstz("expires_at", nullable=False, comment="startsAt + the requested duration."),
    _tstz("approved_at", comment="When it was approved (or rejected)."),
    sa.Column("approved_by", sa.String(128), comment="Who approved it (or rejected it)."),
    sa.Column("rejection_reason", sa.Text, comment="Why it was rejected."),
    _tstz("cancelled_at", comment="When it was cancelled."),
    sa.Column("cancelled_by", sa.String(128), comment="Who cancelled it."),
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
    sa.Column(
        "signal_id",
        sa.String(64),
        nullable=False,
        unique=True,
        comment="`SIG-` + 12 hex; same as id.",
    ),
    sa.Column("run_id", sa.String(64), nullable=False, comment="The run."),
    sa.Column("policy_id", sa.String(64), nullable=False, comment="The policy."),
    sa.Column("step_index", sa.Integer, comment="Step of the run, if known."),
    sa.Column("signal_type", sa.Text, nullable=False, comment="NEAR or BREACH."),
    sa.Column("metric", sa.Text, nullable=False, comment="What was measured."),
    sa.Column("current_value", sa.Float, nullable=False, comment="Measured value."),
    sa.Column(
        "threshold_value", sa.Float, nullable=False, comment="Threshold it was compared with."
    ),
    sa.Column("percentage", sa.Float, comment="current / threshold x 100."),
    sa.Column("action_taken", sa.Text, comment="BREACH only."),
    sa.Column(
        "timestamp",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=NOW,
        comment="When it was recorded.",
    ),
    sa.Column(
        "acknowledged",
        sa.Boolean,
        nullable=False,
        server_default=FALSE,
        comment="Acknowledged once by an operator.",
    ),
    sa.Column("acknowledged_by", sa.String(64), comment="Who acknowledged it."),
    _tstz("acknowledged_at", comment="When."),
    sa.Column(
        "alert_sent",
        sa.Boolean,
        nullable=False,
        server_default=FALSE,
        comment="Whether an alert went out.",
    ),
    _tstz("alert_sent_at", comment="When the alert went out."),
    sa.Column("alert_channels", JSONB, comment="Channels alerted."),
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
    _text_id(comment="Proposal id."),
    _tenant(),
    sa.Column(
        "title",
        sa.Text,
        nullable=False,
        comment='Title, e.g. "Policy from Lesson: <lesson title>".',
    ),
    sa.Column(
        "status",
        sa.Text,
        nullable=False,
        server_default=sa.text("'DRAFT'"),
        comment="Always DRAFT for now.",
    ),
    sa.Column("source_type", sa.Text, nullable=False, comment="What the proposal came from."),
    sa.Column(
        "source_id", sa.Text, nullable=False, comment="The lesson or incident id it came from."
    ),
    sa.Column(
        "created_by",
        sa.Text,
        nullable=False,
        comment='Who created it ("system" for run incidents).',
    ),
    _created_at(comment="When it was created."),
    enum_check("status", ProposalStatus),
    enum_check("source_type", ProposalSourceType),
)

lessons_learned = sa.Table(
    "lessons_learned",
    metadata,
    _text_id(comment="Lesson id."),
    _tenant(),
    sa.Column("lesson_type", sa.Text, nullable=False, comment="Kind of lesson."),
    sa.Column("severity", sa.Text, comment="Severity (null for near-threshold lessons)."),
    sa.Column(
        "source_event_id", sa.Text, nullable=False, comment="The run or incident that produced it."
    ),
    sa.Column(
        "source_event_type",
        sa.Text,
        nullable=False,
        comment="Whether the source is a RUN or an INCIDENT.",
    ),
    sa.Column("source_run_id", sa.Text, comment="The run behind it, if any."),
    sa.Column("title", sa.String(500), nullable=False, comment="Title, at most 500 characters."),
    sa.Column("description", sa.Text, nullable=False, comment="What was learned."),
    sa.Column("proposed_action", sa.Text, comment="Suggested follow-up."),
    sa.Column(
        "detected_pattern",
        JSONB,
        comment="The detected pattern (e.g. threshold_type, threshold_band) as JSON.",
    ),
    sa.Column(
        "status",
        sa.Text,
        nullable=False,
        server_default=sa.text("'PENDING'"),
        comment="Lifecycle state.",
    ),
    sa.Column(
        "draft_proposal_id",
        sa.Text,
        sa.ForeignKey("policy_proposals.id", ondelete="SET NULL"),
        comment="The draft policy it was converted to.",
    ),
    _tstz("converted_at", comment="When it was converted to a draft."),
    _tstz("deferred_until", comment="Deferred until this instant (then reactivated)."),
    _tstz("dismissed_at", comment="When it was dismissed."),
    sa.Column("dismissed_by", sa.String(255), comment="Who dismissed it."),
    sa.Column("dismissed_reason", sa.Text, comment="Why it was dismissed."),
    _created_at(comment="When it was recorded."),
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
    _text_id(comment="Violation id."),
    _tenant(),
    sa.Column("run_id", sa.Text, nullable=False, comment="The violating run."),
    sa.Column("policy_id", sa.Text, nullable=False, comment="The violated policy."),
    sa.Column("violated_rule", sa.Text, nullable=False, comment="The rule that was violated."),
    sa.Column(
        "severity",
        sa.Text,
        nullable=False,
        server_default=sa.text("'MEDIUM'"),
        comment="The violation's own severity.",
    ),
    sa.Column("reason", sa.Text, comment="Why it is a violation."),
    sa.Column("evidence", JSONB, comment="Evidence supplied with it (JSON)."),
    sa.Column(
        "incident_id",
        sa.Text,
        sa.ForeignKey("incidents.id", ondelete="SET NULL"),
        comment="The incident it was aggregated into.",
    ),
    _created_at(comment="When it was recorded."),
    enum_check("severity", IncidentSeverity),
    # Recording a violation is idempotent on this key (§3.14).
    sa.UniqueConstraint("tenant_id", "run_id", "policy_id"),
    sa.Index("ix_policy_violations_incident_id", "incident_id"),
)

# --- §1.13 LLM failure facts --------------------------------------------------------------------

run_failures = sa.Table(
    "run_failures",
    metadata,
    _text_id(comment="Failure id."),
    _tenant(),
    sa.Column(
        "run_id",
        sa.Text,
        sa.ForeignKey("runs.id", ondelete="CASCADE"),
        nullable=False,
        comment="The failed run.",
    ),
    sa.Column("failure_type", sa.Text, nullable=False, comment="Kind of failure."),
    sa.Column("error_code", sa.String(64), comment="Error code, at most 64 characters."),
    sa.Column("error_message", sa.Text, comment="Error message."),
    sa.Column("model", sa.String(64), comment="The model that failed."),
    sa.Column("request_id", sa.String(64), comment="The provider's request id."),
    sa.Column("duration_ms", sa.Integer, comment="How long the call ran, in ms."),
    sa.Column("metadata", JSONB, comment="Further details (JSON)."),
    _created_at(comment="When it was recorded."),
    enum_check("failure_type", FailureType),
    sa.Index("ix_run_failures_run_id", "run_id"),
    sa.Index("ix_run_failures_tenant_id_created_at", "tenant_id", "created_at"),
    sa.Index("ix_run_failures_tenant_id_failure_type", "tenant_id", "failure_type"),
)

failure_evidence = sa.Table(
    "failure_evidence",
    metadata,
    _text_id(comment="Evidence id."),
    _tenant(),
    sa.Column(
        "failure_id",
        sa.Text,
        sa.ForeignKey("run_failures.id", ondelete="CASCADE"),
        nullable=False,
        comment="The failure it belongs to.",
    ),
    sa.Column("evidence_type", sa.Text, nullable=False, comment="Kind of evidence."),
    sa.Column("evidence_data", JSONB, nullable=False, comment="The captured evidence (JSON)."),
    sa.Column(
        "is_immutable",
        sa.Boolean,
        nullable=False,
        server_default=TRUE,
        comment="Always true: the database refuses updates.",
    ),
    _created_at(comment="When it was captured."),
    enum_check("evidence_type", FailureEvidenceType),
    # Not in DOMAIN.md: serves the FK (cascade from run_failures, per-failure reads).
    sa.Index("ix_failure_evidence_failure_id", "failure_id"),
)

# --- §1.14-1.15 circuit breaker and alert outbox ------------------------------------------------

breaker_incidents = sa.Table(
    "breaker_incidents",
    metadata,
    # First 12 characters of a uuid4 string (§1.14).
    _text_id(
        sa.text("left(gen_random_uuid()::text, 12)"), comment="First 12 characters of a uuid4."
    ),
    _tenant(),
    sa.Column("circuit_breaker_name", sa.Text, nullable=False, comment="The breaker that tripped."),
    _created_at(comment="When the breaker tripped."),
    sa.Column("reason", sa.Text, nullable=False, comment="Why it tripped."),
    sa.Column("severity", sa.Text, nullable=False, comment="P1 drift, P2 manual, P3 schema."),
    sa.Column("drift_score", sa.Float, comment="Drift score of the trip."),
    sa.Column("sample_count", sa.Integer, comment="Samples behind the score."),
    sa.Column("details", JSONB, comment="What the reporter sent."),
    sa.Column(
        "resolved",
        sa.Boolean,
        nullable=False,
        server_default=FALSE,
        comment="Whether the trip is over.",
    ),
    _tstz("resolved_at", comment="When it was resolved."),
    sa.Column("resolved_by", sa.Text, comment="Who resolved it (an actor or system-auto-recover)."),
    sa.Column("resolution_notes", sa.Text, comment="Why it was resolved."),
    sa.Column(
        "alert_sent",
        sa.Boolean,
        nullable=False,
        server_default=FALSE,
        comment="Whether the trip's alert was delivered.",
    ),
    _tstz("alert_sent_at", comment="When it was delivered."),
    sa.Column("alert_response", sa.Text, comment="Alertmanager's HTTP status."),
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
    _identity_id(
        comment="Row id (the id of BREAKER_CHANGED notifications); null until first written."
    ),
    _tenant(),
    sa.Column(
        "name", sa.Text, nullable=False, comment="Breaker name; the default breaker is costsim_v2."
    ),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=FALSE),
    sa.Column("disabled_by", sa.Text, comment="Who opened it: an actor or circuit_breaker."),
    sa.Column("disabled_reason", sa.Text),
    _tstz(
        "disabled_until",
        comment="When an OPEN breaker recovers by itself; null = manual reset required.",
    ),
    sa.Column("incident_id", sa.Text, sa.ForeignKey("breaker_incidents.id", ondelete="SET NULL")),
    sa.Column(
        "consecutive_failures",
        sa.Integer,
        nullable=False,
        server_default=ZERO,
        comment="Drift reports above the threshold in a row.",
    ),
    _tstz("last_failure_at", comment="Last failed drift report."),
    _created_at(),
    _updated_at(comment="Last change of the row."),
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
    _text_id(
        sa.text("'scope_' || left(replace(gen_random_uuid()::text, '-', ''), 24)"),
        comment="`scope_` + 24 hex.",
    ),
    _tenant(),
    sa.Column(
        "incident_id",
        sa.Text,
        sa.ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
        comment="The incident it is bound to.",
    ),
    sa.Column("allowed_actions", JSONB, nullable=False, comment="The one allowed action."),
    sa.Column("intent", sa.Text, nullable=False, comment="Why the scope exists."),
    sa.Column(
        "max_cost_usd",
        sa.Numeric(12, 4),
        nullable=False,
        server_default=sa.text("0.50"),
        comment="Budget of the scope in USD.",
    ),
    sa.Column(
        "cost_used_usd",
        sa.Numeric(12, 4),
        nullable=False,
        server_default=ZERO,
        comment="Spent so far in USD.",
    ),
    sa.Column(
        "max_attempts",
        sa.Integer,
        nullable=False,
        server_default=sa.text("1"),
        comment="Executions allowed.",
    ),
    sa.Column(
        "attempts_used", sa.Integer, nullable=False, server_default=ZERO, comment="Executions done."
    ),
    sa.Column("target_agents", JSONB, comment="Agents the action may touch."),
    sa.Column(
        "status",
        sa.Text,
        nullable=False,
        server_default=sa.text("'ACTIVE'"),
        comment="ACTIVE, EXHAUSTED, EXPIRED or REVOKED.",
    ),
    sa.Column("created_by", sa.Text, nullable=False, comment="Who created it."),
    _created_at(comment="When it was created."),
    _tstz("expires_at", nullable=False, comment="When it stops being usable."),
    _tstz("revoked_at", comment="When it was revoked."),
    sa.Column("revoked_by", sa.Text, comment="Who revoked it."),
    sa.Column(
        "executions",
        JSONB,
        nullable=False,
        server_default=EMPTY_ARRAY,
        comment="Log of executions: {action, cost_usd, timestamp, attempt}.",
    ),
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
    # The writing transaction's id (subscribers compare it with the snapshot of their first read).
    sa.Column("xid", sa.BigInteger, nullable=False, server_default=CURRENT_XID),
)

# Changed rows as their transactions committed them (drivers/audit.snapshot_sql), by seq: the
# outbox id (direct mode: a value of the same sequence). A notification names its seq and the
# hub reads the row from here, so payloads stay far below NOTIFY's 8000 bytes. Written by the
# writer itself; the publisher prunes rows older than a minute. UNLOGGED (migration 0007): a
# snapshot matters for milliseconds and costs no WAL; after a crash it is gone, the hubs resync
# and a change without a snapshot is read as the current row.
change_snapshots = sa.Table(
    "change_snapshots",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    _tenant(),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("entity_id", sa.Text, nullable=False),
    sa.Column("xid", sa.BigInteger, nullable=False, server_default=CURRENT_XID),
    sa.Column("snapshot", JSONB, nullable=False),
    _created_at(),
    prefixes=["UNLOGGED"],
)
