"""Subscription fan-out: N graphql-transport-ws subscribers on one gateway process, one mutation.

    make bench-fanout                                   # 1,000 then 10,000 subscribers
    BENCH_FANOUT_SUBSCRIBERS=1000 BENCH_FANOUT_ROUNDS=5 .venv/bin/python -m bench.fanout

Starts one gateway process (uvicorn, the production settings of `bench.peers.ours`, listen
backlog 4096) and BENCH_FANOUT_CLIENTS client processes (default: one per 2,500 subscribers, at
least one, at most 4) that together open N subscribers to
`circuitBreakerChanged(name: "costsim_v2")` with a VIEWER token of a tenant of their own
(`bench-fanout`). It waits until the server's `gateway_subscribers` gauge shows all of them, then
alternates `disableCircuitBreaker` / `enableCircuitBreaker` (ADMIN, from this process) for R
rounds. Per round: the time from the mutation's HTTP response (and from its send) to the moment
the LAST subscriber's socket received the event frame, timestamped on arrival with the monotonic
clock every process shares.

The clients are kept light so that they take as little of the 2 CPUs from the server as possible:
a raw asyncio protocol per socket that frames its three messages itself, answers pings, and on an
event frame only looks for `"state":"OPEN"` / `"state":"CLOSED"` in the bytes (no JSON decoding,
no per-message task). Their CPU time per round is reported beside the server's, so what they
took is visible. RSS per idle subscriber: the server's VmRSS with N subscribers that received
nothing yet, minus its VmRSS before the first connection, divided by N.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
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

from bench.database import bench_url, prepare
from bench.measure import process_tree_cpu
from bench.peers import BENCH_DIR, Server, ours, token
from bench.private_pg import server_from_env
from bench.seed import Scale

__all__ = ["FanoutResult", "main", "render", "run_fanout"]

TENANT = "bench-fanout"
BREAKER = "costsim_v2"
PORT = 18105
BACKLOG = 4096  # the machine's net.core.somaxconn; uvicorn's default is 2048
SUBSCRIPTION = """subscription($name: String) { circuitBreakerChanged(name: $name) {
    name state isOpen reason } }"""
DISABLE = """mutation($reason: String!) { disableCircuitBreaker(reason: $reason) {
    changed breaker { state } } }"""
ENABLE = """mutation($reason: String) { enableCircuitBreaker(reason: $reason) {
    changed breaker { state } } }"""
CONNECT_CONCURRENCY = 50  # handshakes in flight at once per client process
PER_CLIENT = 2500  # subscribers per client process by default
TARGETS_MS = {1000: 100.0, 10000: 250.0}  # issue 16 item 4: p99 commit -> last subscriber
RSS_TARGET_KIB = 60.0
# The fan-out bench needs no seeded rows, only the schema: its own small database.
FANOUT_SCALE = Scale(tenants=1, incidents=1, events=1, limits=1, breaches=1, overrides=1, lessons=1)


@dataclass
class FanoutResult:
    """One fan-out run: latencies in ms per round, CPU per round, the server's RSS in MiB."""

    subscribers: int
    rounds: int
    clients: int = 1
    after_response_ms: list[float] = field(default_factory=list)
    after_send_ms: list[float] = field(default_factory=list)
    mutation_ms: list[float] = field(default_factory=list)
    server_cpu_ms: list[float] = field(default_factory=list)  # per round: mutation + fan-out
    client_cpu_ms: list[float] = field(default_factory=list)  # per round: all client processes
    missed: int = 0
    rss_idle_mib: float = 0.0
    rss_subscribed_mib: float = 0.0
    rss_after_mib: float = 0.0
    nofile: int = 0

    @property
    def kib_per_subscriber(self) -> float:
        """Server RSS per idle subscriber, KiB."""
        if not self.subscribers:
            return 0.0
        return (self.rss_subscribed_mib - self.rss_idle_mib) * 1024 / self.subscribers


# --- the client processes -------------------------------------------------------------------------


def _frame(text: str) -> bytes:
    """One masked client text frame (clients must mask; these are three short messages)."""
    data = text.encode()
    key = os.urandom(4)
    n = len(data)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
    mask = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(data, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
    return head + key + body


def _control(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(body)]) + key + body


_STATE = re.compile(rb'"state":"([A-Z_]+)"')


class _Round:
    """This client process's sockets that have received the awaited state (no polling)."""

    want = ""
    received = 0
    target = 0
    done: asyncio.Event | None = None

    @classmethod
    def arrived(cls, state: str) -> None:
        if state == cls.want:
            cls.received += 1
            if cls.received >= cls.target and cls.done is not None:
                cls.done.set()


