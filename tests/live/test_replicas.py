"""Two gateway processes on one database: changes reach subscribers on either replica."""

from __future__ import annotations

import httpx

from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.helpers import gql, token
from tests.live.test_subscriptions import ACK, EVENT_ADDED, INCIDENT_CHANGED
from tests.live.wsclient import subscriber, wait_for_subscribers


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
