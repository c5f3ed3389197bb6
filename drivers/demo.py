"""A realistic demo data set for one tenant, so a fresh console has something to show.

Idempotent by construction: every id is a uuid5 of (tenant, name) and every insert is ON CONFLICT
DO NOTHING, so seeding twice adds nothing and seeding two tenants never collides. Timestamps are
relative to the database clock at the first seeding, so the data looks fresh and agrees with the
jobs that compare against now(). The caller owns the transaction: the limit-integrity trigger is
deferred to its commit.

OPEN incidents are given a recent updated_at, but the stale-incident job (DOMAIN.md §7) will still
auto-resolve them 15 minutes after seeding, as it would any quiet incident.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.enums import (
    AutoAction,
    BreachType,
    FailureEvidenceType,
    FailureType,
    ImpactScope,
    IncidentCategory,
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
    SignalType,
    StepStatus,
    ThresholdAction,
    ThresholdMetric,
)

__all__ = ["seed_demo"]

Row = dict[str, Any]

_NAMESPACE = uuid.UUID("5d1f7a52-8a0e-4c61-9d8e-0b7c2f3e9a41")
_TERMINAL_EVENTS = frozenset(
    {
        IncidentEventType.RESOLVED,
        IncidentEventType.MANUALLY_CLOSED,
        IncidentEventType.AUTO_RESOLVED,
    }
)


class _Ids:
    """Deterministic ids for one tenant."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id

    def uuid(self, name: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.tenant_id}:{name}"))

    def hex(self, name: str, length: int) -> str:
        return uuid.uuid5(_NAMESPACE, f"{self.tenant_id}:{name}").hex[:length]


