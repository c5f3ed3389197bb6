"""Subscription fan-out: 1,000 graphql-transport-ws subscribers, one committing mutation, how long?

    make bench-fanout                  # alone (also the last part of `make bench`)
    BENCH_FANOUT_SUBSCRIBERS=200 BENCH_FANOUT_ROUNDS=5 .venv/bin/python -m bench.fanout

Starts one gateway process (uvicorn, the production settings of `bench.peers.ours`) on the bench
database, opens N subscribers to `circuitBreakerChanged(name: "costsim_v2")` with a VIEWER token
of a tenant of its own (`bench-fanout`, so the incidents a disable opens never touch the tenants
the query benchmark reads), waits until the server's `gateway_subscribers` gauge shows all of
them, then alternates `disableCircuitBreaker` / `enableCircuitBreaker` (ADMIN) for R rounds. Per
round: the time from the mutation's HTTP response (and from its send) to the moment the LAST
subscriber's client received the event frame (timestamped on arrival, before decoding). Reports
p50 / p99 / max over the rounds and the server's RSS (VmRSS, /proc) before and with the
subscribers. The client runs on the same machine: its own frame handling is part of the time.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.database import prepare
from bench.measure import process_tree_cpu
from bench.peers import BENCH_DIR, Server, ours, token

__all__ = ["FanoutResult", "main", "render", "run_fanout"]

TENANT = "bench-fanout"
BREAKER = "costsim_v2"
PORT = 18105
SUBSCRIPTION = """subscription($name: String) { circuitBreakerChanged(name: $name) {
    name state isOpen reason } }"""
DISABLE = """mutation($reason: String!) { disableCircuitBreaker(reason: $reason) {
    changed breaker { state } } }"""
ENABLE = """mutation($reason: String) { enableCircuitBreaker(reason: $reason) {
    changed breaker { state } } }"""
PROTOCOL = Subprotocol("graphql-transport-ws")
CONNECT_CONCURRENCY = 50  # handshakes in flight at once while opening the subscribers


@dataclass
class FanoutResult:
    """One fan-out run: latencies in ms per round and the server's RSS in MiB."""

    subscribers: int
    rounds: int
    after_response_ms: list[float] = field(default_factory=list)
    after_send_ms: list[float] = field(default_factory=list)
    mutation_ms: list[float] = field(default_factory=list)
    server_cpu_ms: list[float] = field(default_factory=list)  # per round: mutation + fan-out
    missed: int = 0
    rss_idle_mib: float = 0.0
    rss_subscribed_mib: float = 0.0
    rss_after_mib: float = 0.0
    nofile: int = 0


