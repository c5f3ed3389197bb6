"""Two gateway processes on one database: changes reach subscribers on either replica."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from drivers import tables as t
from resolvers.breaker_state import recover_expired_breakers
from tests.factories import incident_row, insert_rows
from tests.factories_breaker import audits, breaker_incidents, breakers, expire_breaker, outbox
from tests.helpers import gql, token
from tests.live.test_breaker_subscriptions import BREAKER_CHANGED, DISABLE, DRIFT, ENABLE
from tests.live.test_subscriptions import ACK, EVENT_ADDED, INCIDENT_CHANGED
from tests.live.wsclient import subscriber, wait_for_subscribers

BREAKER = "{ circuitBreaker { state } }"


async def test_a_change_made_through_one_replica_reaches_subscribers_of_the_other(replicas, engine):
    a, b = replicas
    rows = [incident_row(), incident_row()]
    await insert_rows(engine, t.incidents, rows)
    async with (
        subscriber(a.url, token("t1", "VIEWER")) as on_a,
        subscriber(b.url, token("t1", "VIEWER")) as on_b,
        httpx.AsyncClient(base_url=b.url, timeout=10) as http_b,
        httpx.AsyncClient(base_url=a.url, timeout=10) as http_a,
    ):
        changes_a = await on_a.subscribe(INCIDENT_CHANGED)
        events_a = await on_a.subscribe(EVENT_ADDED, {"id": rows[0]["id"]})
        changes_b = await on_b.subscribe(INCIDENT_CHANGED)
        await wait_for_subscribers(a.url, 2)
        await wait_for_subscribers(b.url, 1)
        # when B acknowledges an incident
        body = await gql(http_b, ACK, {"id": rows[0]["id"]}, role="OPERATOR", sub="bob")
        assert "errors" not in body, body
        # then A's subscribers hear of it (and B's own subscriber too)
        change = (await on_a.next(changes_a))["data"]["incidentChanged"]
        assert (change["kind"], change["incident"]["acknowledgedBy"]) == ("ACKNOWLEDGED", "bob")
        event = (await on_a.next(events_a))["data"]["incidentEventAdded"]
        assert event["eventType"] == "ACKNOWLEDGED"
        assert (await on_b.next(changes_b))["data"]["incidentChanged"]["incidentId"] == rows[0][
            "id"
        ]
        # and the other way round
        body = await gql(http_a, ACK, {"id": rows[1]["id"]}, role="OPERATOR")
        assert "errors" not in body, body
        assert (await on_b.next(changes_b))["data"]["incidentChanged"]["incidentId"] == rows[1][
            "id"
        ]
        assert (await on_a.next(changes_a))["data"]["incidentChanged"]["incidentId"] == rows[1][
            "id"
        ]


async def _post(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await gql(http, query, variables, role="ADMIN", sub="racer")
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _drain_until(ws, op: str, final: tuple[str, str | None]) -> list[dict[str, Any]]:
    """Every state delivered, until the final (state, incidentId) shows and all is quiet."""
    seen: list[dict[str, Any]] = []
    while True:
        done = bool(seen) and (seen[-1]["state"], seen[-1]["incidentId"]) == final
        try:
            message = await ws.message(op, 0.5 if done else 10.0)
        except TimeoutError:
            return seen
        assert message["type"] == "next", message
        seen.append(message["payload"]["data"]["circuitBreakerChanged"])


async def test_concurrent_breaker_mutations_over_both_replicas_stay_consistent(replicas, engine):
    a, b = replicas
    # 20 requests: disables with two reasons (trip, no-op or supersede), enables, drift reports
    plan: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(20):
        kind = ("disable", "enable", "drift", "disable", "drift")[i % 5]
        if kind == "disable":
            plan.append((kind, DISABLE, {"reason": f"reason {i % 2}"}))
        elif kind == "enable":
            plan.append((kind, ENABLE, {}))
        else:
            plan.append((kind, DRIFT, {"score": 0.9}))
    async with (
        subscriber(a.url, token("t1", "VIEWER")) as ws,
        httpx.AsyncClient(base_url=a.url, timeout=30) as http_a,
        httpx.AsyncClient(base_url=b.url, timeout=30) as http_b,
    ):
        op = await ws.subscribe(BREAKER_CHANGED, {"name": "costsim_v2"})
        assert (await ws.next(op))["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
        results = await asyncio.gather(
            *(
                _post((http_a, http_b)[i % 2], query, variables)
                for i, (_, query, variables) in enumerate(plan)
            )
        )
        # every request has answered, so every change has committed: the row is final
        [row] = await breakers(engine)
        final = ("OPEN" if row.disabled else "CLOSED", row.incident_id)
        delivered = await _drain_until(ws, op, final)
    answers = [next(iter(r.values())) for r in results]
    trips = [
        x
        for (kind, _, _), x in zip(plan, answers, strict=True)
        if kind != "enable" and x["incident"] and x["changed"]
    ]
    resets = [
        x
        for (kind, _, _), x in zip(plan, answers, strict=True)
        if kind == "enable" and x["changed"]
    ]
    # exactly one breaker incident per trip, all distinct
    incidents = await breaker_incidents(engine)
    assert len(incidents) == len(trips) >= 1
    assert {i.id for i in incidents} == {x["incident"]["id"] for x in trips}
    # exactly one alert per transition: DISABLE per trip (supersedes included), ENABLE per reset
    alerts = await outbox(engine)
    assert sorted(a.alert_type for a in alerts) == sorted(
        ["DISABLE"] * len(trips) + ["ENABLE"] * len(resets)
    )
    # and the row agrees with its incidents: OPEN <=> exactly one unresolved incident, its own
    unresolved = [i for i in incidents if not i.resolved]
    if row.disabled:
        assert [i.id for i in unresolved] == [row.incident_id]
    else:
        assert unresolved == []
        assert row.incident_id is None
    # the subscriber on replica A, though half the changes went through B, ends on that state
    assert delivered, "no change delivered"
    assert delivered[-1]["state"] == ("OPEN" if row.disabled else "CLOSED")
    assert delivered[-1]["incidentId"] == row.incident_id


async def test_ttl_recovery_happens_once_when_replicas_race(replicas, engine):
    a, b = replicas
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=30) as http_a,
        httpx.AsyncClient(base_url=b.url, timeout=30) as http_b,
        subscriber(b.url, token("t1", "VIEWER")) as ws,
    ):
        opened = await _post(http_a, DISABLE, {"reason": "ttl race"})
        op = await ws.subscribe(BREAKER_CHANGED, {"name": "costsim_v2"})
        assert (await ws.next(op))["data"]["circuitBreakerChanged"]["state"] == "OPEN"
        # when its TTL passes, both replicas' sweepers, ten reads over both, and two more
        # sweeper calls from here all race to recover it
        await expire_breaker(engine, datetime.now(UTC) - timedelta(seconds=1))
        reads = [gql((http_a, http_b)[i % 2], BREAKER, role="VIEWER") for i in range(10)]
        results, swept = await asyncio.gather(
            asyncio.gather(*reads),
            asyncio.gather(recover_expired_breakers(engine), recover_expired_breakers(engine)),
        )
        recovered = (await ws.next(op))["data"]["circuitBreakerChanged"]
        assert await ws.silent(op, 1.0)
    # then every read answered CLOSED
    assert {r["data"]["circuitBreaker"]["state"] for r in results} == {"CLOSED"}
    assert recovered["state"] == "CLOSED"
    # and the trip was recovered exactly once: one resolution, one ENABLE alert, one audit row
    [incident] = await breaker_incidents(engine)
    assert incident.id == opened["disableCircuitBreaker"]["incident"]["id"]
    assert (incident.resolved, incident.resolved_by) == (True, "system-auto-recover")
    assert [x.alert_type for x in await outbox(engine)] == ["DISABLE", "ENABLE"]
    recoveries = [x for x in await audits(engine) if x.actor == "system-auto-recover"]
    assert len(recoveries) == 1
    assert sum(swept) <= 1
