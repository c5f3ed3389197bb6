"""Two gateway processes approve overrides of one tenant at once: the cap of 5 ACTIVE holds."""

from __future__ import annotations

import asyncio

import httpx

from drivers import tables as t
from tests.factories import insert_rows, make_limits, override_row
from tests.factories_controls import rows
from tests.helpers import error_codes, gql

APPROVE = "mutation($id: ID!) { approveOverride(id: $id) { id status } }"


async def test_parallel_approvals_across_two_processes_make_at_most_five_active(replicas, engine):
    a, b = replicas
    limits = await make_limits(engine, 10)
    full = [override_row(lim["id"]) for lim in limits[:3]]
    pending = [override_row(lim["id"], status="PENDING") for lim in limits[3:]]
    await insert_rows(engine, t.limit_overrides, [*full, *pending])
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=10) as http_a,
        httpx.AsyncClient(base_url=b.url, timeout=10) as http_b,
    ):
        # 7 approvals split over both processes race for the 2 free slots
        bodies = await asyncio.gather(
            *(gql((http_a, http_b)[i % 2], APPROVE, {"id": p["id"]}) for i, p in enumerate(pending))
        )
    codes = sorted(error_codes(body)[0] if "errors" in body else "OK" for body in bodies)
    assert codes == ["OK"] * 2 + ["RATE_LIMITED"] * 5
    statuses = [r.status for r in await rows(engine, t.limit_overrides)]
    assert statuses.count("ACTIVE") == 5
    assert statuses.count("PENDING") == 5
