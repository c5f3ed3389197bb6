"""Writes/s with change notifications sent directly (pg_notify) or through the outbox.

    make bench-writes
    BENCH_WRITES_SECONDS=5 BENCH_WRITES_CLIENTS=16,64 .venv/bin/python -m bench.write_throughput

What a writer does: the statement the unit of work closes every mutation with
(drivers/audit.insert_audit_and_notify: the audit row - the transaction's one-row insert - and
one notification), compiled from the real SQLAlchemy statement, between BEGIN and COMMIT, as
pgbench clients (-M prepared, like the gateway) so that the client's CPU is small next to the
server's. Three variants on one database: `none` (the same audit insert, no notification: the
ceiling), `direct` (pg_notify in the statement) and `outbox` (a change_outbox row; this
process runs the publisher, gateway/publisher.py, as a gateway would). A LISTEN connection is
open throughout, as on a gateway.

Latency: while pgbench runs, a probe writes 20 changes/s through the real unit-of-work statement
(SQLAlchemy, the mode's engine option) and times commit (its COMMIT sent) -> the listener got
the payload; the same probe runs once more with no load. Reported as p50 / p99 in ms.

Environment: DATABASE_URL / BENCH_DATABASE_URL (bench/database.py; the database is
`gw_bench_writes`), BENCH_WRITES_SECONDS (10), BENCH_WRITES_CLIENTS ("16,64"),
BENCH_WRITES_PROBES (200, the idle probe's writes).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench.database import bench_url
from bench.private_pg import server_from_env
from drivers import audit
from drivers.db import make_engine
from drivers.listen import asyncpg_dsn
from drivers.migrate import upgrade_head
from gateway.publisher import OutboxPublisher

__all__ = ["main"]

DB_NAME = "gw_bench_writes"
MODES = ("none", "direct", "outbox")
PROBE_RATE = 20.0  # probe writes per second during a pgbench run
_VALUES: dict[str, Any] = {
    "p_tenant_id": "bench-writes",
    "p_actor": "bench",
    "p_actor_role": "OPERATOR",
    "p_operation": "addIncidentEvent",
    "p_entity_type": "incidents",
    "p_entity_id": "inc-1",
    "p_before": '{"status":"OPEN"}',
    "p_after": '{"status":"ACKNOWLEDGED"}',
    "p_request_id": "bench-request",
}


@dataclass(slots=True)
class Row:
    mode: str
    clients: int
    tps: float
    latency: list[float] = field(default_factory=list)  # ms, probe commit -> listener
    backlog: int = 0  # outbox rows left when pgbench ended


def _script(mode: str) -> tuple[str, dict[str, str]]:
    """The pgbench script and its -D variables: the unit of work's closing statement."""
    notifies = mode != "none"
    sql = audit.audit_and_notify_sql("direct" if mode == "direct" else "outbox", notifies)
    values = dict(_VALUES)
    names = [*values]  # $1.. in AuditEntry.params() order
    if notifies:
        values["n_kinds"] = "{INCIDENT_UPDATED}"
        values["n_ids"] = "{inc-1}"
        names += ["n_kinds", "n_ids"]
    sql = re.sub(r"\$(\d+)", lambda m: f":{names[int(m.group(1)) - 1]}", sql)
    return f"BEGIN;\n{sql};\nCOMMIT;\n", {name: str(values[name]) for name in set(names)}


async def _database(server: str) -> str:
    url = os.environ.get("BENCH_DATABASE_URL") or re.sub(r"/[^/]*$", f"/{DB_NAME}", server)
    admin = await asyncpg.connect(asyncpg_dsn(re.sub(r"/[^/]*$", "/postgres", url)))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB_NAME)
        if not exists and not os.environ.get("BENCH_DATABASE_URL"):
            await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()
    await asyncio.to_thread(upgrade_head, url)
    # The notified incident exists, so each write also reads it for its change's snapshot
    # (drivers/audit.snapshot_sql), as a real INCIDENT_UPDATED does.
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(_INCIDENT)
    finally:
        await conn.close()
    return url


_INCIDENT = (
    "INSERT INTO incidents (id, tenant_id, title, severity, status, trigger_type, trigger_value, "
    "category, source_type, cause_type, started_at) VALUES ('inc-1', 'bench-writes', "
    "'Budget limit exceeded: 120%', 'HIGH', 'OPEN', 'BUDGET_BREACH', '120%', 'BUDGET_EXCEEDED', "
    "'KILLSWITCH', 'SYSTEM', now()) ON CONFLICT DO NOTHING"
)


