"""Two gateway processes behind one load balancer (the tests' own round-robin proxy).

A client of the deployment does not choose its gateway: a subscriber that the balancer placed on
one process must still hear a mutation that it placed on the other (issue #17, item 3).
"""

from __future__ import annotations

import httpx

from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.helpers import gql, token
from tests.live.proxy import RoundRobinProxy
from tests.live.test_subscriptions import ACK, INCIDENT_CHANGED
from tests.live.wsclient import subscriber, wait_for_subscribers


async def _ack_through(proxy: RoundRobinProxy, incident_id: str) -> None:
    """One mutation on a fresh connection, so the balancer picks the next gateway for it."""
    async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as http:
        body = await gql(http, ACK, {"id": incident_id}, role="OPERATOR", sub="lb")
    assert "errors" not in body, body


async def test_subscribers_behind_the_balancer_hear_mutations_made_through_either_gateway(
    replicas, engine
):
    a, b = replicas
    rows = [incident_row(), incident_row()]
    await insert_rows(engine, t.incidents, rows)
    async with (
        RoundRobinProxy([a.port, b.port]) as proxy,
        subscriber(proxy.url, token("t1", "VIEWER")) as first,
        subscriber(proxy.url, token("t1", "VIEWER")) as second,
    ):
        on_first = await first.subscribe(INCIDENT_CHANGED)
        on_second = await second.subscribe(INCIDENT_CHANGED)
        # the balancer put one subscriber on each process
        await wait_for_subscribers(a.url, 1)
        await wait_for_subscribers(b.url, 1)
        # when one mutation goes through each gateway
        await _ack_through(proxy, rows[0]["id"])
        changes = [
            (await ws.next(op, 10))["data"]["incidentChanged"]
            for ws, op in ((first, on_first), (second, on_second))
        ]
        await _ack_through(proxy, rows[1]["id"])
        later = [
            (await ws.next(op, 10))["data"]["incidentChanged"]
            for ws, op in ((first, on_first), (second, on_second))
        ]
    # then both subscribers heard both, wherever the mutation ran
    assert [c["incidentId"] for c in changes] == [rows[0]["id"]] * 2
    assert [c["incidentId"] for c in later] == [rows[1]["id"]] * 2
    assert {c["incident"]["acknowledgedBy"] for c in changes + later} == {"lb"}
    # and the connections alternated: subscribers on A and B, then mutations on A and B
    assert proxy.routed == [a.port, b.port, a.port, b.port]
