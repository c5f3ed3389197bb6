"""Fixtures for tests that need a database of their own (migration up/down, concurrency)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from tests.conftest import create_database, drop_database


@pytest.fixture
async def fresh_database_url(server_url: str) -> AsyncIterator[str]:
    """An empty, never-migrated database on the test server, dropped afterwards."""
    name = f"gw_test_{secrets.token_hex(4)}_fresh"
    url = await create_database(server_url, name)
    yield url
    await drop_database(server_url, name)
