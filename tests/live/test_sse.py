"""Subscriptions (and queries, mutations) over graphql-sse against a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from drivers import tables as t
from gateway import sse
from gateway.settings import Settings
from tests.factories import incident_row, insert_rows
from tests.helpers import error_codes, gql, token
from tests.live.servers import GatewayProcess, ThreadedServer
from tests.live.wsclient import metric, subscriber, wait_for_subscribers

INCIDENT_CHANGED = """subscription { incidentChanged {
    kind incidentId incident { id status acknowledgedBy } } }"""
BREAKER_CHANGED = """subscription($name: String) { circuitBreakerChanged(name: $name) {
    name state reason } }"""
ACK = 'mutation($id: ID!) { acknowledgeIncident(id: $id, note: "on it") { id status } }'
DISABLE = """mutation($reason: String!) { disableCircuitBreaker(reason: $reason) { changed } }"""
EXECUTIONS = "gateway_subscription_executions_total"
KEEPALIVE = 0.3


@pytest.fixture(scope="module")
def sse_server(live_settings: Settings) -> Iterator[ThreadedServer]:
    """Its own server, with a short keep-alive so that the test can see the `: ping` comments."""
    with ThreadedServer(
        live_settings.model_copy(update={"sse_keepalive_seconds": KEEPALIVE})
    ) as server:
        yield server


@pytest.fixture
async def http(sse_server: ThreadedServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sse_server.url, timeout=10) as client:
        yield client


class EventStream:
    """One text/event-stream response, parsed by a background task into (event, data) items.

    Comments are kept as ("comment", text); the end of the body is ("end", None).
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        event, data = "message", []
        try:
            async for line in self.response.aiter_lines():
                if line.startswith(":"):
                    self._items.put_nowait(("comment", line[1:].strip()))
                elif line:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
                else:
                    if data:
                        text = "\n".join(data)
                        self._items.put_nowait((event, json.loads(text) if text else None))
                    event, data = "message", []
        except httpx.ReadError:
            pass
        self._items.put_nowait(("end", None))

    async def item(self, within: float = 5.0, *, comments: bool = False) -> tuple[str, Any]:
        """The next event (comments skipped unless asked for)."""
        while True:
            kind, data = await asyncio.wait_for(self._items.get(), within)
            if comments or kind != "comment":
                return kind, data

    async def next(self) -> dict[str, Any]:
        """The next `next` event's ExecutionResult."""
        kind, data = await self.item()
        assert kind == "next", (kind, data)
        result: dict[str, Any] = data
        return result

    async def silent(self, wait: float) -> bool:
        """True when no event (comments aside) arrives within `wait` seconds."""
        try:
            item = await self.item(wait)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected event: {item}")

    async def close(self) -> None:
        await self.response.aclose()
        await self._reader