class Listener:
    """The gateway's LISTEN: times the probe payloads as they arrive."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        self._conn: Any = None

    async def open(self, url: str) -> None:
        self._conn = await asyncpg.connect(asyncpg_dsn(url))
        await self._conn.add_listener(audit.NOTIFY_CHANNEL, self._on)

    def _on(self, *args: Any) -> None:
        self.count += 1
        entity = orjson.loads(args[3])["id"]
        if entity.startswith("probe-"):
            self.arrived[entity] = time.perf_counter()

    async def close(self) -> None:
        await self._conn.close()


async def _probe(url: str, mode: str, listener: Listener, writes: int, rate: float) -> list[float]:
    """`writes` changes through the real statement, `rate`/s; commit -> arrival in ms."""
    engine = make_engine(url, pool_size=1, execution_options={audit.NOTIFY_MODE_OPTION: mode})
    committed: dict[str, float] = {}
    try:
        for i in range(writes):
            entity = f"probe-{mode}-{time.monotonic_ns()}-{i}"
            async with engine.begin() as conn:
                await audit.insert_audit_and_notify(
                    conn,
                    tenant_id="bench-writes",
                    actor="probe",
                    actor_role="OPERATOR",
                    operation="addIncidentEvent",
                    entity_type="incidents",
                    entity_id=entity,
                    before=None,
                    after={"status": "ACKNOWLEDGED"},
                    request_id=None,
                    notifications=[("INCIDENT_UPDATED", entity)],
                )
                committed[entity] = time.perf_counter()  # COMMIT is sent as the block ends
            await asyncio.sleep(1 / rate)
        for _ in range(1000):  # at most 10 s for the last ones to arrive
            if committed.keys() <= listener.arrived.keys():
                break
            await asyncio.sleep(0.01)
    finally:
        await engine.dispose()
    return [(listener.arrived[k] - t) * 1000 for k, t in committed.items() if k in listener.arrived]


def _write(script: str) -> Path:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    return Path(f.name)


async def _pgbench(url: str, mode: str, clients: int, seconds: float) -> float:
    script, variables = _script(mode)
    path = _write(script)
    args = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2"]
    args += ["-T", str(int(seconds)), "-f", str(path)]
    for name, value in variables.items():
        args += ["-D", f"{name}={value}"]
    proc = await asyncio.create_subprocess_exec(
        *args, url, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    path.unlink()
    found = re.search(r"tps = ([\d.]+) \(without initial", out.decode())
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"pgbench failed: {err.decode()}")
    return float(found.group(1))


async def _outbox_rows(url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM change_outbox"))
    finally:
        await conn.close()


async def _run(url: str, seconds: float, clients: list[int], probes: int) -> list[Row]:
    listener = Listener()
    await listener.open(url)
    publisher = OutboxPublisher(url)  # this process is the publisher for the outbox runs
    publisher.start()
    rows: list[Row] = []
    try:
        for n in clients:
            for mode in MODES:
                writes = 0 if mode == "none" else int(seconds * PROBE_RATE * 0.8)
                probe = asyncio.create_task(_probe(url, mode, listener, writes, PROBE_RATE))
                tps = await _pgbench(url, mode, n, seconds)
                backlog = await _outbox_rows(url)
                rows.append(Row(mode, n, tps, await probe, backlog))
                print(f"  {mode:>6} x{n}: {tps:,.0f} tx/s", file=sys.stderr, flush=True)
        for mode in ("direct", "outbox"):
            rows.append(Row(mode, 0, 0.0, await _probe(url, mode, listener, probes, 100.0)))
    finally:
        await publisher.stop()
        await listener.close()
    return rows


def _ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.1f}"


def render(rows: list[Row], seconds: float) -> str:
    """The markdown table of a run (also appended to bench/RESULTS.md by hand)."""
    lines = [
        f"Writes/s: pgbench -M prepared, {seconds:g} s per run; statement = the unit of work's "
        "closing audit insert (+ one notification); latency = probe commit -> LISTEN, ms.",
        "",
        "| writers | mode | tx/s | vs none | probe p50 | probe p99 | outbox rows left |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row.clients == 0:
            continue
        ceiling = next(r.tps for r in rows if r.clients == row.clients and r.mode == "none")
        lines.append(
            f"| {row.clients} | {row.mode} | {row.tps:,.0f} | {row.tps / ceiling:.2f}x "
            f"| {_ms(row.latency, 0.5)} | {_ms(row.latency, 0.99)} | {row.backlog} |"
        )
    idle = {r.mode: r.latency for r in rows if r.clients == 0}
    lines += ["", "| no load | probe p50 | probe p99 | n |", "|---|---:|---:|---:|"]
    for mode, values in idle.items():
        lines.append(f"| {mode} | {_ms(values, 0.5)} | {_ms(values, 0.99)} | {len(values)} |")
    if idle.get("direct") and idle.get("outbox"):
        added = statistics.median(idle["outbox"]) - statistics.median(idle["direct"])
        lines.append(f"\nAdded commit -> subscriber latency, p50 with no load: {added:.1f} ms")
    return "\n".join(lines)


def main() -> None:
    if shutil.which("pgbench") is None:
        raise SystemExit("bench-writes needs pgbench (postgresql-client)")
    seconds = float(os.environ.get("BENCH_WRITES_SECONDS", "10"))
    clients = [int(c) for c in os.environ.get("BENCH_WRITES_CLIENTS", "16,64").split(",")]
    probes = int(os.environ.get("BENCH_WRITES_PROBES", "200"))

    async def go(server: str) -> list[Row]:
        url = await _database(server)
        return await _run(url, seconds, clients, probes)

    with server_from_env():
        server = os.environ.get("DATABASE_URL") or bench_url("postgres")
        print(render(asyncio.run(go(server)), seconds))


if __name__ == "__main__":
    main()