class _Socket(asyncio.Protocol):
    """One subscriber: handshake, connection_init, subscribe, then arrival times per state."""

    def __init__(self, host: str, auth: str) -> None:
        self.host = host
        self.auth = auth
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.stage = 0  # 0: waiting for the ack, 1: for the current state, 2: live
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.seen: dict[str, float] = {}
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(  # type: ignore[union-attr]
            (
                f"GET /graphql HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
        buffer = self.buffer + data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self._fail(f"handshake refused: {buffer[:80]!r}")
                return
            self.upgraded = True
            buffer = buffer[end + 4 :]
            self._send(
                json.dumps({"type": "connection_init", "payload": {"authorization": self.auth}})
            )
        while len(buffer) >= 2:
            opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    break
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    break
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                break
            payload, buffer = buffer[start : start + length], buffer[start + length :]
            self._message(opcode, payload, arrived)
        self.buffer = buffer

    def _message(self, opcode: int, payload: bytes, arrived: float) -> None:
        if opcode == 0x9:  # ping: pong, or uvicorn closes the socket after ws_ping_timeout
            self.transport.write(_control(0xA, payload))  # type: ignore[union-attr]
            return
        if opcode == 0x8:
            self.closed = True
            if not self.ready.done():
                self._fail(f"closed: {payload!r}")
            return
        if opcode != 0x1:
            return
        if self.stage == 2:
            found = _STATE.search(payload)
            if found is not None:
                state = found.group(1).decode()
                if state not in self.seen:
                    self.seen[state] = arrived
                    _Round.arrived(state)
            elif b'"type":"ping"' in payload:
                self._send('{"type":"pong"}')
            return
        message = json.loads(payload)
        if self.stage == 0 and message.get("type") == "connection_ack":
            self.stage = 1
            subscribe = {"query": SUBSCRIPTION, "variables": {"name": BREAKER}}
            self._send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        elif self.stage == 1 and message.get("type") == "next":
            self.stage = 2
            self.ready.set_result(None)
        elif message.get("type") != "ping":
            self._fail(f"unexpected message: {message}")

    def _send(self, text: str) -> None:
        self.transport.write(_frame(text))  # type: ignore[union-attr]

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(why))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(f"connection lost: {exc}")


async def _open(host: str, port: int, auth: str, count: int) -> list[_Socket]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> _Socket:
        async with gate:
            _, sock = await loop.create_connection(
                lambda: _Socket(f"{host}:{port}", auth), host, port
            )
            await asyncio.wait_for(sock.ready, 60)
            return sock

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def _client(host: str, port: int) -> None:
    """A client process: commands on stdin (JSON lines), one answer line each on stdout."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    sockets: list[_Socket] = []
    cpu0 = 0.0

    def answer(value: object) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["op"] == "open":
            sockets = await _open(host, port, cmd["auth"], cmd["count"])
            answer({"open": len(sockets)})
        elif cmd["op"] == "expect":
            _Round.want, _Round.received, _Round.target = cmd["state"], 0, len(sockets)
            _Round.done = asyncio.Event()
            for sock in sockets:
                sock.seen.clear()
            cpu0 = time.process_time()
            answer({"ok": True})
        elif cmd["op"] == "collect":
            if _Round.done is not None and _Round.received < _Round.target:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_Round.done.wait(), cmd["timeout"])
            want = _Round.want
            times = [s.seen[want] for s in sockets if want in s.seen]
            answer(
                {
                    "last": max(times, default=0.0),
                    "missed": len(sockets) - len(times),
                    "cpu": time.process_time() - cpu0,
                }
            )
        elif cmd["op"] == "close":
            for sock in sockets:
                if sock.transport is not None:
                    sock.transport.close()
            answer({"closed": len(sockets)})
            return


class _ClientProcess:
    """The coordinator's handle on one client process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, port: int) -> _ClientProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fanout",
            "--client",
            str(port),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def ask(self, **cmd: object) -> dict[str, float]:
        if self.proc.stdin is None or self.proc.stdout is None:
            raise RuntimeError("fan-out client without pipes")
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fan-out client exited ({await self.proc.wait()})")
        answer: dict[str, float] = json.loads(line)
        return answer

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.ask(op="close"), 30)
            except (RuntimeError, TimeoutError, BrokenPipeError, ConnectionResetError):
                self.proc.kill()
        await self.proc.wait()


# --- the coordinator ------------------------------------------------------------------------------


def raise_nofile(wanted: int) -> int:
    """Raise this process's soft descriptor limit (processes started from it inherit it)."""
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