class Subscriber:
    """One connection with one subscription; records when each state's frame arrived."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.arrivals: list[tuple[float, str]] = []
        self.event = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None

    async def start(self, auth: str) -> None:
        """connection_init, ack, subscribe, the current state (the first `next`)."""
        await self.ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": auth}})
        )
        ack = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"connection_init refused: {ack}")
        payload = {"query": SUBSCRIPTION, "variables": {"name": BREAKER}}
        await self.ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        first = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
        if first.get("type") != "next":
            raise RuntimeError(f"subscription refused: {first}")
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                arrived = time.perf_counter()  # before decoding: the frame is here
                message = json.loads(raw)
                if message.get("type") == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                elif message.get("type") == "next":
                    state = message["payload"]["data"]["circuitBreakerChanged"]["state"]
                    self.arrivals.append((arrived, state))
                    self.event.set()
        except ConnectionClosed:
            pass

    async def close(self) -> None:
        """Close the socket and its reader."""
        await self.ws.close()
        if self.reader is not None:
            await self.reader


def raise_nofile(wanted: int) -> int:
    """Raise this process's soft descriptor limit (the server started from it inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mib(pid: int) -> float:
    """VmRSS of one process, MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else 0.0


async def gauge(http: httpx.AsyncClient, name: str) -> float:
    """One unlabelled metric of the server's /metrics."""
    text = (await http.get("/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def open_subscribers(url: str, auth: str, count: int) -> list[Subscriber]:
    """Open `count` acknowledged subscribers, CONNECT_CONCURRENCY handshakes at a time."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Subscriber:
        async with gate:
            ws = await connect(url, subprotocols=[PROTOCOL], open_timeout=30, max_queue=None)
            subscriber = Subscriber(ws)
            await subscriber.start(auth)
            return subscriber

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def _rounds(server: Server, count: int, rounds: int, result: FanoutResult) -> None:
    base = f"http://127.0.0.1:{server.port}"
    viewer = f"Bearer {token(TENANT, 'VIEWER')}"
    admin = {"authorization": f"Bearer {token(TENANT, 'ADMIN')}"}
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as http:

        async def mutate(document: str, reason: str) -> None:
            response = await http.post(
                "/graphql", json={"query": document, "variables": {"reason": reason}}
            )
            body = response.json()
            if body.get("errors"):
                raise RuntimeError(f"mutation failed: {body['errors']}")

        await mutate(ENABLE, "fan-out bench start")  # CLOSED before subscribing (no-op if so)
        result.rss_idle_mib = rss_mib(server.pid)
        subscribers = await open_subscribers(
            base.replace("http", "ws", 1) + "/graphql", viewer, count
        )
        try:
            deadline = time.monotonic() + 30
            while await gauge(http, "gateway_subscribers") < count:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not register every subscriber")
                await asyncio.sleep(0.2)
            result.rss_subscribed_mib = rss_mib(server.pid)
            for n in range(rounds):
                want = "OPEN" if n % 2 == 0 else "CLOSED"
                for s in subscribers:
                    s.event.clear()
                    s.arrivals.clear()
                cpu0 = process_tree_cpu(server.pid)
                sent = time.perf_counter()
                if want == "OPEN":
                    await mutate(DISABLE, f"fan-out round {n}")
                else:
                    await mutate(ENABLE, f"fan-out round {n}")
                answered = time.perf_counter()
                waiting = [asyncio.create_task(s.event.wait()) for s in subscribers]
                _, pending = await asyncio.wait(waiting, timeout=10)
                for task in pending:
                    task.cancel()
                result.missed += len(pending)
                result.server_cpu_ms.append((process_tree_cpu(server.pid) - cpu0) * 1e3)
                arrivals = [t for s in subscribers for t, state in s.arrivals if state == want]
                last = max(arrivals) if arrivals else answered
                result.after_response_ms.append(max(0.0, last - answered) * 1e3)
                result.after_send_ms.append((last - sent) * 1e3)
                result.mutation_ms.append((answered - sent) * 1e3)
                await asyncio.sleep(0.3)  # let the server's sends drain before the next round
            result.rss_after_mib = rss_mib(server.pid)
            if rounds % 2:
                await mutate(ENABLE, "fan-out bench end")
        finally:
            await asyncio.gather(*(s.close() for s in subscribers), return_exceptions=True)


def run_fanout(url: str, *, subscribers: int = 1000, rounds: int = 10) -> FanoutResult:
    """Start one gateway process on `url`, run the rounds, stop it."""
    result = FanoutResult(subscribers=subscribers, rounds=rounds)
    result.nofile = raise_nofile(max(65536, subscribers * 4))
    (BENCH_DIR / "results").mkdir(exist_ok=True)
    server = ours("ours-fanout", db_url=url, port=PORT, pool_size=10, compiled="on")
    server.auth = f"Bearer {token(TENANT, 'VIEWER')}"
    server.start()
    try:
        uvloop.run(_rounds(server, subscribers, rounds, result))
    finally:
        server.stop()
    return result


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def render(r: FanoutResult) -> str:
    """The fan-out table (markdown)."""
    verdict = "met" if _pct(r.after_response_ms, 0.99) < 100 and not r.missed else "MISSED"
    lines = [
        f"**Fan-out** {r.subscribers:,} graphql-transport-ws subscribers to circuitBreakerChanged"
        f" on one process, {r.rounds} rounds of disable/enable (descriptor limit {r.nofile})",
        "",
        "| measured | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|",
    ]
    for label, values in (
        ("mutation response → last subscriber", r.after_response_ms),
        ("mutation send → last subscriber", r.after_send_ms),
        ("mutation round trip", r.mutation_ms),
        ("server CPU per round (mutation + fan-out)", r.server_cpu_ms),
    ):
        worst = max(values, default=float("nan"))
        lines.append(
            f"| {label} | {_pct(values, 0.5):.1f} | {_pct(values, 0.99):.1f} | {worst:.1f} |"
        )
    lines += [
        "",
        f"Server RSS: {r.rss_idle_mib:.0f} MiB idle, {r.rss_subscribed_mib:.0f} MiB with"
        f" {r.subscribers:,} subscribers, {r.rss_after_mib:.0f} MiB after the rounds;"
        f" events not received within 10 s: {r.missed}. Target p99 < 100 ms: {verdict}"
        f" (mean {statistics.fmean(r.after_response_ms or [0]):.1f} ms).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """`make bench-fanout`: BENCH_FANOUT_SUBSCRIBERS (1000), BENCH_FANOUT_ROUNDS (10)."""
    url = prepare()
    result = run_fanout(
        url,
        subscribers=int(os.environ.get("BENCH_FANOUT_SUBSCRIBERS", "1000")),
        rounds=int(os.environ.get("BENCH_FANOUT_ROUNDS", "10")),
    )
    print(render(result), flush=True)
    return 1 if result.missed else 0


if __name__ == "__main__":
    sys.exit(main())
