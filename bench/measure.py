"""CPU and SQL counters read around each load run: /proc for processes, PostgreSQL for the rest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from drivers.outbox import POLL_STATEMENT as OUTBOX_POLL_STATEMENT
from drivers.outbox import PUBLISHER_APPLICATION_NAME

__all__ = ["PgProbe", "Sample", "process_stat", "process_tree_cpu"]

_TICK = os.sysconf("SC_CLK_TCK")


def process_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of one process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def process_tree_cpu(root: int) -> float:
    """CPU seconds of `root` and all its descendants (uvicorn's workers, node's threads)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = process_stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)], cpu[int(entry.name)] = stat
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(cpu.get(pid, 0.0) for pid in tree)


@dataclass(frozen=True, slots=True)
class Sample:
    """PostgreSQL counters at one instant."""

    backend_cpu: dict[int, float]
    statements: int | None
    # The outbox publisher's backends (also in backend_cpu): it polls every OUTBOX_POLL_SECONDS
    # whether or not requests run, so "idle" (Runner.quiesce) must not wait for it to stop.
    publisher_pids: frozenset[int] = frozenset()


class PgProbe:
    """Reads the bench database's backend CPU and, when available, its statement count.

    Statements come from pg_stat_statements, which needs shared_preload_libraries on the server;
    without it `statements` is None and the report prints "n/a".
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.has_statements = False

    @classmethod
    async def open(cls, url: str) -> PgProbe:
        """Connect and find out whether statements can be counted."""
        probe = cls(await asyncpg.connect(url))
        try:
            await probe.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await probe.conn.fetchval("SELECT count(*) FROM pg_stat_statements")
            probe.has_statements = True
        except asyncpg.PostgresError:
            probe.has_statements = False
        return probe

    async def close(self) -> None:
        """Close the probe's connection."""
        await self.conn.close()

    async def sample(self) -> Sample:
        """Backend CPU per pid of this database (other than the probe) and statements so far."""
        pids = await self.conn.fetch(
            "SELECT pid, application_name FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        publisher = frozenset(
            int(row["pid"]) for row in pids if row["application_name"] == PUBLISHER_APPLICATION_NAME
        )
        cpu: dict[int, float] = {}
        for row in pids:
            stat = process_stat(int(row["pid"]))
            if stat is not None:
                cpu[int(row["pid"])] = stat[1]
        statements = None
        if self.has_statements:
            statements = int(
                await self.conn.fetchval(
                    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                    " WHERE dbid = (SELECT oid FROM pg_database"
                    "               WHERE datname = current_database())"
                    " AND query NOT LIKE '%pg_stat_%' AND query NOT LIKE '%pg_database%'"
                    # The publisher's idle poll is not request work (its batches, when writes
                    # queue rows, are: they count).
                    " AND query <> $1",
                    OUTBOX_POLL_STATEMENT,
                )
            )
        return Sample(cpu, statements, publisher)

    @staticmethod
    def cpu_between(before: Sample, after: Sample, *, publisher: bool = True) -> float:
        """Backend CPU seconds spent between two samples (new backends count from zero).

        `publisher=False` leaves out the outbox publisher's backends (its idle polling).
        """
        return sum(
            cpu - before.backend_cpu.get(pid, 0.0)
            for pid, cpu in after.backend_cpu.items()
            if publisher or pid not in after.publisher_pids
        )
