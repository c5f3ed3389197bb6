"""Compiled timestamps read exactly like the resolver path's isoformat(), fraction edge cases too."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.helpers import token

QUERY = "query { incidents(first: 10, orderBy: CREATED_AT_ASC) { nodes { createdAt } } }"
MOMENTS = [
    datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, 1, 120000, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, 2, 1, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, 3, 999999, tzinfo=UTC),
    datetime(999, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
]


@pytest.mark.parametrize("tenant", ["ts-edge"])
async def test_fractions_and_years_match_isoformat_on_both_paths(
    client, compiled_client, engine, tenant
):
    # given
    await insert_rows(
        engine, t.incidents, [incident_row(tenant, created_at=m, started_at=m) for m in MOMENTS]
    )
    expected = [m.isoformat() for m in sorted(MOMENTS)]
    # when
    answer = await compiled_client.post(
        "/graphql", json={"query": QUERY}, headers={"authorization": f"Bearer {token(tenant)}"}
    )
    resolved = await client.post(
        "/graphql", json={"query": QUERY}, headers={"authorization": f"Bearer {token(tenant)}"}
    )
    # then
    assert answer.headers["x-gateway-read-path"] == "compiled"
    assert [n["createdAt"] for n in answer.json()["data"]["incidents"]["nodes"]] == expected
    assert answer.content == resolved.content