@asynccontextmanager
async def event_stream(
    base_url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    auth: str,
    method: str = "POST",
) -> AsyncIterator[EventStream]:
    """A graphql-sse request (distinct connections mode) whose answer must be a 200 stream."""
    headers = {"accept": "text/event-stream", "authorization": f"Bearer {auth}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        if method == "GET":
            params = {"query": query, "variables": json.dumps(variables or {})}
            request = client.build_request("GET", "/graphql", params=params, headers=headers)
        else:
            body = {"query": query, "variables": variables or {}}
            request = client.build_request("POST", "/graphql", json=body, headers=headers)
        response = await client.send(request, stream=True)
        assert response.status_code == 200, (await response.aread()).decode()
        stream = EventStream(response)
        try:
            yield stream
        finally:
            await stream.close()


async def wait_for_metric(base_url: str, name: str, value: float, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while (found := await metric(base_url, name)) != value:
        assert asyncio.get_running_loop().time() < deadline, f"{name} is {found}, not {value}"
        await asyncio.sleep(0.02)


async def _status(engine: Any, incident_id: str) -> str | None:
    async with engine.connect() as conn:
        status: str | None = await conn.scalar(
            select(t.incidents.c.status).where(t.incidents.c.id == incident_id)
        )
    return status


async def test_changes_arrive_as_next_events_and_other_tenants_changes_do_not(
    sse_server, http, engine
):
    # given an incident in each of two tenants and an SSE subscriber of t1
    mine, theirs = incident_row("t1"), incident_row("t2")
    await insert_rows(engine, t.incidents, [mine, theirs])
    async with event_stream(sse_server.url, INCIDENT_CHANGED, auth=token("t1", "VIEWER")) as sse:
        assert sse.response.headers["content-type"] == "text/event-stream"
        assert sse.response.headers["cache-control"] == "no-cache, no-transform"
        assert sse.response.headers["x-request-id"]
        await wait_for_subscribers(sse_server.url, 1)
        # when t2's incident is acknowledged, then t1's (through another client)
        for row in (theirs, mine):
            body = await gql(http, ACK, {"id": row["id"]}, tenant=row["tenant_id"], role="OPERATOR")
            assert "errors" not in body, body
        # then the first event is t1's change (notifications keep commit order): t2's never came
        change = (await sse.next())["data"]["incidentChanged"]
        assert change == {
            "kind": "ACKNOWLEDGED",
            "incidentId": mine["id"],
            "incident": {"id": mine["id"], "status": "ACKNOWLEDGED", "acknowledgedBy": "alice"},
        }
        assert await sse.silent(0.3)


async def test_sse_and_websocket_subscribers_of_one_operation_share_each_execution(
    sse_server, http
):
    # given the same operation of the same caller, once over a WebSocket and once over SSE
    viewer = token("sse-share", "VIEWER")
    variables = {"name": "costsim_v2"}
    async with (
        subscriber(sse_server.url, viewer) as ws,
        event_stream(sse_server.url, BREAKER_CHANGED, variables, auth=viewer) as sse,
    ):
        op = await ws.subscribe(BREAKER_CHANGED, variables)
        # both get the current state first
        assert (await sse.next())["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
        assert (await ws.next(op))["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
        await wait_for_subscribers(sse_server.url, 2)
        before = await metric(sse_server.url, EXECUTIONS)
        # when the breaker opens
        body = await gql(http, DISABLE, {"reason": "both"}, tenant="sse-share", role="ADMIN")
        assert "errors" not in body, body
        # then both see it, from one execution
        over_sse, over_ws = await sse.next(), await ws.next(op)
        assert over_sse == over_ws
        assert over_sse["data"]["circuitBreakerChanged"] == {
            "name": "costsim_v2",
            "state": "OPEN",
            "reason": "both",
        }
        assert await metric(sse_server.url, EXECUTIONS) - before == 1


async def test_get_subscription_with_keepalive_comments(sse_server):
    # given a subscription sent as GET (what an EventSource-style client sends)
    async with event_stream(
        sse_server.url,
        BREAKER_CHANGED,
        {"name": "costsim_v2"},
        auth=token("sse-get", "VIEWER"),
        method="GET",
    ) as sse:
        assert (await sse.next())["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
        # then, while nothing changes, a `: ping` comment comes every SSE_KEEPALIVE_SECONDS
        assert await sse.item(KEEPALIVE * 10, comments=True) == ("comment", "ping")
        assert await sse.item(KEEPALIVE * 10, comments=True) == ("comment", "ping")


async def test_a_disconnect_ends_the_subscription(sse_server):
    async with event_stream(sse_server.url, INCIDENT_CHANGED, auth=token("t1", "VIEWER")):
        await wait_for_subscribers(sse_server.url, 1)
        await wait_for_metric(sse_server.url, "gateway_sse_streams", 1)
    # the client went away: the server's subscriber and its stream are gone with it
    await wait_for_subscribers(sse_server.url, 0)
    await wait_for_metric(sse_server.url, "gateway_sse_streams", 0)


async def test_query_and_mutation_answer_one_next_then_complete(sse_server, http, engine):
    row = incident_row("t1")
    await insert_rows(engine, t.incidents, [row])
    # a query
    async with event_stream(
        sse_server.url, "{ viewer { tenantId role } }", auth=token("t1", "OPERATOR")
    ) as sse:
        assert await sse.next() == {"data": {"viewer": {"tenantId": "t1", "role": "OPERATOR"}}}
        assert await sse.item() == ("complete", None)
        assert await sse.item() == ("end", None)
    # a mutation: the write is committed
    async with event_stream(
        sse_server.url, ACK, {"id": row["id"]}, auth=token("t1", "OPERATOR")
    ) as sse:
        assert await sse.next() == {
            "data": {"acknowledgeIncident": {"id": row["id"], "status": "ACKNOWLEDGED"}}
        }
        assert await sse.item() == ("complete", None)
    assert await _status(engine, row["id"]) == "ACKNOWLEDGED"
    # a stream's lifetime is counted apart from the /graphql request latencies
    text = (await http.get("/metrics")).text
    assert 'gateway_http_requests_total{path="/graphql:sse",status="200"}' in text


async def test_graphql_errors_come_as_a_next_event_with_codes(sse_server, engine):
    auth = token("t1", "VIEWER")
    # a document that does not validate
    async with event_stream(sse_server.url, "subscription { nope }", auth=auth) as sse:
        result = await sse.next()
        assert result["data"] is None
        assert error_codes(result) == ["BAD_USER_INPUT"]
        assert await sse.item() == ("complete", None)
    # a mutation the caller's role may not run: nothing executes
    async with event_stream(sse_server.url, DISABLE, {"reason": "x"}, auth=auth) as sse:
        result = await sse.next()
        assert result["data"] is None
        assert error_codes(result) == ["FORBIDDEN"]
        assert await sse.item() == ("complete", None)
    # a mutation sent with GET: refused, not run
    row = incident_row("t1")
    await insert_rows(engine, t.incidents, [row])
    operator = token("t1", "OPERATOR")
    async with event_stream(
        sse_server.url, ACK, {"id": row["id"]}, auth=operator, method="GET"
    ) as sse:
        result = await sse.next()
        assert result["data"] is None
        assert error_codes(result) == ["BAD_USER_INPUT"]
        assert await sse.item() == ("complete", None)
    assert await _status(engine, row["id"]) == "OPEN"


async def test_streamed_errors_are_coded_on_websockets_too(sse_server):
    # ErrorCodes codes every streamed result, so graphql-transport-ws's `error` has codes as well
    async with subscriber(sse_server.url, token("t1", "VIEWER")) as ws:
        op = await ws.subscribe("subscription { nope }")
        message = await ws.message(op)
    assert message["type"] == "error"
    assert [e["extensions"]["code"] for e in message["payload"]] == ["BAD_USER_INPUT"]


async def test_refusals_before_the_stream_are_json_with_codes(sse_server, engine):
    row = incident_row("t1")
    await insert_rows(engine, t.incidents, [row])
    async with httpx.AsyncClient(base_url=sse_server.url, timeout=10) as client:
        # no token: 401, as for any /graphql request
        response = await client.post(
            "/graphql", json={"query": INCIDENT_CHANGED}, headers={"accept": "text/event-stream"}
        )
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert error_codes(response.json()) == ["UNAUTHENTICATED"]
        # an Idempotency-Key: 400 naming it, and the mutation did not run
        response = await client.post(
            "/graphql",
            json={"query": ACK, "variables": {"id": row["id"]}},
            headers={
                "accept": "text/event-stream",
                "authorization": f"Bearer {token('t1', 'OPERATOR')}",
                "idempotency-key": "k1",
            },
        )
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "Idempotency-Key"}
    assert await _status(engine, row["id"]) == "OPEN"


async def test_a_stopping_server_ends_its_streams_and_exits(database_url: str, tmp_path: Path):
    # given `gateway serve` with an open subscription stream
    gateway = GatewayProcess(database_url, tmp_path, "sse")
    gateway.start()
    try:
        gateway.wait_ready()
        async with event_stream(
            gateway.url, BREAKER_CHANGED, auth=token("sse-stop", "VIEWER")
        ) as sse:
            assert (await sse.next())["data"]["circuitBreakerChanged"]["state"] == "CLOSED"
            # when it is asked to stop
            assert gateway.process is not None
            gateway.process.send_signal(signal.SIGTERM)
            # then the stream ends at once, without `complete` (the client reconnects elsewhere)
            assert await sse.item(10) == ("end", None)
        # and the process stops instead of waiting for the stream for ever (uvicorn re-raises
        # the SIGTERM it handled once its graceful shutdown is done)
        assert await asyncio.to_thread(gateway.process.wait, 10) == -signal.SIGTERM
    finally:
        gateway.stop()


async def test_a_stopping_process_refuses_new_streams(sse_server, http, monkeypatch):
    # end_event_streams() has run (the server is shutting down): a new stream is not started
    monkeypatch.setattr(sse, "_draining", True)
    response = await http.post(
        "/graphql",
        json={"query": INCIDENT_CHANGED},
        headers={"accept": "text/event-stream", "authorization": f"Bearer {token()}"},
    )
    assert response.status_code == 503
    assert error_codes(response.json()) == ["SERVICE_UNAVAILABLE"]
    # while plain requests are still answered until the server closes
    assert (await gql(http, "{ viewer { tenantId } }"))["data"] == {"viewer": {"tenantId": "t1"}}
