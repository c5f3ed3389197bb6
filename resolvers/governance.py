"""Governance paths into incidents (DOMAIN.md §3.12, §3.14, §3.15).

- `create_incident_from_cost_anomaly`: a mandatory governance write. Input is validated first;
  any failure after that rolls the whole mutation back and answers GOVERNANCE_ERROR.
- `record_policy_violation`: idempotent per (tenant, run, policy); the incident comes from the
  aggregator, the evidence is an event plus an incident_evidence row.
- `record_llm_failure`: failure row, immutable evidence and the run marked FAILED, together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from drivers import errors as db_errors
from drivers import failures as fdb
from drivers import incidents as idb
from drivers import runs as rdb
from drivers import violations as vdb
from drivers.mapping import QUERY_INCIDENT, QUERY_RUN
from drivers.records import IncidentRecord, PolicyViolationRecord, RunFailureRecord
from resolvers.aggregation import Signal, aggregate, notify_outcome
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, GatewayError, GovernanceError
from resolvers.metrics import GOVERNANCE_EVENTS
from resolvers.references import ensure_found
from resolvers.unit_of_work import UnitOfWork, as_json, unit_of_work
from resolvers.validation import check_length

__all__ = [
    "CostAnomaly",
    "CostAnomalyOutcome",
    "LlmFailureInput",
    "TruthCheck",
    "ViolationInput",
    "ViolationOutcome",
    "create_incident_from_cost_anomaly",
    "record_llm_failure",
    "record_policy_violation",
]

MAX_JSON_BYTES = 65_536
# numeric(10,4) cost_delta_cents: overages must stay below a million cents.
MAX_OVERAGE_CENTS = Decimal(1_000_000)

_ANOMALY_TRIGGERS = {
    "BUDGET_EXCEEDED": "BUDGET_BREACH",
    "USER_SPIKE": "COST_SPIKE",
    "TENANT_SPIKE": "COST_SPIKE",
    "ABSOLUTE_SPIKE": "COST_SPIKE",
    "DRIFT": "COST_DRIFT",
    "SUSTAINED_DRIFT": "COST_DRIFT",
    "BUDGET_WARNING": "BUDGET_WARNING",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _check_object(field: str, value: Any, *, required: bool = False) -> None:
    if value is None:
        if required:
            raise BadUserInput(f"{field} is required", field=field)
        return
    if not isinstance(value, dict):
        raise BadUserInput(f"{field} must be a JSON object", field=field)
    if len(orjson.dumps(value)) > MAX_JSON_BYTES:
        raise BadUserInput(f"{field} must be at most {MAX_JSON_BYTES} bytes", field=field)


def _check_required(field: str, value: str, maximum: int) -> None:
    if not value.strip():
        raise BadUserInput(f"{field} must not be blank", field=field)
    check_length(field, value, maximum, minimum=1)


@asynccontextmanager
async def _governance_write(domain: str, operation: str, entity_id: str) -> AsyncIterator[None]:
    """Turn any failure of a mandatory write into GOVERNANCE_ERROR (the UoW rolls back)."""
    try:
        yield
    except (GatewayError, db_errors.Unavailable):
        raise  # typed errors keep their code; an outage stays SERVICE_UNAVAILABLE (§5)
    except Exception as exc:
        raise GovernanceError(
            f"the mandatory governance write of {operation} failed; nothing was recorded",
            domain=domain,
            operation=operation,
            entityId=entity_id,
        ) from exc


# --- §3.12 cost anomaly -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CostAnomaly:
    anomaly_id: str
    anomaly_type: str
    severity: str
    current_value_cents: Decimal
    expected_value_cents: Decimal
    entity_type: str | None = None
    entity_id: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CostAnomalyOutcome:
    created: bool
    reason: str | None
    incident: IncidentRecord | None


def _check_anomaly(a: CostAnomaly) -> None:
    _check_required("anomalyId", a.anomaly_id, 128)
    _check_required("anomalyType", a.anomaly_type, 64)
    for field, value in (
        ("currentValueCents", a.current_value_cents),
        ("expectedValueCents", a.expected_value_cents),
    ):
        if not Decimal(0) <= value < MAX_OVERAGE_CENTS:
            raise BadUserInput(f"{field} must be at least 0 and below 1000000", field=field)
    check_length("entityId", a.entity_id, 256)
    check_length("description", a.description, 10_000)


def _money(cents: Decimal) -> str:
    return f"{cents / 100:.2f}"


def anomaly_incident_values(a: CostAnomaly, now: datetime) -> dict[str, Any]:
    """The incident row a HIGH/CRITICAL cost anomaly becomes (§3.12)."""
    overage = a.current_value_cents - a.expected_value_cents
    description = a.description or (
        f"Detected {a.anomaly_type} anomaly. Current: ${_money(a.current_value_cents)}, "
        f"Expected: ${_money(a.expected_value_cents)}."
        + (f" Entity: {a.entity_type}/{a.entity_id}" if a.entity_type else "")
    )
    return {
        "title": f"Cost anomaly: {a.anomaly_type} (+${_money(overage)})"[:255],
        "severity": a.severity,
        "status": "OPEN",
        "trigger_type": _ANOMALY_TRIGGERS.get(a.anomaly_type, "COST_ANOMALY"),
        "trigger_value": str(overage),
        "category": "COST_ANOMALY",
        "source_type": "COST_ANOMALY",
        "cause_type": "SYSTEM",
        "cost_delta_cents": overage,
        "cost_impact": (overage / 100).quantize(Decimal("0.01")),
        "description": description,
        "impact_scope": a.entity_type or "TENANT",
        "affected_agent_id": a.entity_id if a.entity_type == "AGENT" else None,
        "affected_count": 1,
        "started_at": now,
        "created_at": now,
        "updated_at": now,
    }


async def create_incident_from_cost_anomaly(ctx: Context, a: CostAnomaly) -> CostAnomalyOutcome:
    """Open an incident for a HIGH/CRITICAL cost anomaly; lower severities only get audited."""
    _check_anomaly(a)
    operation = "createIncidentFromCostAnomaly"
    async with unit_of_work(ctx, operation) as uow:
        if a.severity not in ("HIGH", "CRITICAL"):
            reason = f"severity {a.severity} below HIGH: no incident recorded"
            uow.audit(
                "cost_anomalies",
                a.anomaly_id,
                before=None,
                after={"anomaly_id": a.anomaly_id, "created": False, "reason": reason},
            )
            return CostAnomalyOutcome(created=False, reason=reason, incident=None)
        async with _governance_write("Analytics", operation, a.anomaly_id):
            now = _now()
            incident = await idb.insert_incident(
                uow.conn, tenant_id=uow.tenant_id, values=anomaly_incident_values(a, now)
            )
            event = await idb.insert_event(
                uow.conn,
                tenant_id=uow.tenant_id,
                incident_id=incident.id,
                event_type="INCIDENT_CREATED",
                description=f"Incident created: {incident.title}",
                data={"anomaly_id": a.anomaly_id, "anomaly_type": a.anomaly_type},
                now=now,
            )
        uow.audit("incidents", incident.id, before=None, after=as_json(incident))
        uow.notify("INCIDENT_CREATED", incident.id)
        uow.notify("INCIDENT_EVENT_ADDED", event.id)
    GOVERNANCE_EVENTS.labels(domain="Analytics", source="cost_anomaly").inc()
    return CostAnomalyOutcome(created=True, reason=None, incident=incident)


# --- §3.14 policy violation -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ViolationInput:
    run_id: str
    policy_id: str
    violated_rule: str
    policy_type: str | None = None
    severity: str = "MEDIUM"
    reason: str | None = None
    evidence: Any = None  # a JSON object once checked


@dataclass(frozen=True, slots=True, kw_only=True)
class TruthCheck:
    violation_persisted: bool  # AC-1
    incident_exists: bool  # AC-2
    incident_severity: str | None
    evidence_exists: bool  # AC-3
    single_incident: bool  # AC-7

    @property
    def passed(self) -> bool:
        return (
            self.violation_persisted
            and self.incident_exists
            and self.evidence_exists
            and self.single_incident
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ViolationOutcome:
    violation: PolicyViolationRecord
    created: bool
    overflow: bool
    truth_check: TruthCheck


def _check_violation(v: ViolationInput, *, verification_mode: bool) -> None:
    if verification_mode and not v.evidence:
        raise BadUserInput("evidence is required in verification mode", field="evidence")
    _check_required("runId", v.run_id, 128)
    _check_required("policyId", v.policy_id, 128)
    _check_required("violatedRule", v.violated_rule, 500)
    check_length("policyType", v.policy_type, 64)
    check_length("reason", v.reason, 10_000)
    _check_object("evidence", v.evidence)


def _snapshot(evidence: dict[str, Any] | None) -> dict[str, Any]:
    """First 5 keys of the evidence; strings cut to 100 chars, other values as JSON text."""
    snap: dict[str, Any] = {}
    for key, value in list((evidence or {}).items())[:5]:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        snap[key] = text[:100]
    return snap


def violation_trigger_value(v: ViolationInput) -> str:
    """The structured trigger_value of a policy-violation incident (§3.14)."""
    return (
        f"run_id={v.run_id}|policy_id={v.policy_id}|rule={v.violated_rule}"
        f"|reason={(v.reason or '')[:100]}"
    )


async def _truth_check(uow: UnitOfWork, violation: PolicyViolationRecord) -> TruthCheck:
    incident = None
    evidence = 0
    if violation.incident_id is not None:
        incident = await idb.fetch_incident_for_update(
            uow.conn, tenant_id=uow.tenant_id, incident_id=violation.incident_id
        )
        evidence = await vdb.count_incident_evidence(
            uow.conn,
            tenant_id=uow.tenant_id,
            incident_id=violation.incident_id,
            evidence_type="POLICY_VIOLATION",
        )
    return TruthCheck(
        violation_persisted=True,
        incident_exists=incident is not None,
        incident_severity=None if incident is None else incident.severity,
        evidence_exists=evidence > 0,
        # One incident_id column: a violation can never point at two incidents.
        single_incident=True,
    )


async def record_policy_violation(ctx: Context, v: ViolationInput) -> ViolationOutcome:
    """Record a violation once, aggregate its incident and capture its evidence (§3.14)."""
    _check_violation(v, verification_mode=ctx.verification_mode)
    async with unit_of_work(ctx, "recordPolicyViolation") as uow:
        await ensure_found(
            uow.conn, "Run", tenant_id=uow.tenant_id, entity_id=v.run_id, field="runId"
        )
        now = _now()
        inserted = await vdb.insert_violation(
            uow.conn,
            tenant_id=uow.tenant_id,
            values={
                "run_id": v.run_id,
                "policy_id": v.policy_id,
                "violated_rule": v.violated_rule,
                "severity": v.severity,
                "reason": v.reason,
                "evidence": v.evidence,
                "created_at": now,
            },
        )
        if inserted is None:  # already recorded (maybe by a concurrent request): no writes
            existing = await vdb.fetch_violation(
                uow.conn, tenant_id=uow.tenant_id, run_id=v.run_id, policy_id=v.policy_id
            )
            if existing is None:
                raise RuntimeError("a conflicting violation must be visible after the conflict")
            uow.audit(
                "policy_violations", existing.id, before=as_json(existing), after=as_json(existing)
            )
            return ViolationOutcome(
                violation=existing,
                created=False,
                overflow=False,
                truth_check=await _truth_check(uow, existing),
            )
        outcome = await aggregate(
            uow,
            Signal(
                trigger_type="POLICY_VIOLATION",
                trigger_value=violation_trigger_value(v),
                call_id=v.run_id,
                metadata={
                    "violation_id": inserted.id,
                    "policy_type": v.policy_type,
                    "violated_rule": v.violated_rule,
                    "severity": v.severity,
                    "evidence_snapshot": _snapshot(v.evidence),
                },
                source_type="POLICY",
                category="POLICY_VIOLATION",
            ),
            now=now,
        )
        incident_id = outcome.incident.id
        violation = await vdb.set_violation_incident(
            uow.conn, tenant_id=uow.tenant_id, violation_id=inserted.id, incident_id=incident_id
        )
        event = await idb.insert_event(
            uow.conn,
            tenant_id=uow.tenant_id,
            incident_id=incident_id,
            event_type="EVIDENCE_CAPTURED",
            description=f"Policy violation evidence captured: {v.policy_id} ({v.violated_rule})",
            data={"violation_id": violation.id, "evidence": v.evidence, "immutable": True},
            now=now,
        )
        await idb.insert_evidence(
            uow.conn,
            tenant_id=uow.tenant_id,
            incident_id=incident_id,
            evidence_type="POLICY_VIOLATION",
            payload=v.evidence,
            now=now,
        )
        check = await _truth_check(uow, violation)
        uow.audit("policy_violations", violation.id, before=None, after=as_json(violation))
        notify_outcome(uow, outcome)
        uow.notify("INCIDENT_EVENT_ADDED", event.id)
    ctx.loaders.one(QUERY_INCIDENT).clear(incident_id)
    return ViolationOutcome(
        violation=violation, created=True, overflow=outcome.overflow, truth_check=check
    )


# --- §3.15 LLM failure ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LlmFailureInput:
    run_id: str
    failure_type: str
    evidence: Any  # a JSON object once checked
    error_code: str | None = None
    error_message: str | None = None
    model: str | None = None
    request_id: str | None = None
    duration_ms: int | None = None
    metadata: Any = None


def _check_failure(f: LlmFailureInput) -> None:
    _check_required("runId", f.run_id, 128)
    check_length("errorCode", f.error_code, 64)
    check_length("errorMessage", f.error_message, 10_000)
    check_length("model", f.model, 64)
    check_length("requestId", f.request_id, 64)
    if f.duration_ms is not None and f.duration_ms < 0:
        raise BadUserInput("durationMs must not be negative", field="durationMs")
    _check_object("metadata", f.metadata)
    _check_object("evidence", f.evidence, required=True)


def run_error_message(f: LlmFailureInput) -> str:
    """`<code>: <message>`; the failure type stands in for a missing code."""
    code = f.error_code or f.failure_type
    return f"{code}: {f.error_message}" if f.error_message else code


async def record_llm_failure(ctx: Context, f: LlmFailureInput) -> RunFailureRecord:
    """Record an LLM failure with its immutable evidence and mark the run FAILED (§3.15)."""
    _check_failure(f)
    async with unit_of_work(ctx, "recordLlmFailure") as uow:
        now = _now()
        run_before = await rdb.fetch_run_for_update(
            uow.conn, tenant_id=uow.tenant_id, run_id=f.run_id
        )
        if ctx.verification_mode and await fdb.count_contaminating_incidents(
            uow.conn, tenant_id=uow.tenant_id, run_id=f.run_id
        ):
            raise Conflict(
                "an incident of another trigger type already names this run",
                reason="FAILURE_CONTAMINATION_VIOLATION",
            )
        failure = await fdb.insert_failure(
            uow.conn,
            tenant_id=uow.tenant_id,
            values={
                "run_id": f.run_id,
                "failure_type": f.failure_type,
                "error_code": f.error_code,
                "error_message": f.error_message,
                "model": f.model,
                "request_id": f.request_id,
                "duration_ms": f.duration_ms,
                "metadata": f.metadata,
            },
            now=now,
        )
        evidence = await fdb.insert_failure_evidence(
            uow.conn,
            tenant_id=uow.tenant_id,
            failure_id=failure.id,
            evidence_type="LLM_FAILURE_CAPTURE",
            data=f.evidence,
            now=now,
        )
        run_after = await rdb.set_run_failed(
            uow.conn,
            tenant_id=uow.tenant_id,
            run_id=f.run_id,
            error_message=run_error_message(f),
            now=now,
        )
        uow.audit(
            "run_failures",
            failure.id,
            before={"run": as_json(run_before)},
            after={
                "failure": as_json(failure),
                "evidence": as_json(evidence),
                "run": as_json(run_after),
            },
        )
    ctx.loaders.one(QUERY_RUN).clear(f.run_id).prime(f.run_id, run_after)
    return failure
