"""The background runner: scheduling, isolation of failures, clean stop, lifespan and CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from prometheus_client import REGISTRY
from sqlalchemy import select

from drivers import tables as t
from gateway.settings import Settings, breaker_settings
from gateway.worker import Job, Runner, default_jobs
from tests.factories import NOW, insert_rows, make_limits, override_row
from tests.factories_breaker import add_alert, outbox
from tests.helpers import serve, token

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


async def _alone(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run `scenario` on a fresh event loop in a thread, failing if it leaves a task behind.

    Why not compare `asyncio.all_tasks()` on the session loop: the session's other apps (the
    `client` fixtures) run LISTEN hubs there, whose ping wait starts a new task every
    LISTENER_PING_SECONDS; a test that crosses such a tick saw those tasks as "left behind".
    """

    async def checked() -> T:
        result = await scenario()
        left = asyncio.all_tasks() - {asyncio.current_task()}
        assert not left, left
        return result

    return await asyncio.to_thread(asyncio.run, checked())


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_jobs_run_on_their_interval_and_a_failing_job_is_isolated(engine):
    calls: dict[str, int] = {"ok": 0, "boom": 0}

    async def ok(_engine) -> int:
        calls["ok"] += 1
        return 2

    async def boom(_engine) -> int:
        calls["boom"] += 1
        raise RuntimeError("job bug")

    errors_before = _metric("gateway_job_runs_total", job="test_boom", outcome="error")
    items_before = _metric("gateway_job_items_total", job="test_ok")

    async def scenario() -> bool:
        runner = Runner(engine, [Job("test_ok", 0.01, ok), Job("test_boom", 0.01, boom)])
        runner.start()
        for _ in range(1000):
            if calls["ok"] >= 3 and calls["boom"] >= 3:
                break
            await asyncio.sleep(0.01)
        assert runner.running
        await runner.stop()
        return runner.running

    # both loops kept going despite the failures, and stopping left no task behind (_alone)
    assert await _alone(scenario) is False
    assert calls["ok"] >= 3 and calls["boom"] >= 3
    assert _metric("gateway_job_runs_total", job="test_boom", outcome="error") >= errors_before + 3
    assert _metric("gateway_job_items_total", job="test_ok") >= items_before + 6
    assert _metric("gateway_job_seconds_count", job="test_ok") >= 3


async def test_stop_cancels_a_job_that_overstays_the_grace_period(engine):
    async def scenario() -> float:
        started = asyncio.Event()

        async def slow(_engine) -> int:
            started.set()
            await asyncio.sleep(60)
            return 0

        runner = Runner(engine, [Job("test_slow", 30, slow)], grace=0.05)
        runner.start()
        await started.wait()
        t0 = time.monotonic()
        await runner.stop()
        return time.monotonic() - t0

    # the 60 s call was cancelled after the grace period, leaving no task behind (_alone)
    assert await _alone(scenario) < 10


def test_registry_has_the_domain_jobs_at_their_intervals():
    jobs = {j.name: j.interval for j in default_jobs(Settings(database_url="postgresql://x/y"))}
    assert jobs == {
        "deliver_alerts": 5.0,
        "purge_alerts": 3600.0,
        "recover_expired_breakers": 30.0,
        "overrides": 30.0,
        "auto_resolve_stale_incidents": 60.0,
        "reactivate_deferred_lessons": 60.0,
        "expire_scopes": 60.0,
        "purge_idempotency_keys": 3600.0,
    }


async def test_one_override_tick_activates_then_expires(engine):
    # given an APPROVED override whose whole window already passed
    [lim] = await make_limits(engine, 1)
    row = override_row(
        lim["id"],
        status="APPROVED",
        starts_at=NOW - timedelta(hours=2),
        expires_at=NOW - timedelta(hours=1),
    )
    await insert_rows(engine, t.limit_overrides, [row])
    [job] = [
        j for j in default_jobs(Settings(database_url="postgresql://x/y")) if j.name == "overrides"
    ]

    # when the runner calls the override job once
    changed = await Runner(engine, [job]).run_once(job)

    # then it was activated and expired in the same tick
    assert changed == 2
    async with engine.connect() as conn:
        status = (
            await conn.execute(
                select(t.limit_overrides.c.status).where(t.limit_overrides.c.id == row["id"])
            )
        ).scalar_one()
    assert status == "EXPIRED"


async def test_the_app_lifespan_runs_the_jobs(settings, engine):
    # given a PENDING alert and a gateway with background jobs on (no Alertmanager configured)
    await add_alert(engine)
    jobs_on = {"gateway_background_jobs": True, "job_alert_delivery_seconds": 0.05}

    async def scenario() -> int:
        async with serve(settings.model_copy(update=jobs_on)) as http:
            stats = "{ alertOutboxStats { pending sent } }"
            headers = {"authorization": f"Bearer {token(role='VIEWER')}"}
            for _ in range(500):
                body = (await http.post("/graphql", json={"query": stats}, headers=headers)).json()
                sent: int = body["data"]["alertOutboxStats"]["sent"]
                if sent == 1:
                    break
                await asyncio.sleep(0.02)
        return sent

    # then the delivery job marked it SENT, and shutdown stopped every job task (_alone)
    assert await _alone(scenario) == 1
    assert [r.status for r in await outbox(engine)] == ["SENT"]


async def test_gateway_worker_command_runs_jobs_until_sigterm(database_url, engine):
    await add_alert(engine)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "INFO",
        "MIGRATE_ON_START": "false",
        "JOB_ALERT_DELIVERY_SECONDS": "0.1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "worker",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(300):
            if [r.status for r in await outbox(engine)] == ["SENT"]:
                break
            await asyncio.sleep(0.05)
        assert [r.status for r in await outbox(engine)] == ["SENT"]
    finally:
        proc.send_signal(signal.SIGTERM)
        raw_out, raw_err = await asyncio.wait_for(proc.communicate(), timeout=30)
    out, err = raw_out.decode(), raw_err.decode()
    assert proc.returncode == 0, err
    assert "worker stopped" in out
    assert "job deliver_alerts changed 1 item(s)" in err


def test_breaker_settings_come_from_the_environment_names():
    s = Settings(
        database_url="postgresql://x/y",
        costsim_drift_threshold=0.3,
        costsim_disable_ttl_hours=0,
        costsim_v2_auto_disable=False,
        alertmanager_url="",
        hostname="node-7",
    )
    b = breaker_settings(s)
    assert (b.drift_threshold, b.disable_ttl_hours, b.auto_disable) == (0.3, 0, False)
    assert b.alertmanager_url is None
    assert b.instance_id == "node-7"
    assert breaker_settings(s.model_copy(update={"instance_id": "gw-a"})).instance_id == "gw-a"
    assert breaker_settings(Settings(database_url="postgresql://x/y")).instance_id in (
        os.environ.get("HOSTNAME") or "aos-unknown",
    )
