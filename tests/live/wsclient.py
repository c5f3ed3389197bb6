"""A small graphql-transport-ws client over a real WebSocket (the `websockets` package)."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PROTOCOL = "graphql-transport-ws"


class GraphQLWS:
    """One connection; messages are routed to per-operation queues."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def init(self, payload: dict[str, Any] | None) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await self.ws.send(json.dumps(message))
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
        if reply["type"] == "connection_ack":
            self._reader = asyncio.create_task(self._read())
        return reply

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                assert isinstance(raw, str), "graphql-transport-ws frames must be text"
                message = json.loads(raw)
                if message["type"] == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                elif "id" in message:
                    self._queues.setdefault(message["id"], asyncio.Queue()).put_nowait(message)
        except ConnectionClosed:
            pass

    async def subscribe(
        self,
        query: str | None,
        variables: dict[str, Any] | None = None,
        **extra: Any,
    ) -> str:
        """Send `subscribe`; `extra` adds payload entries (documentId, extensions); a None
        query is left out."""
        op_id = str(next(self._ids))
        self._queues.setdefault(op_id, asyncio.Queue())
        payload = {"variables": variables or {}, **extra}
        if query is not None:
            payload["query"] = query
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
        return op_id

    async def message(self, op_id: str, within: float = 5.0) -> dict[str, Any]:
        """The next message of an operation (next, error or complete)."""
        return await asyncio.wait_for(self._queues[op_id].get(), within)

    async def next(self, op_id: str, within: float = 5.0) -> dict[str, Any]:
        """The next `next` payload; fails on error/complete."""
        message = await self.message(op_id, within)
        assert message["type"] == "next", message
        payload: dict[str, Any] = message["payload"]
        return payload

    async def silent(self, op_id: str, wait: float = 0.5) -> bool:
        """True if nothing arrives for the operation within `wait` seconds."""
        try:
            message = await self.message(op_id, wait)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected message: {message}")

    async def close(self) -> None:
        await self.ws.close()
        if self._reader:
            await self._reader


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/graphql"


@asynccontextmanager
async def ws_connect(base_url: str) -> AsyncIterator[ClientConnection]:
    async with connect(ws_url(base_url), subprotocols=[PROTOCOL], open_timeout=5) as ws:  # type: ignore[list-item]
        yield ws


@asynccontextmanager
async def subscriber(base_url: str, token: str) -> AsyncIterator[GraphQLWS]:
    """A connection initialised with `{"authorization": "Bearer <token>"}` and acknowledged."""
    async with ws_connect(base_url) as ws:
        client = GraphQLWS(ws)
        reply = await client.init({"authorization": f"Bearer {token}"})
        assert reply["type"] == "connection_ack", reply
        try:
            yield client
        finally:
            await client.close()


async def metric(base_url: str, name: str) -> float:
    """One unlabelled metric's value from GET /metrics (0 when absent)."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        text = (await http.get("/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def wait_for_subscribers(base_url: str, count: int, within: float = 5.0) -> None:
    """Wait until the server has registered `count` subscribers with its hub."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await metric(base_url, "gateway_subscribers")
        if value == count:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"server has {value} subscribers, expected {count}")
        await asyncio.sleep(0.02)
