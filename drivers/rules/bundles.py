"""Export bundle documents of DOMAIN.md §3.21 and their verifiable content hash.

Canonical JSON (docs/decisions.md "Export bundles"): keys sorted, separators "," and ":", UTF-8
without ASCII escaping, no NaN. Values are rendered before hashing and the document carries those
same renderings, so a client recomputes the hash from the document alone: timestamps are UTC ISO
8601 with six fractional digits and "+00:00"; decimals are strings with a fixed scale (4 for
cents); counts are integers. `content_hash_fields` names the keys the hash covers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from drivers.enums import BundleKind

__all__ = [
    "EVIDENCE_HASH_FIELDS",
    "RECOMMENDED_ACTIONS",
    "SOC2_CONTROLS",
    "BundleInputs",
    "BundleOptions",
    "build_document",
    "canonical_json",
    "content_hash",
    "risk_level",
]

EVIDENCE_HASH_FIELDS = ("created_at", "incident_id", "run_id", "steps", "trace_id")
PREFIX = {
    BundleKind.EVIDENCE: "EVD-",
    BundleKind.SOC2: "SOC2-",
    BundleKind.EXECUTIVE_DEBRIEF: "EXEC-",
}
SOC2_CONTROLS = (
    ("CC7.2", "Incident Response"),
    ("CC7.3", "Incident Management"),
    ("CC7.4", "Analysis and Remediation"),
)
RECOMMENDED_ACTIONS = (
    "Review the policy threshold that triggered this violation",
    "Assess if the policy limits are appropriately calibrated",
    "Consider adjusting limits if legitimate use cases are being blocked",
    "Verify that governance policies are documented and communicated",
)
INCIDENT_SUMMARY = (
    "An automated agent run broke a configured governance policy and the platform stopped it "
    "before it could continue."
)
BUSINESS_IMPACT = (
    "The affected run was halted. Costs are limited to what the run used before it was "
    "stopped, and no further actions were taken on its behalf."
)
_CENTS = Decimal("0.0001")


def canonical_json(value: Any) -> bytes:
    """The canonical byte form hashed for a bundle."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def content_hash(document: dict[str, Any], fields: Sequence[str]) -> str:
    """SHA-256 hex of the canonical JSON of the named document keys."""
    return hashlib.sha256(canonical_json({k: document[k] for k in fields})).hexdigest()