async def _insert(conn: AsyncConnection, table: sa.Table, rows: Sequence[Row]) -> int:
    """Insert rows, skipping conflicts; return how many were new.

    Rows are grouped by their key set because a multi-row VALUES needs the same columns in every
    row, and a column left out must get its server default rather than NULL.
    """
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    inserted = 0
    pk = list(table.primary_key.columns)
    for group in groups.values():
        stmt = insert(table).values(group).on_conflict_do_nothing().returning(*pk)
        inserted += len((await conn.execute(stmt)).all())
    return inserted


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _Builder:
    """Builds the rows of every table; kept separate from the inserts so ids can cross-refer."""

    def __init__(self, tenant_id: str, now: datetime) -> None:
        self.tenant = tenant_id
        self.now = now
        self.ids = _Ids(tenant_id)
        self.rows: dict[str, list[Row]] = {table.name: [] for table in t.metadata.sorted_tables}

    def add(self, table: sa.Table, **values: Any) -> Row:
        row: Row = {"tenant_id": self.tenant, **values}
        self.rows[table.name].append(row)
        return row

    def ago(self, **delta: float) -> datetime:
        return self.now - timedelta(**delta)

    # --- runs -----------------------------------------------------------------------------------

    def run(
        self,
        key: str,
        *,
        status: RunStatus,
        agent: str,
        project: str,
        started_hours_ago: float | None,
        minutes: float = 4.0,
        steps: Sequence[tuple[str, StepStatus]] = (),
        plan_steps: int | None = None,
        error_message: str | None = None,
        cost_usd: str | None = None,
    ) -> str:
        run_id = self.ids.uuid(f"run:{key}")
        started = None if started_hours_ago is None else self.ago(hours=started_hours_ago)
        terminal = status not in (RunStatus.QUEUED, RunStatus.RUNNING)
        completed = started + timedelta(minutes=minutes) if started and terminal else None
        created = started - timedelta(seconds=5) if started else self.ago(minutes=2)
        tokens = 0
        for index, (step_type, step_status) in enumerate(steps):
            step_tokens = 350 + 137 * index
            tokens += step_tokens
            self.add(
                t.run_steps,
                run_id=run_id,
                step_index=index,
                step_type=step_type,
                tokens=step_tokens,
                cost_cents=Decimal(step_tokens) * Decimal("0.0125"),
                duration_ms=800 + 310 * index,
                status=step_status,
                content_hash=_sha256(f"{run_id}:{index}:{step_type}"),
                created_at=(started or created) + timedelta(seconds=20 * (index + 1)),
            )
        self.add(
            t.runs,
            id=run_id,
            agent_id=agent,
            project_id=project,
            status=status,
            error_message=error_message,
            started_at=started,
            completed_at=completed,
            input_tokens=tokens * 3 // 4,
            output_tokens=tokens - tokens * 3 // 4,
            estimated_cost_usd=Decimal(cost_usd) if cost_usd is not None else None,
            incident_count=0,
            plan_step_count=plan_steps if plan_steps is not None else (len(steps) or None),
            completed_step_count=sum(1 for _, s in steps if s is not StepStatus.VIOLATION),
            created_at=created,
            updated_at=completed or started or created,
        )
        return run_id

    # --- incidents ------------------------------------------------------------------------------

    def incident(
        self,
        key: str,
        *,
        title: str,
        severity: IncidentSeverity,
        status: IncidentStatus,
        trigger_type: IncidentTriggerType,
        trigger_value: str | None,
        started_hours_ago: float,
        category: IncidentCategory | None,
        source_type: IncidentSourceType = IncidentSourceType.KILLSWITCH,
        cause_type: IncidentCauseType = IncidentCauseType.SYSTEM,
        events: Sequence[tuple[IncidentEventType, str, Mapping[str, Any]]] = (),
        resolution: ResolutionMethod | None = None,
        resolve_after_hours: float = 2.0,
        ack_after_minutes: float = 12.0,
        id_override: str | None = None,
        **extra: Any,
    ) -> str:
        incident_id = id_override or self.ids.uuid(f"incident:{key}")
        started = self.ago(hours=started_hours_ago)
        row = self.add(
            t.incidents,
            id=incident_id,
            title=title[:255],
            severity=severity,
            status=status,
            trigger_type=trigger_type,
            trigger_value=trigger_value,
            category=category,
            source_type=source_type,
            cause_type=cause_type,
            started_at=started,
            created_at=started,
            **extra,
        )
        timeline: list[tuple[IncidentEventType, str, Mapping[str, Any]]] = [
            (
                IncidentEventType.INCIDENT_CREATED,
                f"Incident created: {title}",
                {"trigger_value": trigger_value},
            ),
            *events,
        ]
        acknowledged_at = None
        if status is not IncidentStatus.OPEN and resolution is not ResolutionMethod.AUTO:
            acknowledged_at = started + timedelta(minutes=ack_after_minutes)
            row.update(acknowledged_at=acknowledged_at, acknowledged_by="oncall@demo")
            timeline.append(
                (
                    IncidentEventType.ACKNOWLEDGED,
                    "Incident acknowledged by oncall@demo",
                    {"note": "Looking into it"},
                )
            )
        if status is IncidentStatus.RESOLVED:
            if resolution is None:
                raise ValueError("a RESOLVED demo incident needs a resolution method")
            ended = started + timedelta(hours=resolve_after_hours)
            resolved_by = {
                ResolutionMethod.AUTO: "system_auto_resolve",
            }.get(resolution, "oncall@demo")
            row.update(
                resolved_at=ended,
                ended_at=ended,
                resolved_by=resolved_by,
                duration_seconds=int((ended - started).total_seconds()),
                resolution_method=resolution,
            )
            if resolution is ResolutionMethod.AUTO:
                timeline.append(
                    (
                        IncidentEventType.AUTO_RESOLVED,
                        "Incident auto-resolved after 900s of inactivity",
                        {"resolved_by": "system", "reason": "inactivity_timeout"},
                    )
                )
            elif resolution is ResolutionMethod.MANUAL_CLOSURE:
                notes = "False positive: upstream provider status page confirmed no outage"
                row.update(resolution_notes=notes)
                timeline.append(
                    (
                        IncidentEventType.MANUALLY_CLOSED,
                        f"Incident manually closed by oncall@demo: {notes}",
                        {"reason": notes},
                    )
                )
            else:
                notes = "Rolled back to the previous prompt version and raised the cap"
                row.update(resolution_notes=notes, resolution_type="CONFIG_CHANGE")
                timeline.append(
                    (
                        IncidentEventType.RESOLVED,
                        f"Incident resolved by oncall@demo ({resolution}): {notes}",
                        {"method": resolution, "notes": notes},
                    )
                )
        # Creation, acknowledgement and resolution happen at their recorded times; the other events
        # are spread between creation and the end of the incident's activity.
        end: datetime = row.get("resolved_at") or (self.now - timedelta(minutes=3))
        span = (end - started).total_seconds()
        timed: list[tuple[datetime, int, IncidentEventType, str, Mapping[str, Any]]] = []
        for index, (event_type, description, data) in enumerate(timeline):
            if index == 0:
                at = started
            elif event_type is IncidentEventType.ACKNOWLEDGED and acknowledged_at is not None:
                at = acknowledged_at
            elif event_type in _TERMINAL_EVENTS:
                at = end
            else:
                at = started + timedelta(seconds=span * index / (len(timeline) + 1))
            timed.append((at, index, event_type, description, data))
        timed.sort(key=lambda item: (item[0], item[1]))
        for at, index, event_type, description, data in timed:
            self.add(
                t.incident_events,
                id=self.ids.uuid(f"incident:{key}:event:{index}"),
                incident_id=incident_id,
                event_type=event_type,
                description=description,
                data=dict(data),
                created_at=at,
            )
        # An OPEN incident looks recently touched, so the stale auto-resolve job leaves it for a
        # while; the others were last updated by their last event.
        row["updated_at"] = (
            self.now - timedelta(minutes=2) if status is IncidentStatus.OPEN else timed[-1][0]
        )
        return incident_id

    # --- limits ---------------------------------------------------------------------------------

    def limit(
        self,
        key: str,
        *,
        name: str,
        category: LimitCategory,
        limit_type: str,
        max_value: str,
        scope: LimitScope = LimitScope.TENANT,
        scope_id: str | None = None,
        created_days_ago: float = 20,
        status: LimitStatus = LimitStatus.ACTIVE,
        **extra: Any,
    ) -> str:
        limit_id = self.ids.uuid(f"limit:{key}")
        created = self.ago(days=created_days_ago)
        self.add(
            t.limits,
            id=limit_id,
            name=name,
            limit_category=category,
            limit_type=limit_type,
            scope=scope,
            scope_id=scope_id,
            max_value=Decimal(max_value),
            status=status,
            created_at=created,
            updated_at=created,
            **extra,
        )
        self.add(
            t.limit_integrity,
            id=self.ids.uuid(f"limit:{key}:integrity"),
            limit_id=limit_id,
            integrity_status=IntegrityStatus.VERIFIED,
            integrity_score=Decimal("1.0000"),
            computed_at=created,
        )
        return limit_id

    def breach(
        self,
        key: str,
        limit_id: str,
        *,
        breach_type: BreachType,
        value: str,
        limit_value: str,
        hours_ago: float,
        run_id: str | None = None,
        incident_id: str | None = None,
        recovered_after_minutes: float | None = None,
    ) -> None:
        at = self.ago(hours=hours_ago)
        self.add(
            t.limit_breaches,
            id=self.ids.uuid(f"breach:{key}"),
            limit_id=limit_id,
            run_id=run_id,
            incident_id=incident_id,
            breach_type=breach_type,
            value_at_breach=Decimal(value),
            limit_value=Decimal(limit_value),
            details={"source": "demo", "observed": value, "limit": limit_value},
            breached_at=at,
            recovered_at=(
                at + timedelta(minutes=recovered_after_minutes)
                if recovered_after_minutes is not None
                else None
            ),
        )


