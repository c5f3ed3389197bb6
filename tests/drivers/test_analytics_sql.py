"""Analytics SQL with a pinned `now`: UTC periods whatever the session time zone (§3.17)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from drivers import analytics as db
from drivers import patterns as pdb
from tests.factories_analytics import inc, seed

# Sunday 2026-03-08 is the US DST switch; Monday 2026-03-09 starts an ISO week.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MONDAY = datetime(2026, 3, 9, tzinfo=UTC)
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Pacific/Kiritimati"])
async def test_periods_are_utc_whatever_the_session_time_zone(engine, zone):
    # given
    await seed(
        engine,
        [
            inc(MONDAY, cost_impact=Decimal("2.00")),
            inc(MONDAY - TICK, cost_impact=Decimal("1.00"), resolved_after=timedelta(hours=1)),
            inc(datetime(2026, 2, 28, 23, 59, tzinfo=UTC)),
            inc(datetime(2026, 3, 1, tzinfo=UTC)),
        ],
    )
    async with engine.connect() as conn:
        await conn.execute(text(f"SET TIME ZONE '{zone}'"))
        # when
        weeks = await db.fetch_trend(
            conn, tenant_id="t1", now=NOW, window_days=14, granularity="WEEK"
        )
        months = await db.fetch_trend(
            conn, tenant_id="t1", now=NOW, window_days=30, granularity="MONTH"
        )
        costs = await db.fetch_cost_trend(
            conn, tenant_id="t1", now=NOW, window_days=2, granularity="DAY"
        )
        groups = await pdb.fetch_recurrence_groups(
            conn, tenant_id="t1", now=NOW, baseline_days=30, threshold=1, limit=10
        )
    # then
    assert [(w.period_start, w.count, w.resolved_count) for w in weeks] == [
        (datetime(2026, 2, 23, tzinfo=UTC), 2, 0),  # Sunday 1 March is still that week
        (datetime(2026, 3, 2, tzinfo=UTC), 1, 1),
        (MONDAY, 1, 0),
    ]
    assert weeks[1].average_resolution_ms == 3_600_000.0
    assert [(m.period_start, m.count) for m in months] == [
        (datetime(2026, 2, 1, tzinfo=UTC), 1),
        (datetime(2026, 3, 1, tzinfo=UTC), 3),
    ]
    assert [(c.period_start, c.total_cost, c.count, c.average_cost) for c in costs] == [
        (datetime(2026, 3, 8, tzinfo=UTC), Decimal("1.00"), 1, Decimal("1.00")),
        (MONDAY, Decimal("2.00"), 1, Decimal("2.00")),
        (datetime(2026, 3, 10, tzinfo=UTC), Decimal("0.00"), 0, None),
    ]
    # four incidents on four distinct UTC days
    assert [(g.resolution_method, g.total, g.distinct_days) for g in groups] == [
        (None, 3, 3),
        ("MANUAL", 1, 1),
    ]
