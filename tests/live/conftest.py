"""Fixtures for the live tests: a threaded uvicorn server and two gateway processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from gateway.settings import Settings
from tests.live.servers import GatewayProcess, ThreadedServer


@pytest.fixture(scope="session")
def live_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"listener_ping_seconds": 1.0})


@pytest.fixture(scope="session")
def live_server(live_settings: Settings) -> Iterator[ThreadedServer]:
    with ThreadedServer(live_settings) as server:
        yield server


@pytest.fixture
async def http(live_server: ThreadedServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def replicas(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two gateway processes on the test database (started together, stopped at the end)."""
    log_dir = tmp_path_factory.mktemp("replicas")
    pair = (
        # Both run the background jobs, the breaker sweeper every half second, so sweepers race.
        GatewayProcess(database_url, log_dir, "a", JOB_BREAKER_SWEEP_SECONDS="0.5"),
        GatewayProcess(database_url, log_dir, "b", JOB_BREAKER_SWEEP_SECONDS="0.5"),
    )
    try:
        for gateway in pair:
            gateway.start()
        for gateway in pair:
            gateway.wait_ready()
        yield pair
    finally:
        for gateway in pair:
            gateway.stop()
