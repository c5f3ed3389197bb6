"""circuitBreakerChanged over a real WebSocket: current state first, then every committed change."""

from __future__ import annotations

from typing import Any

from tests.helpers import gql, token
from tests.live.wsclient import subscriber, wait_for_subscribers

BREAKER_CHANGED = """subscription($name: String) { circuitBreakerChanged(name: $name) {
    name state isOpen reason disabledBy incidentId consecutiveFailures
    currentIncident { id severity reason resolved }
} }"""
DISABLE = """mutation($reason: String!) { disableCircuitBreaker(reason: $reason) {
    changed breaker { state } incident { id } } }"""
ENABLE = """mutation { enableCircuitBreaker(reason: "ok again") { changed breaker { state } } }"""
DRIFT = """mutation($score: Float!) { reportBreakerDrift(driftScore: $score) {
    changed breaker { state consecutiveFailures } incident { id } } }"""


async def _run(
    http, query: str, variables: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    body = await gql(http, query, variables, **kw)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def _state(payload: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = payload["data"]["circuitBreakerChanged"]
    return state


async def test_current_state_first_then_each_committed_change(live_server, http):
    async with (
        subscriber(live_server.url, token("t1", "VIEWER")) as ws,
        subscriber(live_server.url, token("t2", "VIEWER")) as other_tenant,
    ):
        op = await ws.subscribe(BREAKER_CHANGED, {"name": "costsim_v2"})
        # the current state comes first: never written, so CLOSED
        first = _state(await ws.next(op))
        assert (first["name"], first["state"], first["currentIncident"]) == (
            "costsim_v2",
            "CLOSED",
            None,
        )
        theirs = await other_tenant.subscribe(BREAKER_CHANGED, {"name": "costsim_v2"})
        assert _state(await other_tenant.next(theirs))["state"] == "CLOSED"
        await wait_for_subscribers(live_server.url, 2)
        # when an admin disables it, then enables it
        opened = await _run(http, DISABLE, {"reason": "bad deploy"}, role="ADMIN", sub="ann")
        disabled = _state(await ws.next(op))
        await _run(http, ENABLE, role="ADMIN")
        enabled = _state(await ws.next(op))
        # then the subscriber saw each state, with its incident
        assert (disabled["state"], disabled["reason"], disabled["disabledBy"]) == (
            "OPEN",
            "bad deploy",
            "ann",
        )
        assert disabled["currentIncident"] == {
            "id": opened["disableCircuitBreaker"]["incident"]["id"],
            "severity": "P2",
            "reason": "bad deploy",
            "resolved": False,
        }
        assert (enabled["state"], enabled["currentIncident"]) == ("CLOSED", None)
        # a no-op (same reason... here: enabling a CLOSED breaker) publishes nothing
        await _run(http, ENABLE, role="ADMIN")
        assert await ws.silent(op, 0.3)
        # and the other tenant saw none of it
        assert await other_tenant.silent(theirs, 0.05)


async def test_without_a_name_every_breaker_of_the_tenant(live_server, http):
    async with subscriber(live_server.url, token("t1", "INGEST")) as ws:
        op = await ws.subscribe(BREAKER_CHANGED)
        assert _state(await ws.next(op))["name"] == "costsim_v2"
        await wait_for_subscribers(live_server.url, 1)
        # A change event carries the breaker's state read when it is delivered (a re-read on
        # the notification), so each report is awaited before the next one is sent.
        states = []
        for _ in range(3):
            await _run(http, DRIFT, {"score": 0.9}, role="INGEST")
            states.append(_state(await ws.next(op)))
        assert [s["consecutiveFailures"] for s in states[:2]] == [1, 2]
        assert states[2]["state"] == "OPEN"
        assert states[2]["currentIncident"]["severity"] == "P1"
