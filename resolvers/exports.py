"""Incident export bundles (DOMAIN.md §3.21): EVIDENCE, SOC2 and EXECUTIVE_DEBRIEF documents.

Bundles are built on demand and not stored (there is no bundle table): the audit row keeps the
bundle id, kind, incident id and content hash, so a bundle shown later can be matched against
the audit trail and its hash recomputed from its own document.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drivers import exports as db
from drivers.rules import bundles as rules
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.unit_of_work import unit_of_work
from resolvers.validation import check_length

__all__ = ["BundleOptions", "ExportBundleResult", "export_incident_bundle"]

BundleOptions = rules.BundleOptions


@dataclass(frozen=True, slots=True)
class ExportBundleResult:
    id: str
    kind: str
    incident_id: str
    content_hash: str
    created_at: datetime
    document: dict[str, Any]


def _check(options: BundleOptions) -> None:
    check_length("exportReason", options.export_reason, 2000)
    check_length("preparedFor", options.prepared_for, 255)
    check_length("auditorNotes", options.auditor_notes, 10_000)
    for name, value in (
        ("compliancePeriodStart", options.compliance_period_start),
        ("compliancePeriodEnd", options.compliance_period_end),
    ):
        if value is not None and value.tzinfo is None:
            raise BadUserInput(f"{name} needs a time zone", field=name)
    start, end = options.compliance_period_start, options.compliance_period_end
    if start is not None and end is not None and end < start:
        raise BadUserInput(
            "compliancePeriodEnd is before compliancePeriodStart", field="compliancePeriodEnd"
        )


async def export_incident_bundle(
    ctx: Context, incident_id: str, kind: str, options: BundleOptions
) -> ExportBundleResult:
    """Build one bundle from the tenant's incident, its run and steps; audit it."""
    _check(options)
    async with unit_of_work(ctx, "exportIncidentBundle") as uow:
        tenant = uow.tenant_id
        incident = await db.fetch_bundle_incident(
            uow.conn, tenant_id=tenant, incident_id=incident_id
        )
        run = None
        steps: list[db.BundleStep] = []
        if incident.source_run_id is not None:
            run = await db.fetch_bundle_run(
                uow.conn, tenant_id=tenant, run_id=incident.source_run_id
            )
        if run is not None:
            steps = await db.fetch_bundle_steps(uow.conn, tenant_id=tenant, run_id=run.id)
        violation = await db.fetch_first_violation(
            uow.conn, tenant_id=tenant, incident_id=incident.id
        )
        inputs = rules.BundleInputs(
            incident_id=incident.id,
            incident_title=incident.title,
            incident_severity=incident.severity,
            incident_created_at=incident.created_at,
            inflection_step_index=incident.inflection_step_index,
            affected_agent_id=incident.affected_agent_id,
            run=None if run is None else dataclasses.asdict(run),
            steps=[dataclasses.asdict(s) for s in steps],
            violated_policy_id=violation.policy_id if violation else None,
            violated_rule=violation.violated_rule if violation else None,
        )
        now = datetime.now(UTC)
        document = rules.build_document(
            kind,
            hex12=secrets.token_hex(6),
            inputs=inputs,
            actor=uow.principal.subject,
            options=options,
            now=now,
        )
        result = ExportBundleResult(
            id=document["bundle_id"],
            kind=kind,
            incident_id=incident.id,
            content_hash=document["content_hash"],
            created_at=now,
            document=document,
        )
        uow.audit(
            "incidents",
            incident.id,
            before=None,
            after={
                "bundle_id": result.id,
                "kind": kind,
                "incident_id": incident.id,
                "content_hash": result.content_hash,
            },
        )
    return result
