"""/readyz tells a load balancer whether this replica can serve: database up, schema at head."""

from __future__ import annotations

import asyncio

import httpx

from drivers.migrate import head_revision, upgrade_head
from gateway.settings import Settings
from tests.helpers import JWT_SECRET, error_codes, serve, token


async def readyz(database_url: str) -> httpx.Response:
    async with serve(Settings(database_url=database_url, migrate_on_start=False)) as http:
        return await http.get("/readyz")


async def test_readyz_fails_while_migrations_are_behind_then_passes(fresh_database_url):
    # given a database nobody has migrated
    behind = await readyz(fresh_database_url)
    assert behind.status_code == 503
    assert behind.json() == {
        "status": "unavailable",
        "reason": "migrations",
        "current": None,
        "head": head_revision(),
    }
    # when it is migrated
    await asyncio.to_thread(upgrade_head, fresh_database_url)
    # then the same replica reports ready
    ready = await readyz(fresh_database_url)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "revision": head_revision(), "listener": "connected"}


async def test_readyz_fails_when_the_database_is_unreachable():
    response = await readyz("postgresql://postgres@127.0.0.1:1/nowhere")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "database"}


async def test_requests_while_the_database_is_unreachable_answer_service_unavailable():
    # given a gateway whose database refuses connections (JWT needs no database, keys do)
    async with serve(
        Settings(
            database_url="postgresql://postgres@127.0.0.1:1/nowhere",
            migrate_on_start=False,
            jwt_secret=JWT_SECRET,
            gateway_background_jobs=False,
        )
    ) as http:
        # when an API key must be looked up, and when a query must read
        keyed = await http.post(
            "/graphql",
            json={"query": "{ viewer { tenantId } }"},
            headers={"authorization": "Bearer gwk_not-checkable-now"},
        )
        read = await http.post(
            "/graphql",
            json={"query": "{ incidents { totalCount } }"},
            headers={"authorization": f"Bearer {token()}"},
        )
    # then both say "retry later", never INTERNAL
    assert keyed.status_code == 503
    assert error_codes(keyed.json()) == ["SERVICE_UNAVAILABLE"]
    assert read.status_code == 200
    assert error_codes(read.json()) == ["SERVICE_UNAVAILABLE"]
