"""Alert outbox use cases: delivery to Alertmanager, re-drive, purge and stats (DOMAIN.md §3.8).

`deliver_alerts` and `purge_alerts` are background jobs (engine in, count out). Delivery claims
at most 10 due rows with FOR UPDATE SKIP LOCKED, posts them concurrently and commits the batch's
bookkeeping once, so replicas never post the same row twice at the same time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import alerts as db
from drivers.records import AlertOutboxRecord
from drivers.rules.breaker import BreakerSettings, backoff_seconds
from resolvers.auth import require_role
from resolvers.context import Context
from resolvers.errors import translate_errors
from resolvers.metrics import ALERT_DELIVERIES
from resolvers.unit_of_work import unit_of_work

__all__ = [
    "BATCH_SIZE",
    "EXTRA_RETRIES",
    "alert_outbox_stats",
    "deliver_alerts",
    "purge_alerts",
    "retry_failed_alerts",
]

log = logging.getLogger("gateway.alerts")

BATCH_SIZE = 10
EXTRA_RETRIES = 3
ALERTS_PATH = "/api/v2/alerts"


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: int | None  # HTTP status on success
    error: str | None  # last_error text on failure


async def _post(
    http: httpx.AsyncClient, url: str, row: AlertOutboxRecord, limit: float
) -> _Outcome:
    try:
        response = await http.post(url, json=row.payload, timeout=limit)
    except httpx.TimeoutException as exc:
        return _Outcome(None, f"Timeout: {exc or f'no response within {limit} s'}"[:500])
    except Exception as exc:  # any transport failure is a retryable attempt
        return _Outcome(None, (str(exc) or type(exc).__name__)[:500])
    if 200 <= response.status_code < 300:
        return _Outcome(response.status_code, None)
    return _Outcome(None, f"HTTP {response.status_code}: {response.text[:200]}")


async def deliver_alerts(
    engine: AsyncEngine,
    *,
    now: datetime | None = None,
    settings: BreakerSettings | None = None,
) -> int:
    """Deliver one batch of due PENDING alerts; returns how many rows it updated."""
    settings = settings or BreakerSettings()
    now = now or datetime.now(UTC)
    async with engine.begin() as conn:
        rows = await db.claim_due_alerts(conn, now=now, limit=BATCH_SIZE)
        if not rows:
            return 0
        base = settings.alertmanager_url
        if base is None:
            for row in rows:
                await db.mark_sent(conn, alert_id=row.id, now=now)
            ALERT_DELIVERIES.labels("skipped").inc(len(rows))
            return len(rows)
        url = base.rstrip("/") + ALERTS_PATH
        timeout = settings.alertmanager_timeout
        async with httpx.AsyncClient() as http:
            outcomes = await asyncio.gather(*(_post(http, url, r, timeout) for r in rows))
        for row, outcome in zip(rows, outcomes, strict=True):
            await _record(conn, row, outcome, now)
    return len(rows)


async def _record(conn: Any, row: AlertOutboxRecord, outcome: _Outcome, now: datetime) -> None:
    if outcome.error is None:
        await db.mark_sent(conn, alert_id=row.id, now=now)
        # The trip's incident remembers its DISABLE alert; ENABLE alerts only point back to it.
        if row.alert_type == "DISABLE" and row.incident_id is not None:
            await db.mark_incident_alert_sent(
                conn,
                tenant_id=row.tenant_id,
                incident_id=row.incident_id,
                response=str(outcome.status),
                now=now,
            )
        ALERT_DELIVERIES.labels("sent").inc()
        return
    attempts = row.attempts + 1
    dead = attempts >= row.max_attempts
    await db.mark_failed_attempt(
        conn,
        alert_id=row.id,
        attempts=attempts,
        error=outcome.error,
        now=now,
        next_attempt_at=now + timedelta(seconds=backoff_seconds(attempts)),
        dead=dead,
    )
    ALERT_DELIVERIES.labels("failed" if dead else "retry").inc()
    log.warning(
        "alert %s attempt %s/%s failed: %s", row.id, attempts, row.max_attempts, outcome.error
    )


async def purge_alerts(
    engine: AsyncEngine,
    *,
    now: datetime | None = None,
    settings: BreakerSettings | None = None,
) -> int:
    """Delete SENT and FAILED alerts older than the retention (30 days by default)."""
    settings = settings or BreakerSettings()
    async with engine.begin() as conn:
        return await db.purge(
            conn, now=now or datetime.now(UTC), days=settings.alert_retention_days
        )


async def retry_failed_alerts(ctx: Context) -> int:
    """Re-drive the tenant's dead letters: back to PENDING with 3 more attempts, due now."""
    async with unit_of_work(ctx, "retryFailedAlerts") as uow:
        ids = await db.redrive_failed(
            uow.conn, tenant_id=uow.tenant_id, extra=EXTRA_RETRIES, now=datetime.now(UTC)
        )
        uow.audit(
            "alert_outbox", "*", before=None, after={"ids": ids, "extra_retries": EXTRA_RETRIES}
        )
    return len(ids)


async def alert_outbox_stats(ctx: Context) -> db.OutboxStats:
    """Outbox rows of the tenant per status, and the oldest PENDING row."""
    principal = require_role(ctx)
    with translate_errors():
        async with ctx.db.reads.connect() as conn:
            return await db.outbox_stats(conn, tenant_id=principal.tenant_id)
