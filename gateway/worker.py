"""The background runner: periodic jobs of DOMAIN.md §7, in the gateway or alone (`gateway worker`).

A job is a plain `async def job(engine) -> int` (how many items it changed) with an interval.
Each job runs in its own task: call, log, measure, sleep, repeat. A failing call is logged and
counted and the loop goes on; stopping lets a running call finish (within a grace period) and
then cancels, so shutdown leaves no tasks behind.

To add a job, append one line to `default_jobs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import Settings, breaker_settings
from resolvers.alerts import deliver_alerts, purge_alerts
from resolvers.breaker_state import recover_expired_breakers

__all__ = ["JOB_RUNS", "JOB_SECONDS", "Job", "Runner", "default_jobs"]

log = logging.getLogger("gateway.jobs")

JOB_RUNS = Counter(
    "gateway_job_runs_total",
    "Background job calls by job and outcome (ok, error)",
    ["job", "outcome"],
)
JOB_ITEMS = Counter("gateway_job_items_total", "Items background jobs changed", ["job"])
JOB_SECONDS = Histogram(
    "gateway_job_seconds",
    "Background job call duration",
    ["job"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

JobFn = Callable[[AsyncEngine], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    interval: float  # seconds between the end of one call and the start of the next
    run: JobFn


def default_jobs(settings: Settings) -> list[Job]:
    """Every registered job with its configured interval (DOMAIN.md §7)."""
    breaker = breaker_settings(settings)
    return [
        Job(
            "deliver_alerts",
            settings.job_alert_delivery_seconds,
            functools.partial(deliver_alerts, settings=breaker),
        ),
        Job(
            "purge_alerts",
            settings.job_alert_purge_seconds,
            functools.partial(purge_alerts, settings=breaker),
        ),
        Job(
            "recover_expired_breakers",
            settings.job_breaker_sweep_seconds,
            functools.partial(recover_expired_breakers, settings=breaker),
        ),
    ]


class Runner:
    """Runs each job on its interval until stopped."""

    def __init__(self, engine: AsyncEngine, jobs: list[Job], *, grace: float = 10.0) -> None:
        self._engine = engine
        self._jobs = jobs
        self._grace = grace
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._tasks)

    async def run_once(self, job: Job) -> int | None:
        """One call of a job: logged, measured, and never raising (None on failure)."""
        started = time.perf_counter()
        try:
            changed = await job.run(self._engine)
        except asyncio.CancelledError:
            raise
        except Exception:
            JOB_RUNS.labels(job.name, "error").inc()
            log.exception("job %s failed", job.name)
            return None
        finally:
            JOB_SECONDS.labels(job.name).observe(time.perf_counter() - started)
        JOB_RUNS.labels(job.name, "ok").inc()
        JOB_ITEMS.labels(job.name).inc(changed)
        if changed:
            log.info("job %s changed %d item(s)", job.name, changed)
        else:
            log.debug("job %s: nothing to do", job.name)
        return changed

    async def _loop(self, job: Job) -> None:
        while not self._stop.is_set():
            await self.run_once(job)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=job.interval)

    def start(self) -> None:
        """Start one task per job (call inside the running event loop)."""
        if self._tasks:
            raise RuntimeError("runner already started")
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self._loop(job), name=f"job:{job.name}") for job in self._jobs
        ]
        log.info("background jobs started: %s", ", ".join(j.name for j in self._jobs))

    async def stop(self) -> None:
        """Ask every loop to stop, wait up to the grace period, then cancel what is left."""
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self._grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("background jobs stopped")

    async def serve(self) -> None:
        """Run until cancelled (the `gateway worker` command)."""
        self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()