def ts(value: datetime | None) -> str | None:
    """A timestamp as the bundle renders it (UTC, microseconds, +00:00)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def cents(value: Decimal) -> str:
    """A cent amount with four decimals."""
    return str(value.quantize(_CENTS))


def risk_level(severity: str) -> str:
    """HIGH for CRITICAL/HIGH incidents, MEDIUM for MEDIUM, else LOW."""
    if severity in ("CRITICAL", "HIGH"):
        return "HIGH"
    return "MEDIUM" if severity == "MEDIUM" else "LOW"


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleOptions:
    export_reason: str | None = None
    prepared_for: str | None = None
    auditor_notes: str | None = None
    compliance_period_start: datetime | None = None
    compliance_period_end: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleInputs:
    """Plain values a bundle is built from (records flattened by the caller)."""

    incident_id: str
    incident_title: str
    incident_severity: str
    incident_created_at: datetime
    inflection_step_index: int | None
    affected_agent_id: str | None
    run: dict[str, Any] | None  # id, agent_id, error_message, started_at, completed_at, cost
    steps: list[dict[str, Any]]  # step_index, step_type, tokens, cost_cents, ... created_at
    violated_policy_id: str | None
    violated_rule: str | None


def _violation_step(inputs: BundleInputs) -> int | None:
    if inputs.inflection_step_index is not None:
        return inputs.inflection_step_index
    return next((s["step_index"] for s in inputs.steps if s["status"] == "VIOLATION"), None)


def _evidence(
    inputs: BundleInputs,
    *,
    bundle_id: str,
    kind: str,
    actor: str,
    reason: str | None,
    now: datetime,
) -> dict[str, Any]:
    run = inputs.run
    run_id = run["id"] if run else "N/A"
    inflection = _violation_step(inputs)
    steps = [
        {
            "index": s["step_index"],
            "timestamp": ts(s["created_at"]),
            "step_type": s["step_type"],
            "tokens": s["tokens"],
            "cost_cents": cents(s["cost_cents"]),
            "duration_ms": s["duration_ms"],
            "status": s["status"],
            "content_hash": s["content_hash"],
            "is_inflection": s["step_index"] == inflection,
        }
        for s in inputs.steps
    ]
    return {
        "bundle_id": bundle_id,
        "bundle_type": kind,
        "incident_id": inputs.incident_id,
        "incident_title": inputs.incident_title,
        "incident_severity": inputs.incident_severity,
        "run_id": run_id,
        "trace_id": run_id,
        "agent_id": (run["agent_id"] if run else None) or inputs.affected_agent_id,
        "run_started_at": ts(run["started_at"]) if run else None,
        "run_completed_at": ts(run["completed_at"]) if run else None,
        "termination_reason": run["error_message"] if run else None,
        "steps": steps,
        "total_steps": len(steps),
        "total_tokens": sum(s["tokens"] for s in inputs.steps),
        "total_cost_cents": cents(sum((s["cost_cents"] for s in inputs.steps), Decimal(0))),
        "total_duration_ms": sum(s["duration_ms"] for s in inputs.steps),
        "violation_step_index": inflection,
        "policy_context": {
            "policy_snapshot_id": "N/A",
            "active_policies": [],
            "violated_policy_id": inputs.violated_policy_id,
            "violated_rule": inputs.violated_rule,
        },
        "exported_by": actor,
        "export_reason": reason,
        "created_at": ts(now),
        "content_hash_fields": list(EVIDENCE_HASH_FIELDS),
    }


def _soc2(doc: dict[str, Any], options: BundleOptions, now: datetime) -> dict[str, Any]:
    step = doc["violation_step_index"]
    doc.update(
        control_mappings=[
            {"control_id": cid, "control_name": name, "compliance_status": "DEMONSTRATED"}
            for cid, name in SOC2_CONTROLS
        ],
        criteria_covered=[cid for cid, _ in SOC2_CONTROLS],
        review_status="PENDING",
        compliance_period_start=ts(options.compliance_period_start or now),
        compliance_period_end=ts(options.compliance_period_end or now),
        auditor_notes=options.auditor_notes,
        attestation_statement=(
            f"This evidence bundle (ID: {doc['bundle_id']}) contains a complete and accurate "
            f"record of incident {doc['incident_id']}. The system detected a policy violation "
            f"at step {'N/A' if step is None else step} and terminated the execution according "
            "to configured governance policies. All data in this bundle is immutable and "
            f"cryptographically verified (hash: {doc['content_hash'][:16]}...)."
        ),
    )
    return doc


def _debrief(
    inputs: BundleInputs, bundle_id: str, actor: str, options: BundleOptions, now: datetime
) -> dict[str, Any]:
    run = inputs.run
    detect = 0
    cost = Decimal(0)
    if run is not None:
        if run["started_at"] is not None and run["completed_at"] is not None:
            detect = int((run["completed_at"] - run["started_at"]).total_seconds())
        if run["estimated_cost_usd"] is not None:
            cost = run["estimated_cost_usd"] * 100
    doc: dict[str, Any] = {
        "bundle_id": bundle_id,
        "bundle_type": BundleKind.EXECUTIVE_DEBRIEF.value,
        "incident_id": inputs.incident_id,
        "incident_title": inputs.incident_title,
        "incident_severity": inputs.incident_severity,
        "risk_level": risk_level(inputs.incident_severity),
        "incident_summary": INCIDENT_SUMMARY,
        "business_impact": BUSINESS_IMPACT,
        "policy_violated": inputs.violated_policy_id or "Policy Violation",
        "violation_time": ts(inputs.incident_created_at),
        "detection_time": ts(inputs.incident_created_at),
        "time_to_detect_seconds": detect,
        "cost_incurred_cents": cents(cost),
        "remediation_status": "PENDING",
        "classification": "INTERNAL",
        "prepared_for": options.prepared_for,
        "prepared_by": actor,
        "recommended_actions": list(RECOMMENDED_ACTIONS),
        "created_at": ts(now),
    }
    doc["content_hash_fields"] = sorted([*doc, "content_hash_fields"])
    return doc


def build_document(
    kind: str,
    *,
    hex12: str,
    inputs: BundleInputs,
    actor: str,
    options: BundleOptions,
    now: datetime,
) -> dict[str, Any]:
    """The bundle document of `kind`, with `content_hash` set over `content_hash_fields`."""
    bundle_kind = BundleKind(kind)
    bundle_id = PREFIX[bundle_kind] + hex12
    if bundle_kind is BundleKind.EXECUTIVE_DEBRIEF:
        doc = _debrief(inputs, bundle_id, actor, options, now)
        doc["content_hash"] = content_hash(doc, doc["content_hash_fields"])
        return doc
    reason = "SOC2 compliance export" if bundle_kind is BundleKind.SOC2 else options.export_reason
    doc = _evidence(
        inputs, bundle_id=bundle_id, kind=bundle_kind.value, actor=actor, reason=reason, now=now
    )
    doc["content_hash"] = content_hash(doc, EVIDENCE_HASH_FIELDS)
    if bundle_kind is BundleKind.SOC2:
        _soc2(doc, options, now)
    return doc
