"""Breaker and outbox test helpers: direct row reads and writes (tests may see the tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t

BREAKER_FIELDS = """id name state isOpen openedAt reason incidentId disabledBy disabledUntil
    consecutiveFailures lastFailureAt currentIncident { id severity reason resolved }"""
CHANGE = f"changed breaker {{ {BREAKER_FIELDS} }} incident {{ id severity reason driftScore sampleCount details resolved resolvedBy resolutionNotes }}"

DRIFT = f"""mutation($name: String! = "costsim_v2", $score: Float!, $samples: Int, $details: JSON) {{
  reportBreakerDrift(name: $name, driftScore: $score, sampleCount: $samples, details: $details) {{ {CHANGE} }} }}"""
SCHEMA_ERRORS = f"""mutation($name: String! = "costsim_v2", $count: Int) {{
  reportBreakerSchemaErrors(name: $name, errorCount: $count) {{ {CHANGE} }} }}"""
DISABLE = f"""mutation($name: String! = "costsim_v2", $reason: String!, $until: DateTime) {{
  disableCircuitBreaker(name: $name, reason: $reason, until: $until) {{ {CHANGE} }} }}"""
ENABLE = f"""mutation($name: String! = "costsim_v2", $reason: String) {{
  enableCircuitBreaker(name: $name, reason: $reason) {{ {CHANGE} }} }}"""
BREAKER = f"""query($name: String! = "costsim_v2") {{ circuitBreaker(name: $name) {{ {BREAKER_FIELDS} }} }}"""


async def rows(engine: AsyncEngine, table: Any, *order: Any) -> list[Any]:
    async with engine.connect() as conn:
        stmt = select(table)
        stmt = stmt.order_by(*order) if order else stmt.order_by(table.c.created_at)
        return list((await conn.execute(stmt)).all())


async def breakers(engine: AsyncEngine) -> list[Any]:
    return await rows(engine, t.circuit_breakers, t.circuit_breakers.c.id)


async def breaker_incidents(engine: AsyncEngine) -> list[Any]:
    return await rows(engine, t.breaker_incidents)


async def outbox(engine: AsyncEngine) -> list[Any]:
    return await rows(engine, t.alert_outbox, t.alert_outbox.c.id)


async def audits(engine: AsyncEngine) -> list[Any]:
    return await rows(engine, t.audit_log, t.audit_log.c.id)


async def expire_breaker(
    engine: AsyncEngine, until: datetime | None, name: str = "costsim_v2"
) -> None:
    """Move an OPEN breaker's disabled_until (e.g. into the past)."""
    async with engine.begin() as conn:
        await conn.execute(
            update(t.circuit_breakers)
            .where(t.circuit_breakers.c.name == name)
            .values(disabled_until=until)
        )


async def add_alert(engine: AsyncEngine, tenant: str = "t1", **over: Any) -> int:
    """Insert one outbox row; returns its id."""
    values: dict[str, Any] = {
        "tenant_id": tenant,
        "payload": [{"labels": {"alertname": "Test"}}],
        "alert_type": "DISABLE",
    }
    values.update(over)
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(t.alert_outbox).values(**values).returning(t.alert_outbox.c.id)
        )
        return int(result.scalar_one())
