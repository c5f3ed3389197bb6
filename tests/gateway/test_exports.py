"""exportIncidentBundle over HTTP (DOMAIN.md §3.21): every field of every kind, hash, audit."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.factories_lessons import run_row, step_row, violation_row
from tests.gateway.test_incident_mutations import _failing_audit_inserts
from tests.helpers import error_codes, gql

EXPORT = """mutation($id: ID!, $kind: BundleKind!, $reason: String, $for: String, $notes: String,
                      $start: DateTime, $end: DateTime) {
  exportIncidentBundle(incidentId: $id, kind: $kind, exportReason: $reason, preparedFor: $for,
                       auditorNotes: $notes, compliancePeriodStart: $start,
                       compliancePeriodEnd: $end) {
    id kind incidentId contentHash createdAt document
  } }"""
CREATED = datetime(2026, 11, 20, 10, 2, 6, tzinfo=UTC)


def client_hash(document: dict[str, Any]) -> str:
    """What a client does to verify a bundle (docs/decisions.md "Export bundles")."""
    covered = {k: document[k] for k in document["content_hash_fields"]}
    raw = json.dumps(covered, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


async def _seed(
    engine,
    *,
    severity: str = "HIGH",
    inflection: int | None = None,
    with_run: bool = True,
    with_violation: bool = True,
) -> dict[str, Any]:
    run = run_row()
    inc = incident_row(
        title="Spend cap exceeded",
        severity=severity,
        created_at=CREATED,
        inflection_step_index=inflection,
        affected_agent_id="agent-inc",
        source_run_id=run["id"] if with_run else None,
    )
    if with_run:
        await insert_rows(engine, t.runs, [run])
        await insert_rows(
            engine,
            t.run_steps,
            [
                step_row(run["id"], 0),
                step_row(run["id"], 1, status="VIOLATION"),
                step_row(run["id"], 2, status="VIOLATION", content_hash=None),
            ],
        )
    await insert_rows(engine, t.incidents, [inc])
    if with_violation and with_run:
        await insert_rows(
            engine,
            t.policy_violations,
            [
                violation_row(run["id"], inc["id"], created_at=CREATED),
                violation_row(
                    run["id"], inc["id"], policy_id="pol-later", created_at=datetime.now(UTC)
                ),
            ],
        )
    return {"incident": inc, "run": run}


async def _export(client, incident_id: str, kind: str, **extra: Any) -> dict[str, Any]:
    body = await gql(
        client, EXPORT, {"id": incident_id, "kind": kind, **extra}, role="OPERATOR", sub="olga"
    )
    assert "errors" not in body, body
    bundle: dict[str, Any] = body["data"]["exportIncidentBundle"]
    return bundle


async def _audits(engine) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(select(t.audit_log)))


EXPECTED_STEPS = [
    {
        "index": 0,
        "timestamp": "2026-11-20T10:00:00.000000+00:00",
        "step_type": "LLM_CALL",
        "tokens": 100,
        "cost_cents": "1.2500",
        "duration_ms": 250,
        "status": "OK",
        "content_hash": "0" * 64,
        "is_inflection": False,
    },
    {
        "index": 1,
        "timestamp": "2026-11-20T10:00:01.000000+00:00",
        "step_type": "LLM_CALL",
        "tokens": 200,
        "cost_cents": "2.5000",
        "duration_ms": 500,
        "status": "VIOLATION",
        "content_hash": "0" * 63 + "1",
        "is_inflection": True,
    },
    {
        "index": 2,
        "timestamp": "2026-11-20T10:00:02.000000+00:00",
        "step_type": "LLM_CALL",
        "tokens": 300,
        "cost_cents": "3.7500",
        "duration_ms": 750,
        "status": "VIOLATION",
        "content_hash": None,
        "is_inflection": False,
    },
]


async def test_evidence_bundle_field_by_field(client, engine):
    seeded = await _seed(engine)
    inc, run = seeded["incident"], seeded["run"]
    bundle = await _export(client, inc["id"], "EVIDENCE", reason="legal hold")
    doc = bundle["document"]
    assert re.fullmatch(r"EVD-[0-9a-f]{12}", bundle["id"])
    assert (bundle["kind"], bundle["incidentId"]) == ("EVIDENCE", inc["id"])
    assert doc["created_at"] == datetime.fromisoformat(bundle["createdAt"]).isoformat(
        timespec="microseconds"
    )
    assert doc == {
        "bundle_id": bundle["id"],
        "bundle_type": "EVIDENCE",
        "incident_id": inc["id"],
        "incident_title": "Spend cap exceeded",
        "incident_severity": "HIGH",
        "run_id": run["id"],
        "trace_id": run["id"],
        "agent_id": "agent-7",
        "run_started_at": "2026-11-20T10:00:00.000000+00:00",
        "run_completed_at": "2026-11-20T10:02:05.500000+00:00",
        "termination_reason": "Policy violation: max spend per step",
        "steps": EXPECTED_STEPS,
        "total_steps": 3,
        "total_tokens": 600,
        "total_cost_cents": "7.5000",
        "total_duration_ms": 1500,
        "violation_step_index": 1,
        "policy_context": {
            "policy_snapshot_id": "N/A",
            "active_policies": [],
            "violated_policy_id": "pol-spend-cap",
            "violated_rule": "max_step_cost",
        },
        "exported_by": "olga",
        "export_reason": "legal hold",
        "created_at": doc["created_at"],
        "content_hash_fields": ["created_at", "incident_id", "run_id", "steps", "trace_id"],
        "content_hash": bundle["contentHash"],
    }
    # a client recomputes the hash from the document alone
    assert re.fullmatch(r"[0-9a-f]{64}", bundle["contentHash"])
    assert client_hash(doc) == bundle["contentHash"]
    # one audit row, on the incident
    [audit] = await _audits(engine)
    assert (audit.operation, audit.entity_type, audit.entity_id, audit.actor) == (
        "exportIncidentBundle",
        "incidents",
        inc["id"],
        "olga",
    )
    assert audit.before is None
    assert audit.after == {
        "bundle_id": bundle["id"],
        "kind": "EVIDENCE",
        "incident_id": inc["id"],
        "content_hash": bundle["contentHash"],
    }


async def test_incident_inflection_step_wins_over_the_first_violation_step(client, engine):
    seeded = await _seed(engine, inflection=2)
    doc = (await _export(client, seeded["incident"]["id"], "EVIDENCE"))["document"]
    assert doc["violation_step_index"] == 2
    assert [s["is_inflection"] for s in doc["steps"]] == [False, False, True]
    assert doc["export_reason"] is None


async def test_evidence_without_a_run(client, engine):
    seeded = await _seed(engine, with_run=False)
    bundle = await _export(client, seeded["incident"]["id"], "EVIDENCE")
    doc = bundle["document"]
    assert {
        k: doc[k]
        for k in (
            "run_id",
            "trace_id",
            "agent_id",
            "run_started_at",
            "run_completed_at",
            "termination_reason",
            "steps",
            "total_steps",
            "total_tokens",
            "total_cost_cents",
            "total_duration_ms",
            "violation_step_index",
            "policy_context",
        )
    } == {
        "run_id": "N/A",
        "trace_id": "N/A",
        "agent_id": "agent-inc",
        "run_started_at": None,
        "run_completed_at": None,
        "termination_reason": None,
        "steps": [],
        "total_steps": 0,
        "total_tokens": 0,
        "total_cost_cents": "0.0000",
        "total_duration_ms": 0,
        "violation_step_index": None,
        "policy_context": {
            "policy_snapshot_id": "N/A",
            "active_policies": [],
            "violated_policy_id": None,
            "violated_rule": None,
        },
    }
    assert client_hash(doc) == bundle["contentHash"]


async def test_another_tenants_run_is_not_read(client, engine):
    theirs = run_row("t2")
    await insert_rows(engine, t.runs, [theirs])
    await insert_rows(engine, t.run_steps, [step_row(theirs["id"], 0, "t2")])
    inc = incident_row(source_run_id=theirs["id"])
    await insert_rows(engine, t.incidents, [inc])
    doc = (await _export(client, inc["id"], "EVIDENCE"))["document"]
    assert (doc["run_id"], doc["steps"], doc["termination_reason"]) == ("N/A", [], None)


async def test_soc2_bundle(client, engine):
    seeded = await _seed(engine)
    inc = seeded["incident"]
    bundle = await _export(client, inc["id"], "SOC2", reason="ignored for SOC2")
    doc = bundle["document"]
    assert re.fullmatch(r"SOC2-[0-9a-f]{12}", bundle["id"])
    assert doc["bundle_id"] == bundle["id"]
    assert doc["bundle_type"] == "SOC2"
    assert doc["export_reason"] == "SOC2 compliance export"
    assert doc["steps"] == EXPECTED_STEPS
    assert doc["control_mappings"] == [
        {
            "control_id": "CC7.2",
            "control_name": "Incident Response",
            "compliance_status": "DEMONSTRATED",
        },
        {
            "control_id": "CC7.3",
            "control_name": "Incident Management",
            "compliance_status": "DEMONSTRATED",
        },
        {
            "control_id": "CC7.4",
            "control_name": "Analysis and Remediation",
            "compliance_status": "DEMONSTRATED",
        },
    ]
    assert doc["criteria_covered"] == ["CC7.2", "CC7.3", "CC7.4"]
    assert doc["review_status"] == "PENDING"
    assert doc["compliance_period_start"] == doc["compliance_period_end"] == doc["created_at"]
    assert doc["auditor_notes"] is None
    assert doc["attestation_statement"] == (
        f"This evidence bundle (ID: {bundle['id']}) contains a complete and accurate record of "
        f"incident {inc['id']}. The system detected a policy violation at step 1 and terminated "
        "the execution according to configured governance policies. All data in this bundle is "
        "immutable and cryptographically verified "
        f"(hash: {bundle['contentHash'][:16]}...)."
    )
    assert client_hash(doc) == bundle["contentHash"] == doc["content_hash"]


async def test_soc2_with_period_notes_and_no_violation_step(client, engine):
    seeded = await _seed(engine, with_run=False)
    bundle = await _export(
        client,
        seeded["incident"]["id"],
        "SOC2",
        notes="sampled",
        start="2026-10-01T00:00:00Z",
        end="2026-12-31T00:00:00+00:00",
    )
    doc = bundle["document"]
    assert (doc["compliance_period_start"], doc["compliance_period_end"], doc["auditor_notes"]) == (
        "2026-10-01T00:00:00.000000+00:00",
        "2026-12-31T00:00:00.000000+00:00",
        "sampled",
    )
    assert "policy violation at step N/A and terminated" in doc["attestation_statement"]


@pytest.mark.parametrize(
    ("severity", "risk"),
    [("CRITICAL", "HIGH"), ("HIGH", "HIGH"), ("MEDIUM", "MEDIUM"), ("LOW", "LOW")],
)
async def test_executive_debrief(client, engine, severity, risk):
    seeded = await _seed(engine, severity=severity)
    inc = seeded["incident"]
    bundle = await _export(client, inc["id"], "EXECUTIVE_DEBRIEF", **{"for": "Board"})
    doc = bundle["document"]
    assert re.fullmatch(r"EXEC-[0-9a-f]{12}", bundle["id"])
    assert doc == {
        "bundle_id": bundle["id"],
        "bundle_type": "EXECUTIVE_DEBRIEF",
        "incident_id": inc["id"],
        "incident_title": "Spend cap exceeded",
        "incident_severity": severity,
        "risk_level": risk,
        "incident_summary": (
            "An automated agent run broke a configured governance policy and the platform "
            "stopped it before it could continue."
        ),
        "business_impact": (
            "The affected run was halted. Costs are limited to what the run used before it was "
            "stopped, and no further actions were taken on its behalf."
        ),
        "policy_violated": "pol-spend-cap",
        "violation_time": "2026-11-20T10:02:06.000000+00:00",
        "detection_time": "2026-11-20T10:02:06.000000+00:00",
        "time_to_detect_seconds": 125,
        "cost_incurred_cents": "123.4567",
        "remediation_status": "PENDING",
        "classification": "INTERNAL",
        "prepared_for": "Board",
        "prepared_by": "olga",
        "recommended_actions": [
            "Review the policy threshold that triggered this violation",
            "Assess if the policy limits are appropriately calibrated",
            "Consider adjusting limits if legitimate use cases are being blocked",
            "Verify that governance policies are documented and communicated",
        ],
        "created_at": doc["created_at"],
        "content_hash_fields": sorted([k for k in doc if k != "content_hash"]),
        "content_hash": bundle["contentHash"],
    }
    assert client_hash(doc) == bundle["contentHash"]


async def test_executive_debrief_without_run_or_violation(client, engine):
    seeded = await _seed(engine, with_run=False, severity="LOW")
    doc = (await _export(client, seeded["incident"]["id"], "EXECUTIVE_DEBRIEF"))["document"]
    assert (doc["policy_violated"], doc["time_to_detect_seconds"], doc["cost_incurred_cents"]) == (
        "Policy Violation",
        0,
        "0.0000",
    )
    assert (doc["risk_level"], doc["prepared_for"]) == ("LOW", None)


async def test_foreign_and_missing_incidents_are_not_found_and_not_audited(client, engine):
    theirs = incident_row("t2")
    await insert_rows(engine, t.incidents, [theirs])
    missing = "00000000-0000-4000-8000-000000000000"
    for kind in ("EVIDENCE", "SOC2", "EXECUTIVE_DEBRIEF"):
        foreign = await gql(client, EXPORT, {"id": theirs["id"], "kind": kind}, role="OPERATOR")
        absent = await gql(client, EXPORT, {"id": missing, "kind": kind}, role="OPERATOR")
        assert error_codes(foreign) == ["NOT_FOUND"]
        assert json.dumps(foreign).replace(theirs["id"], "ID") == json.dumps(absent).replace(
            missing, "ID"
        )
    assert await _audits(engine) == []


async def test_export_needs_operator_and_valid_period(client, engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    body = await gql(client, EXPORT, {"id": inc["id"], "kind": "EVIDENCE"}, role="VIEWER")
    assert error_codes(body) == ["FORBIDDEN"]
    body = await gql(
        client,
        EXPORT,
        {
            "id": inc["id"],
            "kind": "SOC2",
            "start": "2026-12-01T00:00:00Z",
            "end": "2026-11-01T00:00:00Z",
        },
        role="OPERATOR",
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "compliancePeriodEnd"
    assert await _audits(engine) == []


async def test_export_fails_whole_when_the_audit_fails(client, engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    async with _failing_audit_inserts(engine):
        body = await gql(client, EXPORT, {"id": inc["id"], "kind": "EVIDENCE"}, role="OPERATOR")
    assert error_codes(body) == ["INTERNAL"]
    assert body["data"] is None
    assert await _audits(engine) == []