def _split(count: int, parts: int) -> list[int]:
    return [count // parts + (1 if i < count % parts else 0) for i in range(parts)]


async def _rounds(server: Server, count: int, rounds: int, result: FanoutResult) -> None:
    base = f"http://127.0.0.1:{server.port}"
    viewer = f"Bearer {token(TENANT, 'VIEWER')}"
    admin = {"authorization": f"Bearer {token(TENANT, 'ADMIN')}"}
    clients = [await _ClientProcess.start(server.port) for _ in range(result.clients)]
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=60) as http:

        async def mutate(document: str, reason: str) -> None:
            response = await http.post(
                "/graphql", json={"query": document, "variables": {"reason": reason}}
            )
            body = response.json()
            if body.get("errors"):
                raise RuntimeError(f"mutation failed: {body['errors']}")

        try:
            await mutate(ENABLE, "fan-out bench start")  # CLOSED before subscribing (no-op if so)
            await asyncio.sleep(0.5)
            result.rss_idle_mib = rss_mib(server.pid)
            await asyncio.gather(
                *(
                    c.ask(op="open", auth=viewer, count=n)
                    for c, n in zip(clients, _split(count, len(clients)), strict=True)
                )
            )
            deadline = time.monotonic() + 60
            while await gauge(http, "gateway_subscribers") < count:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not register every subscriber")
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # let the last subscribers settle (idle)
            result.rss_subscribed_mib = rss_mib(server.pid)
            for n in range(rounds):
                want = "OPEN" if n % 2 == 0 else "CLOSED"
                await asyncio.gather(*(c.ask(op="expect", state=want) for c in clients))
                cpu0 = process_tree_cpu(server.pid)
                sent = time.perf_counter()
                await mutate(DISABLE if want == "OPEN" else ENABLE, f"fan-out round {n}")
                answered = time.perf_counter()
                answers = await asyncio.gather(*(c.ask(op="collect", timeout=10) for c in clients))
                result.server_cpu_ms.append((process_tree_cpu(server.pid) - cpu0) * 1e3)
                result.client_cpu_ms.append(sum(a["cpu"] for a in answers) * 1e3)
                result.missed += int(sum(a["missed"] for a in answers))
                last = max((a["last"] for a in answers), default=answered) or answered
                result.after_response_ms.append(max(0.0, last - answered) * 1e3)
                result.after_send_ms.append((last - sent) * 1e3)
                result.mutation_ms.append((answered - sent) * 1e3)
                await asyncio.sleep(0.3)  # let the server's sends drain before the next round
            result.rss_after_mib = rss_mib(server.pid)
            if rounds % 2:
                await mutate(ENABLE, "fan-out bench end")
        finally:
            await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)


def _client_count(subscribers: int) -> int:
    configured = os.environ.get("BENCH_FANOUT_CLIENTS")
    if configured:
        return max(1, int(configured))
    return max(1, min(4, -(-subscribers // PER_CLIENT)))


def run_fanout(url: str, *, subscribers: int = 1000, rounds: int = 10) -> FanoutResult:
    """Start one gateway process on `url`, run the rounds, stop it."""
    result = FanoutResult(subscribers=subscribers, rounds=rounds)
    result.clients = _client_count(subscribers)
    result.nofile = raise_nofile(max(65536, subscribers + 1024))
    (BENCH_DIR / "results").mkdir(exist_ok=True)
    server = ours("ours-fanout", db_url=url, port=PORT, pool_size=10, compiled="on")
    server.argv += ["--backlog", str(BACKLOG)]
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
    target = TARGETS_MS.get(r.subscribers, 250.0 if r.subscribers > 1000 else 100.0)
    met = _pct(r.after_response_ms, 0.99) < target and not r.missed
    lines = [
        f"**Fan-out** {r.subscribers:,} graphql-transport-ws subscribers to circuitBreakerChanged"
        f" on one process ({r.clients} client process(es)), {r.rounds} rounds of disable/enable"
        f" (descriptor limit {r.nofile})",
        "",
        "| measured | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|",
    ]
    for label, values in (
        ("mutation response → last subscriber", r.after_response_ms),
        ("mutation send → last subscriber", r.after_send_ms),
        ("mutation round trip", r.mutation_ms),
        ("server CPU per round (mutation + fan-out)", r.server_cpu_ms),
        ("client CPU per round (all client processes)", r.client_cpu_ms),
    ):
        worst = max(values, default=float("nan"))
        lines.append(
            f"| {label} | {_pct(values, 0.5):.1f} | {_pct(values, 0.99):.1f} | {worst:.1f} |"
        )
    lines += [
        "",
        f"Server RSS: {r.rss_idle_mib:.0f} MiB idle, {r.rss_subscribed_mib:.0f} MiB with"
        f" {r.subscribers:,} subscribers ({r.kib_per_subscriber:.1f} KiB per idle subscriber,"
        f" target ≤ {RSS_TARGET_KIB:.0f}), {r.rss_after_mib:.0f} MiB after the rounds;"
        f" events not received within 10 s: {r.missed}. Target p99 < {target:.0f} ms:"
        f" {'met' if met else 'MISSED'}"
        f" (mean {statistics.fmean(r.after_response_ms or [0]):.1f} ms).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """`make bench-fanout`: BENCH_FANOUT_SUBSCRIBERS ("1000,10000"), BENCH_FANOUT_ROUNDS (10)."""
    if len(sys.argv) == 3 and sys.argv[1] == "--client":
        raise_nofile(65536)
        uvloop.run(_client("127.0.0.1", int(sys.argv[2])))
        return 0
    with server_from_env():
        url = prepare(FANOUT_SCALE, bench_url("gw_bench_fanout"))
        rounds = int(os.environ.get("BENCH_FANOUT_ROUNDS", "10"))
        missed = 0
        for count in os.environ.get("BENCH_FANOUT_SUBSCRIBERS", "1000,10000").split(","):
            result = run_fanout(url, subscribers=int(count), rounds=rounds)
            print(render(result), flush=True)
            missed += result.missed
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
