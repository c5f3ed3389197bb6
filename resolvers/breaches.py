"""Limit breaches (DOMAIN.md §3.2): the list and the mandatory governance write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from drivers import breaches as db
from drivers import limits as limits_db
from drivers.enums import BreachType
from drivers.records import LimitBreachRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput, GatewayError, GovernanceError
from resolvers.limit_writes import check_decimal
from resolvers.metrics import LIMIT_BREACHES
from resolvers.references import ensure_found
from resolvers.unit_of_work import as_json, unit_of_work

__all__ = ["RecordBreachInput", "record_limit_breach"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordBreachInput:
    limit_id: str
    breach_type: str
    value_at_breach: Decimal | None = None
    limit_value: Decimal | None = None
    run_id: str | None = None
    incident_id: str | None = None
    details: Any = None


def _check_input(data: RecordBreachInput) -> None:
    if data.breach_type not in BreachType.__members__:
        raise BadUserInput("breachType must be a BreachType", field="breachType")
    check_decimal("valueAtBreach", data.value_at_breach, positive=False)
    check_decimal("limitValue", data.limit_value, positive=False)


async def record_limit_breach(ctx: Context, data: RecordBreachInput) -> LimitBreachRecord:
    """Validate, then append the breach; after validation any failure is GOVERNANCE_ERROR."""
    _check_input(data)
    validated = False
    try:
        async with unit_of_work(ctx, "recordLimitBreach") as uow:
            tenant = uow.tenant_id
            await ensure_found(
                uow.conn, "Limit", tenant_id=tenant, entity_id=data.limit_id, field="limitId"
            )
            if data.run_id is not None:
                await ensure_found(
                    uow.conn, "Run", tenant_id=tenant, entity_id=data.run_id, field="runId"
                )
            if data.incident_id is not None:
                await ensure_found(
                    uow.conn,
                    "Incident",
                    tenant_id=tenant,
                    entity_id=data.incident_id,
                    field="incidentId",
                )
            validated = True
            limit_value = data.limit_value
            if limit_value is None:
                limit = await limits_db.fetch_limit(
                    uow.conn, tenant_id=tenant, limit_id=data.limit_id
                )
                limit_value = limit.effective_value
            breach = await db.insert_breach(
                uow.conn,
                tenant_id=tenant,
                limit_id=data.limit_id,
                breach_type=data.breach_type,
                value_at_breach=data.value_at_breach,
                limit_value=limit_value,
                run_id=data.run_id,
                incident_id=data.incident_id,
                details=data.details,
                now=datetime.now(UTC),
            )
            uow.audit("limit_breaches", breach.id, before=None, after=as_json(breach))
    except Exception as exc:
        if not validated or isinstance(exc, GovernanceError):
            raise
        if isinstance(exc, GatewayError) and exc.code in ("UNAUTHENTICATED", "FORBIDDEN"):
            raise
        raise GovernanceError(
            "recording the limit breach failed; nothing was written",
            domain="Policies",
            operation="recordLimitBreach",
            entityId=data.limit_id,
        ) from exc
    LIMIT_BREACHES.labels(breach_type=data.breach_type).inc()
    return breach
