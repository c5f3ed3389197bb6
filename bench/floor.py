"""The floor: each query's hand-written single SQL statement through asyncpg, under wrk's load.

Run as its own process (`python -m bench.floor Q1 --duration 10`) so that its CPU is measured
apart from the runner's; prints one JSON line with the same figures the runner takes from wrk.
`--once` prints the statement's JSON instead (the runner compares it with the servers' data).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import asyncpg
import uvloop

from bench.measure import process_stat
from bench.queries import QUERIES, QuerySpec

__all__ = ["RefusedWrite", "main", "no_reset", "run_statement"]


def _spec(key: str) -> QuerySpec:
    return next(q for q in QUERIES if q.key == key)


async def once(url: str, spec: QuerySpec) -> Any:
    """The statement's result, decoded."""
    conn = await asyncpg.connect(url)
    try:
        if spec.mutation:
            async with conn.transaction():
                text = await run_statement(conn, spec, spec.args_for(0))
                raise _Rollback(text)
        text = await conn.fetchval(spec.floor_sql, *spec.floor_args)
    except _Rollback as rollback:
        text = rollback.text
    finally:
        await conn.close()
    return json.loads(text)


async def run_statement(conn: asyncpg.Connection, spec: QuerySpec, args: tuple[Any, ...]) -> Any:
    """The query's hand-written SQL: its lock statement first, when it has one, in one transaction.

    A write whose statement returns no row (a rule refused it) raises RefusedWrite.
    """
    if spec.floor_lock_sql is None:
        text = await conn.fetchval(spec.floor_sql, *args)
    else:
        async with conn.transaction():
            await conn.execute(spec.floor_lock_sql, args[0])
            text = await conn.fetchval(spec.floor_sql, *args)
    if spec.mutation and text is None:
        raise RefusedWrite(spec.key)
    return text


class RefusedWrite(Exception):
    """The write's checks refused it: counted as an error, as a GraphQL error would be."""


class _Rollback(Exception):
    """Leaves the checked write out of the data set."""

    def __init__(self, text: str) -> None:
        super().__init__("rollback")
        self.text = text


async def load(
    url: str, spec: QuerySpec, *, concurrency: int, duration: float, pool_size: int
) -> dict[str, Any]:
    """`concurrency` workers each sending the statement back to back for `duration` seconds."""
    # No reset on release: asyncpg's default sends four statements each time (RESET ALL, ...).
    pool = await asyncpg.create_pool(url, min_size=pool_size, max_size=pool_size, reset=no_reset)
    if pool is None:
        raise RuntimeError("asyncpg returned no pool")
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    sent = 0

    async def worker() -> None:
        nonlocal errors, sent
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            args = spec.args_for(sent)
            sent += 1
            try:
                async with pool.acquire() as conn:
                    text = await run_statement(conn, spec, args)
                # The response body a server would send: the JSON text as bytes.
                _ = (b'{"data":' + text.encode() + b"}") if text else b""
            except (asyncpg.PostgresError, OSError, RefusedWrite):
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    backends = await _backend_pids(pool, pool_size)
    pg0 = sum(_cpu(pid) for pid in backends)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    pg_cpu = sum(_cpu(pid) for pid in backends) - pg0
    await pool.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    return {
        "requests": len(latencies),
        "duration_us": int(wall * 1e6),
        "errors": errors,
        "status_errors": 0,
        "p50_us": int(pct(0.50) * 1e6),
        "p99_us": int(pct(0.99) * 1e6),
        "client_cpu_s": cpu,
        "pg_cpu_s": pg_cpu,
        "pid": os.getpid(),
    }


async def no_reset(conn: asyncpg.Connection) -> None:
    return None


async def _backend_pids(pool: asyncpg.Pool, size: int) -> list[int]:
    """The server pids behind every pooled connection (their CPU is the floor's PostgreSQL CPU)."""
    conns = [await pool.acquire() for _ in range(size)]
    try:
        return [int(await c.fetchval("SELECT pg_backend_pid()")) for c in conns]
    finally:
        for c in conns:
            await pool.release(c)


def _cpu(pid: int) -> float:
    stat = process_stat(pid)
    return stat[1] if stat else 0.0


def main() -> None:
    """CLI entry: `python -m bench.floor <Qn> [--once] [--duration s] ...`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("query", choices=[q.key for q in QUERIES])
    parser.add_argument("--url", required=True)
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    spec = _spec(args.query)
    if args.once:
        print(json.dumps(uvloop.run(once(args.url, spec))))
        return
    result = uvloop.run(
        load(
            args.url,
            spec,
            concurrency=args.concurrency,
            duration=args.duration,
            pool_size=args.pool_size,
        )
    )
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