def _build(b: _Builder) -> None:  # noqa: PLR0915 - one linear script of demo content
    ids = b.ids
    s = StepStatus

    # Runs: a mix of outcomes, steps for each.
    r_ok1 = b.run(
        "support-triage-ok",
        status=RunStatus.SUCCEEDED,
        agent="agent-support-triage",
        project="proj-customer-support",
        started_hours_ago=30,
        steps=[("PLAN", s.OK), ("RETRIEVAL", s.OK), ("LLM_CALL", s.OK), ("TOOL_CALL", s.OK)],
        cost_usd="0.184200",
    )
    b.run(
        "invoice-extract-ok",
        status=RunStatus.SUCCEEDED,
        agent="agent-invoice-extractor",
        project="proj-finance-ops",
        started_hours_ago=52,
        steps=[("PLAN", s.OK), ("LLM_CALL", s.WARNING), ("LLM_CALL", s.OK)],
        cost_usd="0.412000",
    )
    r_timeout = b.run(
        "research-timeout",
        status=RunStatus.FAILED,
        agent="agent-research",
        project="proj-market-intel",
        started_hours_ago=6,
        minutes=1.5,
        steps=[("PLAN", s.OK), ("RETRIEVAL", s.OK), ("LLM_CALL", s.WARNING)],
        plan_steps=6,
        error_message="EXECUTION_TIMEOUT: step 3 exceeded 60000ms",
        cost_usd="0.960000",
    )
    r_crash = b.run(
        "codegen-crash",
        status=RunStatus.FAILED,
        agent="agent-codegen",
        project="proj-dev-tools",
        started_hours_ago=9,
        steps=[("PLAN", s.OK), ("TOOL_CALL", s.VIOLATION)],
        plan_steps=5,
        error_message="AGENT_CRASH: worker process exited with signal 9",
        cost_usd="0.071500",
    )
    r_halted = b.run(
        "research-budget-halt",
        status=RunStatus.HALTED,
        agent="agent-research",
        project="proj-market-intel",
        started_hours_ago=14,
        minutes=11,
        steps=[
            ("PLAN", s.OK),
            ("RETRIEVAL", s.OK),
            ("LLM_CALL", s.OK),
            ("LLM_CALL", s.WARNING),
            ("LLM_CALL", s.VIOLATION),
        ],
        plan_steps=8,
        error_message="Hard budget limit: 1250c consumed >= 1200c limit",
        cost_usd="12.500000",
    )
    r_skill = b.run(
        "support-skill-error",
        status=RunStatus.FAILED,
        agent="agent-support-triage",
        project="proj-customer-support",
        started_hours_ago=20,
        steps=[("PLAN", s.OK), ("TOOL_CALL", s.OK), ("TOOL_CALL", s.WARNING)],
        plan_steps=4,
        error_message="SKILL_ERROR: crm.lookup returned 502",
        cost_usd="0.055000",
    )
    b.run(
        "invoice-running",
        status=RunStatus.RUNNING,
        agent="agent-invoice-extractor",
        project="proj-finance-ops",
        started_hours_ago=0.05,
        steps=[("PLAN", s.OK), ("LLM_CALL", s.OK)],
        plan_steps=4,
    )
    b.run(
        "codegen-queued",
        status=RunStatus.QUEUED,
        agent="agent-codegen",
        project="proj-dev-tools",
        started_hours_ago=None,
    )
    b.run(
        "support-cancelled",
        status=RunStatus.CANCELLED,
        agent="agent-support-triage",
        project="proj-customer-support",
        started_hours_ago=75,
        steps=[("PLAN", s.OK)],
        plan_steps=3,
        error_message="CANCELLED by operator",
        cost_usd="0.004000",
    )

    # One recorded LLM failure for the timed-out run (DOMAIN.md §3.15).
    failure_id = ids.uuid("failure:research-timeout")
    b.add(
        t.run_failures,
        id=failure_id,
        run_id=r_timeout,
        failure_type=FailureType.TIMEOUT,
        error_code="EXECUTION_TIMEOUT",
        error_message="step 3 exceeded 60000ms",
        model="gpt-4o-2024-08-06",
        request_id="req_" + ids.hex("failure:req", 20),
        duration_ms=60012,
        metadata={"provider": "openai", "attempt": 1},
        created_at=b.ago(hours=6) + timedelta(minutes=1.5),
    )
    b.add(
        t.failure_evidence,
        id=ids.uuid("failure:research-timeout:evidence"),
        failure_id=failure_id,
        evidence_type=FailureEvidenceType.LLM_FAILURE_CAPTURE,
        evidence_data={"prompt_tokens": 7421, "timeout_ms": 60000, "stream": False},
        created_at=b.ago(hours=6) + timedelta(minutes=1.5),
    )

    # Incidents: run-path ones first (inc_ ids, one per run).
    def run_incident(
        key: str,
        *,
        run_id: str,
        code: str,
        label: str,
        severity: IncidentSeverity,
        category: IncidentCategory,
        hours_ago: float,
        status: IncidentStatus,
        agent: str,
        message: str,
        **extra: Any,
    ) -> str:
        incident_id = "inc_" + ids.hex(f"incident:{key}", 16)
        b.incident(
            key,
            id_override=incident_id,
            title=f"{label}: Run {run_id[:8]}...",
            severity=severity,
            status=status,
            trigger_type=IncidentTriggerType.RUN_FAILURE,
            trigger_value=run_id,
            started_hours_ago=hours_ago,
            category=category,
            source_type=IncidentSourceType.RUN,
            cause_type=IncidentCauseType.LLM_RUN,
            source_run_id=run_id,
            impact_scope=ImpactScope.SINGLE_RUN,
            affected_agent_id=agent,
            affected_count=1,
            error_code=code,
            error_message=message,
            description=f"Run {run_id} failed with error: {code}",
            **extra,
        )
        for row in b.rows["runs"]:
            if row["id"] == run_id:
                row["incident_count"] = 1
        return incident_id

    inc_timeout = run_incident(
        "run-timeout",
        run_id=r_timeout,
        code="EXECUTION_TIMEOUT",
        label="Execution Timeout",
        severity=IncidentSeverity.HIGH,
        category=IncidentCategory.EXECUTION_FAILURE,
        hours_ago=5.9,
        status=IncidentStatus.OPEN,
        agent="agent-research",
        message="EXECUTION_TIMEOUT: step 3 exceeded 60000ms",
        events=[
            (IncidentEventType.CALL_FAILED, "LLM call timed out after 60000ms", {"step": 2}),
            (IncidentEventType.NOTE, "Provider latency p95 at 48s this hour", {}),
        ],
        inflection_step_index=2,
        inflection_timestamp=b.ago(hours=5.95),
    )
    inc_crash = run_incident(
        "run-crash",
        run_id=r_crash,
        code="AGENT_CRASH",
        label="Agent Crash",
        severity=IncidentSeverity.CRITICAL,
        category=IncidentCategory.EXECUTION_FAILURE,
        hours_ago=8.9,
        status=IncidentStatus.ACKNOWLEDGED,
        agent="agent-codegen",
        message="AGENT_CRASH: worker process exited with signal 9",
        events=[
            (IncidentEventType.EVIDENCE_CAPTURED, "Core dump and OOM log attached", {}),
            (IncidentEventType.NOTE, "Memory limit 512Mi is too low for the new toolchain", {}),
        ],
    )
    inc_budget = run_incident(
        "run-budget-halt",
        run_id=r_halted,
        code="BUDGET_EXCEEDED",
        label="Budget Exceeded",
        severity=IncidentSeverity.MEDIUM,
        category=IncidentCategory.BUDGET_EXCEEDED,
        hours_ago=13.8,
        status=IncidentStatus.RESOLVED,
        agent="agent-research",
        message="Hard budget limit: 1250c consumed >= 1200c limit",
        events=[
            (IncidentEventType.THRESHOLD_CROSSED, "Run cost crossed 90% of its cap", {}),
            (IncidentEventType.FREEZE_TRIGGERED, "Run halted by hard budget limit", {}),
        ],
        resolution=ResolutionMethod.MANUAL,
        resolve_after_hours=3,
        cost_impact=Decimal("12.50"),
        inflection_step_index=4,
        inflection_timestamp=b.ago(hours=13.7),
    )
    run_incident(
        "run-skill-error",
        run_id=r_skill,
        code="SKILL_ERROR",
        label="Skill Error",
        severity=IncidentSeverity.HIGH,
        category=IncidentCategory.EXECUTION_FAILURE,
        hours_ago=19.5,
        status=IncidentStatus.RESOLVED,
        agent="agent-support-triage",
        message="SKILL_ERROR: crm.lookup returned 502",
        events=[(IncidentEventType.CALL_FAILED, "crm.lookup returned HTTP 502", {})],
        resolution=ResolutionMethod.ROLLBACK,
        resolve_after_hours=1.5,
    )

    # Aggregated, cost and manual incidents.
    call_ids = [f"call_{ids.hex(f'spike-call:{i}', 12)}" for i in range(57)]
    spike_events: list[tuple[IncidentEventType, str, Mapping[str, Any]]] = [
        (IncidentEventType.CALL_FAILED, f"Call {cid} failed: 429 from provider", {"call": cid})
        for cid in call_ids[:20]
    ]
    spike_events.insert(
        10,
        (
            IncidentEventType.SEVERITY_ESCALATED,
            "Severity escalated from MEDIUM to HIGH",
            {"old_severity": "MEDIUM", "new_severity": "HIGH", "calls_affected": 50},
        ),
    )
    inc_rate = b.incident(
        "rate-limit-storm",
        title="Rate limit triggered: openai/gpt-4o",
        severity=IncidentSeverity.HIGH,
        status=IncidentStatus.ACKNOWLEDGED,
        trigger_type=IncidentTriggerType.RATE_LIMIT,
        trigger_value="openai/gpt-4o",
        started_hours_ago=3,
        category=IncidentCategory.RATE_LIMIT,
        events=spike_events,
        related_call_ids=call_ids,
        calls_affected=len(call_ids),
        auto_action=AutoAction.THROTTLE,
        action_details={"throttle_rps": 5},
        escalated=True,
        escalated_at=b.ago(hours=2.5),
        escalated_to="HIGH",
        impact_scope=ImpactScope.PROJECT,
        affected_count=len(call_ids),
        error_rate=Decimal("0.3120"),
    )
    b.incident(
        "budget-breach-finance",
        title="Budget limit exceeded: proj-finance-ops daily",
        severity=IncidentSeverity.CRITICAL,
        status=IncidentStatus.RESOLVED,
        trigger_type=IncidentTriggerType.BUDGET_BREACH,
        trigger_value="proj-finance-ops daily",
        started_hours_ago=4 * 24,
        category=IncidentCategory.BUDGET_EXCEEDED,
        events=[
            (IncidentEventType.THRESHOLD_CROSSED, "Daily spend at 100% of 250.00 USD", {}),
            (IncidentEventType.FREEZE_TRIGGERED, "New runs frozen for proj-finance-ops", {}),
        ],
        auto_action=AutoAction.FREEZE,
        cost_delta_cents=Decimal("4120.0000"),
        cost_impact=Decimal("41.20"),
        resolution=ResolutionMethod.MANUAL,
        resolve_after_hours=5,
        impact_scope=ImpactScope.PROJECT,
    )
    b.incident(
        "failure-spike-embeddings",
        title="Failure rate spike detected: embeddings-v3",
        severity=IncidentSeverity.HIGH,
        status=IncidentStatus.RESOLVED,
        trigger_type=IncidentTriggerType.FAILURE_SPIKE,
        trigger_value="embeddings-v3",
        started_hours_ago=7 * 24,
        category=IncidentCategory.EXECUTION_FAILURE,
        events=[(IncidentEventType.CALL_FAILED, "Embedding call failed: 500", {})] * 3,
        related_call_ids=[f"call_{ids.hex(f'emb:{i}', 12)}" for i in range(14)],
        calls_affected=14,
        resolution=ResolutionMethod.AUTO,
        resolve_after_hours=0.5,
        error_rate=Decimal("0.1875"),
    )
    b.incident(
        "content-policy-pii",
        title="Content policy violation: PII in model output",
        severity=IncidentSeverity.HIGH,
        status=IncidentStatus.OPEN,
        trigger_type=IncidentTriggerType.CONTENT_POLICY,
        trigger_value="PII in model output",
        started_hours_ago=1.2,
        category=IncidentCategory.POLICY_VIOLATION,
        events=[
            (IncidentEventType.THRESHOLD_CROSSED, "PII detector confidence 0.97 on 3 outputs", {}),
            (IncidentEventType.NOTE, "Output redacted before delivery", {}),
        ],
    )
    b.incident(
        "freeze-codegen",
        title="Traffic stopped: agent-codegen",
        severity=IncidentSeverity.CRITICAL,
        status=IncidentStatus.RESOLVED,
        trigger_type=IncidentTriggerType.FREEZE,
        trigger_value="agent-codegen",
        started_hours_ago=9 * 24,
        category=IncidentCategory.LOOP_DETECTED,
        events=[
            (IncidentEventType.FREEZE_TRIGGERED, "Agent frozen after 40 identical tool calls", {}),
            (IncidentEventType.NOTE, "Loop caused by a retry-on-empty-result prompt", {}),
        ],
        auto_action=AutoAction.FREEZE,
        affected_agent_id="agent-codegen",
        impact_scope=ImpactScope.AGENT,
        resolution=ResolutionMethod.ROLLBACK,
        resolve_after_hours=6,
    )
    b.incident(
        "cost-spike-tenant",
        title="Cost anomaly: TENANT_SPIKE (+$38.40)",
        severity=IncidentSeverity.HIGH,
        status=IncidentStatus.RESOLVED,
        trigger_type=IncidentTriggerType.COST_SPIKE,
        trigger_value="3840",
        started_hours_ago=2 * 24,
        category=IncidentCategory.COST_ANOMALY,
        source_type=IncidentSourceType.COST_ANOMALY,
        events=[(IncidentEventType.NOTE, "Spike traced to a batch re-index job", {})],
        description="Detected TENANT_SPIKE anomaly. Current: $52.10, Expected: $13.70.",
        cost_delta_cents=Decimal("3840.0000"),
        cost_impact=Decimal("38.40"),
        impact_scope=ImpactScope.TENANT,
        resolution=ResolutionMethod.MANUAL_CLOSURE,
        resolve_after_hours=1,
    )
    b.incident(
        "manual-vendor-outage",
        title="Vendor outage reported by support",
        severity=IncidentSeverity.LOW,
        status=IncidentStatus.ACKNOWLEDGED,
        trigger_type=IncidentTriggerType.LLM_FAILURE,
        trigger_value="anthropic status page",
        started_hours_ago=26,
        category=IncidentCategory.MANUAL,
        source_type=IncidentSourceType.MANUAL,
        cause_type=IncidentCauseType.HUMAN,
        events=[(IncidentEventType.NOTE, "Monitoring the vendor status page", {})],
    )

    # A policy violation with its aggregated incident and evidence (DOMAIN.md §3.14).
    violation_id = ids.uuid("violation:research-budget")
    policy_id = "pol-max-cost-per-run"
    rule = "cost_per_run <= 12.00 USD"
    reason = "Run exceeded the per-run cost cap"
    evidence = {"cost_usd": "12.50", "cap_usd": "12.00", "step_index": 4}
    trigger_value = f"run_id={r_halted}|policy_id={policy_id}|rule={rule}|reason={reason}"
    inc_violation = b.incident(
        "policy-violation-research",
        title=f"POLICY_VIOLATION: {trigger_value}",
        severity=IncidentSeverity.MEDIUM,
        status=IncidentStatus.OPEN,
        trigger_type=IncidentTriggerType.POLICY_VIOLATION,
        trigger_value=trigger_value,
        started_hours_ago=13.9,
        category=IncidentCategory.POLICY_VIOLATION,
        source_type=IncidentSourceType.POLICY,
        events=[
            (
                IncidentEventType.EVIDENCE_CAPTURED,
                "Policy violation evidence captured",
                {"violation_id": violation_id, "evidence": evidence, "immutable": True},
            ),
            (IncidentEventType.NOTE, "Cost cap under review with the research lead", {}),
        ],
        related_call_ids=[r_halted],
        calls_affected=1,
    )
    b.add(
        t.policy_violations,
        id=violation_id,
        run_id=r_halted,
        policy_id=policy_id,
        violated_rule=rule,
        severity=IncidentSeverity.HIGH,
        reason=reason,
        evidence=evidence,
        incident_id=inc_violation,
        created_at=b.ago(hours=13.9),
    )
    b.add(
        t.incident_evidence,
        id=ids.uuid("evidence:violation"),
        incident_id=inc_violation,
        evidence_type=IncidentEvidenceType.POLICY_VIOLATION,
        payload=evidence,
        created_at=b.ago(hours=13.9),
    )
    b.add(
        t.incident_evidence,
        id=ids.uuid("evidence:crash-recovery"),
        incident_id=inc_crash,
        evidence_type=IncidentEvidenceType.RECOVERY_ACTION,
        recovery_executed=True,
        payload={
            "scope_id": "scope_" + ids.hex("scope:crash", 24),
            "action": "RETRY",
            "attempt": 1,
            "cost_usd": "0.10",
        },
        created_at=b.ago(hours=8.5),
    )
    b.add(
        t.incident_evidence,
        id=ids.uuid("evidence:rate-recovery"),
        incident_id=inc_rate,
        evidence_type=IncidentEvidenceType.RECOVERY_ACTION,
        recovery_executed=True,
        payload={
            "scope_id": "scope_" + ids.hex("scope:rate", 24),
            "action": "FALLBACK",
            "attempt": 1,
            "cost_usd": "0.05",
        },
        created_at=b.ago(hours=2.4),
    )

    # Limits, each with its integrity row, and their breaches.
    l_daily = b.limit(
        "budget-tenant-daily",
        name="Tenant daily spend",
        category=LimitCategory.BUDGET,
        limit_type="COST_USD",
        max_value="250",
        reset_period=ResetPeriod.DAILY,
        next_reset_at=b.now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1),
        consequence=LimitConsequence.INCIDENT,
        description="Hard cap on the tenant's total LLM spend per UTC day.",
    )
    l_research = b.limit(
        "budget-research-monthly",
        name="Market intel monthly budget",
        category=LimitCategory.BUDGET,
        limit_type="COST_USD",
        max_value="1200",
        scope=LimitScope.PROJECT,
        scope_id="proj-market-intel",
        reset_period=ResetPeriod.MONTHLY,
        consequence=LimitConsequence.ABORT,
    )
    l_tokens = b.limit(
        "budget-support-tokens",
        name="Support agent weekly tokens",
        category=LimitCategory.BUDGET,
        limit_type="TOKENS_TOTAL",
        max_value="25000000",
        scope=LimitScope.AGENT,
        scope_id="agent-support-triage",
        reset_period=ResetPeriod.WEEKLY,
        enforcement=LimitEnforcement.WARN,
        consequence=LimitConsequence.ALERT,
    )
    l_rpm = b.limit(
        "rate-tenant-rpm",
        name="Tenant requests per minute",
        category=LimitCategory.RATE,
        limit_type="REQUESTS_PER_MINUTE",
        max_value="600",
        window_seconds=60,
        enforcement=LimitEnforcement.QUEUE,
    )
    l_openai = b.limit(
        "rate-openai-tpm",
        name="OpenAI tokens per minute",
        category=LimitCategory.RATE,
        limit_type="TOKENS_PER_MINUTE",
        max_value="450000",
        scope=LimitScope.PROVIDER,
        scope_id="openai",
        window_seconds=60,
        enforcement=LimitEnforcement.DEGRADE,
    )
    l_codegen_rate = b.limit(
        "rate-codegen-hourly",
        name="Codegen runs per hour",
        category=LimitCategory.RATE,
        limit_type="REQUESTS_PER_HOUR",
        max_value="120",
        scope=LimitScope.AGENT,
        scope_id="agent-codegen",
        window_seconds=3600,
        enforcement=LimitEnforcement.REJECT,
    )
    b.limit(
        "threshold-global",
        name="Platform run guardrails",
        category=LimitCategory.THRESHOLD,
        limit_type="TOKENS_PER_RUN",
        max_value="8192",
        scope=LimitScope.GLOBAL,
        params={"max_tokens": 8192, "max_execution_time_ms": 120000},
        created_days_ago=60,
    )
    b.limit(
        "threshold-tenant",
        name="Tenant run guardrails",
        category=LimitCategory.THRESHOLD,
        limit_type="TOKENS_PER_RUN",
        max_value="4096",
        params={"max_tokens": 4096},
        measurement_window_seconds=300,
        enforcement=LimitEnforcement.ALERT,
    )
    l_research_latency = b.limit(
        "threshold-research",
        name="Research agent latency and cost",
        category=LimitCategory.THRESHOLD,
        limit_type="LATENCY_MS",
        max_value="90000",
        scope=LimitScope.AGENT,
        scope_id="agent-research",
        params={"max_execution_time_ms": 90000, "max_cost_usd": 2.5, "failure_signal": True},
    )
    b.limit(
        "budget-legacy-disabled",
        name="Legacy pilot budget",
        category=LimitCategory.BUDGET,
        limit_type="COST_USD",
        max_value="50",
        reset_period=ResetPeriod.NONE,
        status=LimitStatus.DISABLED,
        created_days_ago=45,
    )

    b.breach(
        "daily-1",
        l_daily,
        breach_type=BreachType.BREACHED,
        value="262.4100",
        limit_value="250",
        hours_ago=4 * 24,
        recovered_after_minutes=300,
    )
    b.breach(
        "daily-2",
        l_daily,
        breach_type=BreachType.EXHAUSTED,
        value="250.0000",
        limit_value="250",
        hours_ago=27,
    )
    b.breach(
        "research-1",
        l_research,
        breach_type=BreachType.BREACHED,
        value="1250",
        limit_value="1200",
        hours_ago=13.8,
        run_id=r_halted,
        incident_id=inc_budget,
    )
    b.breach(
        "research-2",
        l_research,
        breach_type=BreachType.VIOLATED,
        value="1212",
        limit_value="1200",
        hours_ago=13.85,
        run_id=r_halted,
        incident_id=inc_violation,
    )
    b.breach(
        "tokens-1",
        l_tokens,
        breach_type=BreachType.EXHAUSTED,
        value="25000000",
        limit_value="25000000",
        hours_ago=3 * 24,
        recovered_after_minutes=24 * 60,
    )
    for i, hours in enumerate((2.9, 2.7, 2.6, 2.2)):
        b.breach(
            f"rpm-{i}",
            l_rpm,
            breach_type=BreachType.THROTTLED,
            value=str(610 + 17 * i),
            limit_value="600",
            hours_ago=hours,
            incident_id=inc_rate,
            recovered_after_minutes=1,
        )
    b.breach(
        "openai-1",
        l_openai,
        breach_type=BreachType.THROTTLED,
        value="462000",
        limit_value="450000",
        hours_ago=2.8,
        incident_id=inc_rate,
    )
    b.breach(
        "codegen-1",
        l_codegen_rate,
        breach_type=BreachType.BREACHED,
        value="131",
        limit_value="120",
        hours_ago=9,
        run_id=r_crash,
        incident_id=inc_crash,
    )
    b.breach(
        "timeout-1",
        l_research_latency,
        breach_type=BreachType.VIOLATED,
        value="96500",
        limit_value="90000",
        hours_ago=6,
        run_id=r_timeout,
        incident_id=inc_timeout,
    )

    # Overrides: one live per limit at most (limit_overrides_no_stacking).
    def override(key: str, limit_id: str, status: OverrideStatus, **values: Any) -> None:
        b.add(
            t.limit_overrides,
            id=ids.uuid(f"override:{key}"),
            limit_id=limit_id,
            status=status,
            **values,
        )

    override(
        "daily-active",
        l_daily,
        OverrideStatus.ACTIVE,
        original_value=Decimal("250"),
        override_value=Decimal("400"),
        requested_at=b.ago(hours=2),
        requested_by="finops@demo",
        reason="Quarter-end invoice batch needs extra headroom today",
        starts_at=b.ago(hours=2),
        expires_at=b.ago(hours=2) + timedelta(hours=24),
        approved_at=b.ago(hours=2),
        approved_by="finops@demo",
    )
    override(
        "research-pending",
        l_research,
        OverrideStatus.PENDING,
        original_value=Decimal("1200"),
        override_value=Decimal("1500"),
        requested_at=b.ago(minutes=40),
        requested_by="research-lead@demo",
        reason="Competitor launch analysis needs a larger monthly budget",
        starts_at=b.now + timedelta(hours=6),
        expires_at=b.now + timedelta(hours=6 + 72),
    )
    override(
        "daily-expired",
        l_daily,
        OverrideStatus.EXPIRED,
        original_value=Decimal("250"),
        override_value=Decimal("300"),
        requested_at=b.ago(days=5),
        requested_by="finops@demo",
        reason="Month-start reconciliation run needs extra budget",
        starts_at=b.ago(days=5),
        expires_at=b.ago(days=5) + timedelta(hours=12),
        approved_at=b.ago(days=5),
        approved_by="finops@demo",
    )
    override(
        "rpm-rejected",
        l_rpm,
        OverrideStatus.REJECTED,
        original_value=Decimal("600"),
        override_value=Decimal("5000"),
        requested_at=b.ago(days=2),
        requested_by="dev@demo",
        reason="Load test against production traffic limits",
        starts_at=b.ago(days=2),
        expires_at=b.ago(days=2) + timedelta(hours=4),
        approved_at=b.ago(days=2) + timedelta(minutes=15),
        approved_by="admin@demo",
        rejection_reason="Load tests must run in staging",
    )

    # Threshold signals recorded by INGEST.
    for i, (kind, metric, current, threshold, action) in enumerate(
        (
            (SignalType.NEAR, ThresholdMetric.COST, 10.8, 12.0, None),
            (SignalType.BREACH, ThresholdMetric.COST, 12.5, 12.0, ThresholdAction.STOP),
            (SignalType.NEAR, ThresholdMetric.TOKEN_USAGE, 3700.0, 4096.0, None),
        )
    ):
        b.add(
            t.threshold_signals,
            signal_id="SIG-" + ids.hex(f"signal:{i}", 12),
            run_id=r_halted if metric is ThresholdMetric.COST else r_ok1,
            policy_id=policy_id if metric is ThresholdMetric.COST else "pol-token-guard",
            step_index=3 + i,
            signal_type=kind,
            metric=metric,
            current_value=current,
            threshold_value=threshold,
            percentage=round(current / threshold * 100, 2),
            action_taken=action,
            timestamp=b.ago(hours=13.9 - i * 0.05)
            if metric is ThresholdMetric.COST
            else b.ago(hours=29.9),
            acknowledged=kind is SignalType.BREACH,
            acknowledged_by="oncall@demo" if kind is SignalType.BREACH else None,
            acknowledged_at=b.ago(hours=13) if kind is SignalType.BREACH else None,
        )

    # Lessons learned, one converted into the demo's policy proposal.
    proposal_id = ids.uuid("proposal:timeout")
    lesson_timeout = ids.uuid("lesson:timeout")
    timeout_title = "Failure: EXECUTION_TIMEOUT"
    b.add(
        t.policy_proposals,
        id=proposal_id,
        title=f"Policy from Lesson: {timeout_title}",
        status=ProposalStatus.DRAFT,
        source_type=ProposalSourceType.LESSON,
        source_id=lesson_timeout,
        created_by="oncall@demo",
        created_at=b.ago(hours=4),
    )
    b.add(
        t.policy_proposals,
        id=ids.uuid("proposal:crash"),
        title=f"Auto: Crash Recovery Policy ({inc_crash[:12]})",
        status=ProposalStatus.DRAFT,
        source_type=ProposalSourceType.INCIDENT,
        source_id=inc_crash,
        created_by="system",
        created_at=b.ago(hours=8.9),
    )

    def lesson(key: str, lesson_id: str | None = None, **values: Any) -> None:
        b.add(t.lessons_learned, id=lesson_id or ids.uuid(f"lesson:{key}"), **values)

    blocking = "Consider creating a blocking policy to prevent similar failures."
    warning = "Consider creating a warning policy to flag similar patterns."
    lesson(
        "timeout",
        lesson_timeout,
        lesson_type=LessonType.FAILURE,
        severity=LessonSeverity.HIGH,
        source_event_id=inc_timeout,
        source_event_type=LessonSourceType.INCIDENT,
        source_run_id=r_timeout,
        title=timeout_title,
        description="Research runs time out on long retrieval chains.",
        proposed_action=f"{blocking} Error code: EXECUTION_TIMEOUT.",
        detected_pattern={"error_code": "EXECUTION_TIMEOUT", "severity": "HIGH"},
        status=LessonStatus.CONVERTED_TO_DRAFT,
        draft_proposal_id=proposal_id,
        converted_at=b.ago(hours=4),
        created_at=b.ago(hours=5.8),
    )
    lesson(
        "crash",
        lesson_type=LessonType.FAILURE,
        severity=LessonSeverity.CRITICAL,
        source_event_id=inc_crash,
        source_event_type=LessonSourceType.INCIDENT,
        source_run_id=r_crash,
        title="Failure: AGENT_CRASH",
        description="Codegen worker killed by the OOM killer mid-run.",
        proposed_action=f"{blocking} Error code: AGENT_CRASH.",
        detected_pattern={"error_code": "AGENT_CRASH", "severity": "CRITICAL"},
        status=LessonStatus.PENDING,
        created_at=b.ago(hours=8.8),
    )
    lesson(
        "skill",
        lesson_type=LessonType.FAILURE,
        severity=LessonSeverity.MEDIUM,
        source_event_id=r_skill,
        source_event_type=LessonSourceType.RUN,
        source_run_id=r_skill,
        title="Failure: SKILL_ERROR",
        description="CRM lookups fail when the CRM gateway is degraded.",
        proposed_action=f"{warning} Error code: SKILL_ERROR.",
        detected_pattern={"error_code": "SKILL_ERROR", "severity": "MEDIUM"},
        status=LessonStatus.DEFERRED,
        deferred_until=b.now + timedelta(days=3),
        created_at=b.ago(hours=19),
    )
    lesson(
        "near-cost",
        lesson_type=LessonType.NEAR_THRESHOLD,
        severity=None,
        source_event_id=r_halted,
        source_event_type=LessonSourceType.RUN,
        source_run_id=r_halted,
        title="Near-Threshold: COST at 90.0%",
        description="Run cost reached 90% of its cap before the hard stop.",
        proposed_action=(
            "Consider creating a warning policy for COST at 81% threshold to provide earlier "
            "alerts."
        ),
        detected_pattern={
            "threshold_type": "COST",
            "threshold_band": "90-95",
            "utilization_percent": 90.0,
            "current_value": 10.8,
            "threshold_value": 12.0,
        },
        status=LessonStatus.PENDING,
        created_at=b.ago(hours=13.9),
    )
    lesson(
        "near-tokens",
        lesson_type=LessonType.NEAR_THRESHOLD,
        severity=None,
        source_event_id=r_ok1,
        source_event_type=LessonSourceType.RUN,
        source_run_id=r_ok1,
        title="Near-Threshold: TOKEN_USAGE at 90.3%",
        description="Support triage runs use most of the per-run token budget.",
        proposed_action=(
            "Consider creating a warning policy for TOKEN_USAGE at 81% threshold to provide "
            "earlier alerts."
        ),
        detected_pattern={
            "threshold_type": "TOKEN_USAGE",
            "threshold_band": "90-95",
            "utilization_percent": 90.3,
            "current_value": 3700,
            "threshold_value": 4096,
        },
        status=LessonStatus.DISMISSED,
        dismissed_at=b.ago(hours=20),
        dismissed_by="oncall@demo",
        dismissed_reason="Expected for long support threads",
        created_at=b.ago(hours=29.8),
    )
    lesson(
        "success",
        lesson_type=LessonType.CRITICAL_SUCCESS,
        severity=LessonSeverity.NONE,
        source_event_id=r_ok1,
        source_event_type=LessonSourceType.RUN,
        source_run_id=r_ok1,
        title="Critical Success: FIRST_CONTACT_RESOLUTION",
        description="Triage resolved a P1 ticket without human handoff.",
        detected_pattern={"success_type": "FIRST_CONTACT_RESOLUTION"},
        status=LessonStatus.PENDING,
        created_at=b.ago(hours=29.5),
    )

    # The default circuit breaker, healthy.
    b.add(
        t.circuit_breakers,
        name="costsim_v2",
        disabled=False,
        consecutive_failures=0,
        created_at=b.ago(days=30),
        updated_at=b.ago(days=1),
    )


async def seed_demo(conn: AsyncConnection, tenant_id: str) -> dict[str, int]:
    """Load the demo data set for `tenant_id`; return rows inserted per table (all 0 when re-run).

    Runs in the caller's transaction and does not commit.
    """
    now: datetime = (await conn.execute(sa.select(sa.func.now()))).scalar_one()
    builder = _Builder(tenant_id, now)
    _build(builder)
    counts: dict[str, int] = {}
    for table in t.metadata.sorted_tables:  # parents before children
        rows = builder.rows[table.name]
        if rows:
            counts[table.name] = await _insert(conn, table, rows)
    return counts
