"""Alert outbox delivery against a real HTTP server (DOMAIN.md §3.8): retry, backoff, dead letter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from drivers import tables as t
from drivers.rules.breaker import BreakerSettings
from resolvers.alerts import deliver_alerts, purge_alerts
from tests.alertmanager import FakeAlertmanager
from tests.factories_breaker import DISABLE, add_alert, breaker_incidents, outbox
from tests.helpers import error_codes, gql

STATS = "{ alertOutboxStats { pending sent failed oldestPendingAt } }"


def _settings(url: str | None, timeout: float = 3.0) -> BreakerSettings:
    return BreakerSettings(alertmanager_url=url, alertmanager_timeout=timeout)


async def test_fails_times_out_then_succeeds(client, engine):
    # given a trip's DISABLE alert and an Alertmanager that fails, hangs, then accepts
    change = (await gql(client, DISABLE, {"reason": "deliver me"}))["data"]["disableCircuitBreaker"]
    incident_id = change["incident"]["id"]
    [queued] = await outbox(engine)
    script = [(500, "boom " + "x" * 300, 0.0), (200, "late", 3.0), (200, "ok", 0.0)]
    with FakeAlertmanager(script) as am:
        settings = _settings(am.url + "/", timeout=1.0)
        t0 = datetime.now(UTC)
        # when the first attempt gets a 500
        assert await deliver_alerts(engine, now=t0, settings=settings) == 1
        [row] = await outbox(engine)
        assert (row.status, row.attempts) == ("PENDING", 1)
        assert row.last_error == "HTTP 500: " + ("boom " + "x" * 300)[:200]
        assert row.last_attempt_at == t0
        assert row.next_attempt_at == t0 + timedelta(seconds=2)
        # not due yet: nothing is claimed
        assert await deliver_alerts(engine, now=t0 + timedelta(seconds=1), settings=settings) == 0
        # the second attempt times out
        t1 = t0 + timedelta(seconds=2)
        assert await deliver_alerts(engine, now=t1, settings=settings) == 1
        [row] = await outbox(engine)
        assert (row.status, row.attempts) == ("PENDING", 2)
        assert row.last_error is not None and row.last_error.startswith("Timeout: ")
        assert row.next_attempt_at == t1 + timedelta(seconds=4)
        # the third attempt succeeds
        t2 = t1 + timedelta(seconds=4)
        assert await deliver_alerts(engine, now=t2, settings=settings) == 1
        received = list(am.received)
    [row] = await outbox(engine)
    assert (row.status, row.sent_at, row.attempts) == ("SENT", t2, 2)
    assert [path for path, _ in received] == ["/api/v2/alerts"] * 3
    assert all(body == queued.payload for _, body in received)
    [incident] = await breaker_incidents(engine)
    assert incident.id == incident_id
    assert (incident.alert_sent, incident.alert_sent_at, incident.alert_response) == (
        True,
        t2,
        "200",
    )


async def test_dead_letter_after_max_attempts_then_redrive(client, engine):
    alert_id = await add_alert(engine, attempts=9)
    with FakeAlertmanager([(503, "unavailable", 0.0)]) as am:
        now = datetime.now(UTC)
        assert await deliver_alerts(engine, now=now, settings=_settings(am.url)) == 1
    [row] = await outbox(engine)
    assert (row.id, row.status, row.attempts, row.last_error) == (
        alert_id,
        "FAILED",
        10,
        "HTTP 503: unavailable",
    )
    stats = (await gql(client, STATS, role="VIEWER"))["data"]["alertOutboxStats"]
    assert stats == {"pending": 0, "sent": 0, "failed": 1, "oldestPendingAt": None}
    # re-drive: back to PENDING with 3 more attempts, due now
    assert error_codes(await gql(client, "mutation { retryFailedAlerts }", role="OPERATOR")) == [
        "FORBIDDEN"
    ]
    body = await gql(client, "mutation { retryFailedAlerts }")
    assert body["data"]["retryFailedAlerts"] == 1
    [row] = await outbox(engine)
    assert (row.status, row.max_attempts, row.attempts) == ("PENDING", 13, 10)
    # another tenant's re-drive touches nothing of ours
    assert (await gql(client, "mutation { retryFailedAlerts }", tenant="t2"))["data"][
        "retryFailedAlerts"
    ] == 0
    # once attempts reach max + 3 it is not re-driven again
    async with engine.begin() as conn:
        await conn.execute(update(t.alert_outbox).values(status="FAILED", attempts=16))
    assert (await gql(client, "mutation { retryFailedAlerts }"))["data"]["retryFailedAlerts"] == 0


async def test_connection_errors_count_as_attempts(engine):
    await add_alert(engine)
    now = datetime.now(UTC)
    # nothing listens on port 9 of localhost
    assert await deliver_alerts(engine, now=now, settings=_settings("http://127.0.0.1:9")) == 1
    [row] = await outbox(engine)
    assert (row.status, row.attempts, row.next_attempt_at) == (
        "PENDING",
        1,
        now + timedelta(seconds=2),
    )
    assert row.last_error and len(row.last_error) <= 500


async def test_without_alertmanager_url_rows_are_marked_sent(client, engine):
    for _ in range(12):
        await add_alert(engine)
    stats = (await gql(client, STATS, role="VIEWER"))["data"]["alertOutboxStats"]
    assert (stats["pending"], stats["sent"]) == (12, 0)
    assert stats["oldestPendingAt"] is not None
    assert await deliver_alerts(engine, settings=_settings(None)) == 10  # batches of 10
    assert await deliver_alerts(engine, settings=_settings(None)) == 2
    assert await deliver_alerts(engine, settings=_settings(None)) == 0
    assert {(r.status, r.attempts) for r in await outbox(engine)} == {("SENT", 0)}


async def test_two_workers_never_claim_the_same_rows(engine):
    for _ in range(15):
        await add_alert(engine)
    with FakeAlertmanager([(200, "ok", 0.3)]) as am:
        settings = _settings(am.url, timeout=10)
        done = await asyncio.gather(
            deliver_alerts(engine, settings=settings), deliver_alerts(engine, settings=settings)
        )
        received = len(am.received)
    assert sorted(done) == [5, 10], [(r.status, r.last_error) for r in await outbox(engine)]
    assert received == 15
    assert {r.status for r in await outbox(engine)} == {"SENT"}


async def test_purge_deletes_old_sent_and_failed_only(engine):
    old = datetime.now(UTC) - timedelta(days=31)
    await add_alert(engine, status="SENT", created_at=old)
    await add_alert(engine, status="FAILED", created_at=old)
    kept_pending = await add_alert(engine, status="PENDING", created_at=old)
    kept_recent = await add_alert(engine, status="SENT")
    assert await purge_alerts(engine) == 2
    assert sorted(r.id for r in await outbox(engine)) == [kept_pending, kept_recent]
