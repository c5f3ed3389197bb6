"""Incident export bundles (DOMAIN.md §3.21; API.md `exportIncidentBundle`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from resolvers import exports as uc
from schema.base import Info
from schema.enums import BundleKind

__all__ = ["ExportBundle", "ExportMutations"]


@strawberry.type(
    description=(
        "A generated bundle (not stored). contentHash = SHA-256 hex of the canonical JSON of "
        "the document keys listed in document.content_hash_fields (docs/decisions.md)."
    )
)
class ExportBundle:
    id: strawberry.ID = strawberry.field(description="EVD-, SOC2- or EXEC- + 12 hex.")
    kind: BundleKind = strawberry.field(description="What the bundle is for.")
    incident_id: strawberry.ID = strawberry.field(description="The exported incident.")
    content_hash: str = strawberry.field(description="SHA-256 hex, see the type description.")
    created_at: datetime = strawberry.field(description="When the bundle was built.")
    document: JSON = strawberry.field(description="The bundle itself (snake_case keys).")


@strawberry.type
class ExportMutations:
    @strawberry.mutation(
        description="Build an EVIDENCE, SOC2 or EXECUTIVE_DEBRIEF bundle for one incident. "
        "[OPERATOR]"
    )
    async def export_incident_bundle(
        self,
        info: Info,
        *,
        incident_id: Annotated[strawberry.ID, strawberry.argument(description="The incident.")],
        kind: Annotated[BundleKind, strawberry.argument(description="Which bundle.")],
        export_reason: Annotated[
            str | None, strawberry.argument(description="EVIDENCE: why it is exported.")
        ] = None,
        prepared_for: Annotated[
            str | None, strawberry.argument(description="EXECUTIVE_DEBRIEF: the audience.")
        ] = None,
        auditor_notes: Annotated[
            str | None, strawberry.argument(description="SOC2: notes for the auditor.")
        ] = None,
        compliance_period_start: Annotated[
            datetime | None, strawberry.argument(description="SOC2: period start (default now).")
        ] = None,
        compliance_period_end: Annotated[
            datetime | None, strawberry.argument(description="SOC2: period end (default now).")
        ] = None,
    ) -> ExportBundle:
        options = uc.BundleOptions(
            export_reason=export_reason,
            prepared_for=prepared_for,
            auditor_notes=auditor_notes,
            compliance_period_start=compliance_period_start,
            compliance_period_end=compliance_period_end,
        )
        out = await uc.export_incident_bundle(info.context, str(incident_id), str(kind), options)
        document: Any = out.document
        return ExportBundle(
            id=strawberry.ID(out.id),
            kind=BundleKind(out.kind),
            incident_id=strawberry.ID(out.incident_id),
            content_hash=out.content_hash,
            created_at=out.created_at,
            document=document,
        )
