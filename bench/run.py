"""`make bench`: seed, start every peer, check they agree, load each with wrk, print the table.

Environment: BENCH_DURATION (s per run, default 10), BENCH_WARMUP (s, default 2),
BENCH_QUICK=1 (2 s runs, 1 s warm-up: a ~1-minute smoke run), BENCH_CONNECTIONS (16),
BENCH_THREADS (2), BENCH_POOL_SIZE (10), BENCH_WORKERS (whole-machine run, default nproc; 0 skips
it), BENCH_QUERIES (e.g. "Q1,Q3"), BENCH_RECORD (1 = append the run to bench/RESULTS.md; default
1 unless quick), BENCH_FANOUT_SUBSCRIBERS (1000; 0 skips the fan-out run, see bench/fanout.py),
BENCH_FANOUT_ROUNDS (10; 4 when quick), DATABASE_URL / BENCH_DATABASE_URL (see bench/database.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.compare import comparable, first_difference, normalise
from bench.database import prepare
from bench.fanout import render as render_fanout
from bench.fanout import run_fanout
from bench.measure import PgProbe, process_tree_cpu
from bench.peers import (
    BENCH_DIR,
    ROOT,
    Server,
    gateway_dir,
    http_floor,
    ours,
    post_json,
    postgraphile,
    token,
)
from bench.private_pg import server_from_env
from bench.queries import QUERIES, TENANT, QuerySpec
from bench.report import Row, machine_header, render

__all__ = ["main"]

READ_PATH_HEADER = "x-gateway-read-path"
LUA = BENCH_DIR / "lua" / "post.lua"
LUA_ROTATING = BENCH_DIR / "lua" / "post_rotating.lua"
LUA_UNIQUE = BENCH_DIR / "lua" / "post_unique.lua"
# What a server is: our gateway, PostGraphile, or the HTTP floor; each gets its own body.
OURS, PGL, HTTP_FLOOR = "ours", "postgraphile", "http-floor"
STATEMENT_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class Config:
    """Run settings from the environment."""

    duration: float
    warmup: float
    connections: int
    threads: int
    pool_size: int
    workers: int
    queries: tuple[str, ...]
    record: bool
    fanout: int
    fanout_rounds: int

    @classmethod
    def from_env(cls) -> Config:
        """Read BENCH_* (see the module docstring)."""
        quick = os.environ.get("BENCH_QUICK") == "1"
        env = os.environ.get
        wanted = env("BENCH_QUERIES", "")
        return cls(
            duration=float(env("BENCH_DURATION", "2" if quick else "10")),
            warmup=float(env("BENCH_WARMUP", "1" if quick else "2")),
            connections=int(env("BENCH_CONNECTIONS", "16")),
            threads=int(env("BENCH_THREADS", "2")),
            pool_size=int(env("BENCH_POOL_SIZE", "10")),
            workers=int(env("BENCH_WORKERS", str(os.cpu_count() or 1))),
            queries=tuple(q.strip() for q in wanted.split(",") if q.strip())
            or tuple(q.key for q in QUERIES),
            record=env("BENCH_RECORD", "0" if quick else "1") == "1",
            fanout=int(env("BENCH_FANOUT_SUBSCRIBERS", "1000")),
            fanout_rounds=int(env("BENCH_FANOUT_ROUNDS", "4" if quick else "10")),
        )

    def label(self) -> str:
        """The settings line of the report."""
        return (
            f"wrk -t{self.threads} -c{self.connections}, {self.duration:g} s per run after"
            f" {self.warmup:g} s warm-up, pool {self.pool_size}, whole machine ="
            f" {self.workers} workers"
        )


class Bench:
    """Holds the database probe and the rows measured so far."""

    def __init__(self, cfg: Config, url: str) -> None:
        self.cfg = cfg
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.probe = self.loop.run_until_complete(PgProbe.open(url))
        self.rows: list[Row] = []
        self.running: list[Server] = []  # started servers, watched until idle between loads
        self.reference: dict[str, Any] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))

    def specs(self) -> list[QuerySpec]:
        """The queries selected for this run."""
        return [q for q in QUERIES if q.key in self.cfg.queries]

    def floor_once(self, spec: QuerySpec) -> Any:
        """The floor statement's data: the reference every peer is compared with."""
        out = subprocess.run(
            [sys.executable, "-m", "bench.floor", spec.key, "--url", self.url, "--once"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout)

    def check(
        self, server: Server, spec: QuerySpec, payload: dict[str, Any], kind: str
    ) -> tuple[str | None, str | None]:
        """(None when the server returns the reference data, else what differs; read path).

        The read path is our X-Gateway-Read-Path answer (None for the other peers), reported
        in the table so that each row says which path served it.
        """
        body, headers = post_json(server.url, _rotated(payload, 0), self.auth(spec, kind))
        served = headers.get(READ_PATH_HEADER)
        self.after_write(spec)
        if body.get("errors"):
            problem = "; ".join(e.get("message", "?") for e in body["errors"])[:200]
            return "errors: " + problem, served
        want = comparable(self.reference[spec.key], mutation=spec.mutation)
        got = comparable(body.get("data"), mutation=spec.mutation)
        if kind == PGL and spec.pgl_ignore:
            want, got = _without(want, spec.pgl_ignore), _without(got, spec.pgl_ignore)
        diff = first_difference(normalise(got, want), normalise(want, want))
        if diff:
            return f"data differs at {diff}", served
        if server.read_path and not spec.mutation and served != server.read_path:
            # e.g. the compiled peer quietly falling back: its numbers would be the resolver's
            return f"served by {served or 'no read path header'}, not {server.read_path}", served
        return None, served

    def measure(
        self, query: str, peer: str, run: Callable[[], dict[str, Any]], cpu: Callable[[], float]
    ) -> Row:
        """Run one load with CPU, PostgreSQL CPU and statement counters around it."""
        self.quiesce(self.running)
        before = self.loop.run_until_complete(self.probe.sample())
        cpu0 = cpu()
        result = run()
        cpu1 = cpu()
        after = self.loop.run_until_complete(self.probe.sample())
        n = max(1, int(result["requests"]))
        statements = (
            (after.statements - before.statements) / n
            if after.statements is not None and before.statements is not None
            else None
        )
        server_cpu = result.get("client_cpu_s", cpu1 - cpu0)
        errors = (
            int(result["errors"]) + int(result["status_errors"]) + int(result.get("gql_errors", 0))
        )
        return Row(
            query=query,
            peer=peer,
            requests=int(result["requests"]),
            seconds=int(result["duration_us"]) / 1e6,
            p50_ms=int(result["p50_us"]) / 1e3,
            p99_ms=int(result["p99_us"]) / 1e3,
            statements=statements,
            server_cpu_ms=server_cpu * 1e3 / n,
            pg_cpu_ms=result.get("pg_cpu_s", PgProbe.cpu_between(before, after)) * 1e3 / n,
            note=f"FLAGGED: {errors} errors" if errors else "",
        )

    def auth(self, spec: QuerySpec, kind: str) -> str:
        """Our gateway's Authorization header for the query's tenant; none for the others."""
        return f"Bearer {token(spec.tenant)}" if kind == OURS else ""

    def wrk(
        self, server: Server, body: Path, seconds: float, spec: QuerySpec, auth: str
    ) -> dict[str, Any]:
        """Wrk -cN against the server with the Lua POST script; returns its BENCH_JSON line."""
        script = LUA_UNIQUE if spec.unique else LUA_ROTATING if spec.rotate else LUA
        out = subprocess.run(
            [
                "wrk",
                f"-t{self.cfg.threads}",
                f"-c{self.cfg.connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                server.url,
                "--",
                str(body),
                auth,
                str(spec.rotate),
                str(self.cfg.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON "))
        parsed: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
        return parsed

    def load_server(self, server: Server, spec: QuerySpec, kind: str) -> Row:
        """Check the server's data, warm it up, then measure it under wrk."""
        payload = _payload(spec, kind)
        problem, served = self.check(server, spec, payload, kind)
        if problem and problem.startswith("errors"):
            print(f"  {spec.key} {server.name}: skipped ({problem})", flush=True)
            return Row(spec.key, server.name, note=f"skipped: {problem}", read_path=served)
        repeat = server.name == "ours-compiled" and served == "resolver" and not spec.mutation
        if repeat:
            # ours-compiled answered on the resolver path: its load would repeat ours-resolver's
            note = f"{problem}: not loaded, see ours-resolver"
            print(f"  {spec.key} {server.name}: {note}", flush=True)
            return Row(spec.key, server.name, note=note, read_path=served)
        body = self.tmp / f"{spec.key}-{server.name}.json"
        body.write_text(json.dumps(payload))
        self.wrk(server, body, self.cfg.warmup, spec, self.auth(spec, kind))
        self.after_write(spec)
        row = self.measure(
            spec.key,
            server.name,
            lambda: self.wrk(server, body, self.cfg.duration, spec, self.auth(spec, kind)),
            lambda: process_tree_cpu(server.pid),
        )
        self.after_write(spec)
        same = problem is None or problem.startswith("served by")
        note = row.note if problem is None else f"{problem} {row.note}".strip()
        if not row.requests:
            note = f"no request completed within {self.cfg.duration:g} s {note}".strip()
        statements = self.statements_per_request(server, payload, spec, self.auth(spec, kind))
        row = Row(
            **{
                **_fields(row),
                "same_data": same,
                "note": note,
                "statements": statements,
                "read_path": served,
            }
        )
        print(f"  {spec.key} {server.name}: {row.rps:,.0f} req/s {row.note}", flush=True)
        return row

    def quiesce(self, servers: list[Server], limit: float = 60.0) -> None:
        """Wait until requests left in flight by the previous load have drained.

        A server keeps working on the requests wrk had sent when it stopped; that work must not
        count against the next measurement. Idle = no statement, and under 20 ms of CPU in the
        database backends (the publisher's left out) and 40 ms in each server, over half a second.
        """
        deadline = time.monotonic() + limit
        previous = self.loop.run_until_complete(self.probe.sample())
        server_cpu = [process_tree_cpu(s.pid) for s in servers]
        while time.monotonic() < deadline:
            time.sleep(0.5)
            current = self.loop.run_until_complete(self.probe.sample())
            now_cpu = [process_tree_cpu(s.pid) for s in servers]
            # The outbox publisher polls on (~15 ms of gateway CPU per half second): its
            # backends are left out and a server may spend up to 40 ms.
            busy = PgProbe.cpu_between(previous, current, publisher=False) > 0.02 or any(
                b - a > 0.04 for a, b in zip(server_cpu, now_cpu, strict=True)
            )
            if current.statements != previous.statements or busy:
                previous, server_cpu = current, now_cpu
                continue
            return

    def statements_per_request(
        self, server: Server, payload: dict[str, Any], spec: QuerySpec, auth: str
    ) -> float | None:
        """Statements per request from a few sequential requests, when they can be counted.

        Exact, unlike the count over the wrk run, where requests in flight at its start and end
        add statements without adding completed requests.
        """
        if not self.probe.has_statements:
            return None
        self.quiesce(self.running)
        before = self.loop.run_until_complete(self.probe.sample())
        for n in range(STATEMENT_SAMPLES):
            post_json(server.url, _rotated(payload, n), auth)
        after = self.loop.run_until_complete(self.probe.sample())
        self.after_write(spec)
        if before.statements is None or after.statements is None:
            return None
        return (after.statements - before.statements) / STATEMENT_SAMPLES

    def load_floor(self, spec: QuerySpec) -> Row:
        """The floor's own load process (its client CPU is reported as its server CPU)."""
        argv = [sys.executable, "-m", "bench.floor", spec.key, "--url", self.url]
        argv += [f"--concurrency={self.cfg.connections}", f"--pool-size={self.cfg.pool_size}"]

        def run(seconds: float) -> dict[str, Any]:
            out = subprocess.run(
                [*argv, f"--duration={seconds}"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON "))
            parsed: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return parsed

        run(self.cfg.warmup)
        self.after_write(spec)
        row = self.measure(spec.key, "floor", lambda: run(self.cfg.duration), lambda: 0.0)
        self.after_write(spec)
        print(f"  {spec.key} floor: {row.rps:,.0f} req/s", flush=True)
        return Row(**{**_fields(row), "same_data": True})

    def after_write(self, spec: QuerySpec) -> None:
        """Delete what a write left (audit rows are append-only and stay).

        After the requests still in flight have finished: a write committed after the cleanup
        would collide with the next load's (Q7's one open override per limit).
        """
        if spec.cleanup_sql:
            self.quiesce(self.running)
            self.loop.run_until_complete(self.probe.conn.execute(spec.cleanup_sql))

    def close(self) -> None:
        """Release the probe and the temp files."""
        self.loop.run_until_complete(self.probe.close())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _has_compiled_reads() -> bool:
    """Whether the gateway being measured reads GATEWAY_COMPILED_READS (the compiled path)."""
    probe = (
        "import os\n"
        "from gateway.settings import Settings\n"
        "dumps = []\n"
        "for value in ('on', 'off'):\n"
        "    os.environ['GATEWAY_COMPILED_READS'] = value\n"
        "    dumps.append(Settings().model_dump())\n"
        "print(dumps[0] != dumps[1])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=gateway_dir(),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip() == "True"


def _settings_line(cfg: Config, url: str) -> str:
    where = urlsplit(url)
    private = " (private cluster, pg_stat_statements)" if os.environ.get("BENCH_PRIVATE_PG") else ""
    line = f"{cfg.label()}; database {where.hostname}:{where.port}{where.path}{private}"
    if gateway_dir() != ROOT:
        line += f"; gateway from {gateway_dir()}"
    return line


def _payload(spec: QuerySpec, kind: str) -> dict[str, Any]:
    """The POST body for one kind of server (with __ROT__ where a write rotates)."""
    if kind == PGL:
        return {"query": spec.postgraphile, "variables": spec.pgl_variables}
    if kind == HTTP_FLOOR:
        return {"q": spec.key, "args": list(spec.floor_args)}
    return {"query": spec.ours, "variables": spec.variables}


def _rotated(value: Any, n: int) -> Any:
    """`value` with __ROT__ replaced by the n-th number (00001 for n = 0), as the loads do."""
    if isinstance(value, str):
        return value.replace("__ROT__", f"{n + 1:05d}")
    if isinstance(value, dict):
        return {k: _rotated(v, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_rotated(v, n) for v in value]
    return value


def _without(value: Any, keys: frozenset[str]) -> Any:
    """`value` without the given keys at any depth (what a peer cannot answer alike)."""
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def _fields(row: Row) -> dict[str, Any]:
    return {name: getattr(row, name) for name in Row.__slots__}


def _require(tool: str, hint: str) -> None:
    if shutil.which(tool) is None:
        raise SystemExit(f"{tool} not found: {hint}")


def main() -> int:
    """Run the whole benchmark (on a private PostgreSQL with BENCH_PRIVATE_PG=1)."""
    _require("wrk", "run `make bench` (it installs wrk) or apt-get install wrk")
    with server_from_env():
        return _run()


def _run() -> int:
    cfg = Config.from_env()
    url = prepare()
    (BENCH_DIR / "results").mkdir(exist_ok=True)
    bench = Bench(cfg, url)
    compiled = _has_compiled_reads()
    servers: list[tuple[Server, str]] = []
    if compiled:
        servers.append(
            (
                ours(
                    "ours-compiled", db_url=url, port=18101, pool_size=cfg.pool_size, compiled="on"
                ),
                OURS,
            )
        )
    else:
        print("compiled reads are not in this build: measuring the resolver path only", flush=True)
    servers.append(
        (
            ours("ours-resolver", db_url=url, port=18102, pool_size=cfg.pool_size, compiled="off"),
            OURS,
        )
    )
    servers.append((postgraphile(db_url=url, port=18103, pool_size=cfg.pool_size), PGL))
    servers.append((http_floor(db_url=url, port=18106, pool_size=cfg.pool_size), HTTP_FLOOR))
    auth = f"Bearer {token(TENANT)}"
    try:
        for server, kind in servers:
            server.auth = auth if kind == OURS else ""
            server.start()
            bench.running.append(server)
        for spec in bench.specs():
            bench.after_write(spec)  # what an interrupted run may have left
            bench.reference[spec.key] = bench.floor_once(spec)
            print(f"{spec.key}: {spec.title}", flush=True)
            for server, kind in servers:
                bench.rows.append(bench.load_server(server, spec, kind))
            bench.rows.append(bench.load_floor(spec))
    finally:
        for server, _ in servers:
            server.stop()
        bench.running.clear()
    if cfg.workers > 0:
        _whole_machine(bench, url, auth, compiled)
    fanout_text = ""
    if cfg.fanout > 0:
        print(f"fan-out: {cfg.fanout} subscribers", flush=True)
        fanout = run_fanout(url, subscribers=cfg.fanout, rounds=cfg.fanout_rounds)
        fanout_text = "\n" + render_fanout(fanout)
    pg_version = bench.loop.run_until_complete(bench.probe.conn.fetchval("SHOW server_version"))
    bench.close()
    titles = {q.key: q.title for q in QUERIES if q.key in cfg.queries}
    statements_note = (
        ""
        if bench.probe.has_statements
        else "\nSQL/req is n/a: pg_stat_statements is not in the server's"
        " shared_preload_libraries (see bench/README.md).\n"
    )
    text = (
        machine_header(str(pg_version), gateway_dir(), _settings_line(cfg, url))
        + "\n"
        + render(bench.rows, titles)
        + statements_note
        + fanout_text
    )
    print("\n" + text)
    if cfg.record:
        with open(BENCH_DIR / "RESULTS.md", "a") as results:
            results.write("\n## Run " + text.split("\n", 1)[0].removeprefix("- date: ") + "\n\n")
            results.write(text)
        print("appended to bench/RESULTS.md")
    return 0


def _whole_machine(bench: Bench, url: str, auth: str, compiled: bool) -> None:
    """Ours with the recommended worker count (one per CPU), each query, same wrk load."""
    cfg = bench.cfg
    name = f"ours-{'compiled' if compiled else 'resolver'}-{cfg.workers}w"
    server = ours(
        name,
        db_url=url,
        port=18104,
        pool_size=cfg.pool_size,
        compiled="on" if compiled else "off",
        workers=cfg.workers,
    )
    server.auth = auth
    print(f"whole machine: {name}", flush=True)
    try:
        server.start()
        bench.running.append(server)
        for spec in bench.specs():
            bench.rows.append(bench.load_server(server, spec, OURS))
    finally:
        server.stop()
        bench.running.clear()


if __name__ == "__main__":
    raise SystemExit(main())
