"""/metrics reads the outbox and breaker gauges from the database when it is scraped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from gateway.settings import Settings
from tests.factories_breaker import DISABLE, ENABLE, add_alert, outbox
from tests.helpers import gql, serve


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_outbox_and_breaker_gauges_show_the_database_across_tenants(client, engine):
    # given breaker "costsim_v2" open for tenants a and b, tripped and reset for c,
    # and "other" opened and reset for a
    for tenant in ("a", "b", "c"):
        await gql(client, DISABLE, {"reason": "drill"}, tenant=tenant)
    await gql(client, ENABLE, {}, tenant="c")
    await gql(client, DISABLE, {"name": "other", "reason": "drill"}, tenant="a")
    await gql(client, ENABLE, {"name": "other"}, tenant="a")
    # and two dead letters, one alert waiting for an hour
    await add_alert(engine, "a", status="FAILED")
    await add_alert(engine, "b", status="FAILED")
    await add_alert(engine, "c", created_at=datetime.now(UTC) - timedelta(hours=1))
    pending = sum(1 for row in await outbox(engine) if row.status == "PENDING")
    # when /metrics is scraped
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    samples = _samples(answer.text)
    # then it shows what the database holds now, over every tenant
    assert samples[("gateway_breakers_open", (("name", "costsim_v2"),))] == 2
    assert samples[("gateway_breakers_open", (("name", "other"),))] == 0
    assert samples[("gateway_alert_outbox_pending", ())] == pending == 7
    assert samples[("gateway_alert_outbox_failed", ())] == 2
    assert 3600 <= samples[("gateway_alert_outbox_oldest_pending_seconds", ())] < 3600 + 60


async def test_metrics_answer_when_the_database_does_not():
    # given a gateway whose database refuses connections
    unreachable = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        migrate_on_start=False,
        gateway_background_jobs=False,
    )
    async with serve(unreachable) as http:
        answer = await http.get("/metrics")
    # then the scrape still answers, with the process's own metrics
    assert answer.status_code == 200
    assert "gateway_http_requests_total" in answer.text
    assert "gateway_alert_outbox_failed" in answer.text
