"""DATABASE_URL is taken in the plain libpq form and adapted for the async driver."""

from __future__ import annotations

import pytest

from drivers.db import async_url


@pytest.mark.parametrize(
    ("_case", "given", "expected"),
    [
        ("libpq", "postgresql://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("short scheme", "postgres://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("already async", "postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
        (
            "unix socket",
            "postgresql://postgres:@/postgres?host=/tmp/pg",
            "postgresql+asyncpg://postgres:@/postgres?host=/tmp/pg",
        ),
        (
            "sslmode",
            "postgresql://u@db/app?sslmode=require",
            "postgresql+asyncpg://u@db/app?ssl=require",
        ),
    ],
)
def test_async_url(_case, given, expected):
    assert async_url(given) == expected


def test_other_schemes_are_refused():
    with pytest.raises(ValueError, match="unsupported database URL scheme"):
        async_url("mysql://u@db/app")
