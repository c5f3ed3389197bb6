"""The benchmark seed on a small scale: the right row counts, deterministic ids, valid rows."""

from __future__ import annotations

from sqlalchemy import text

from bench.seed import Scale, expected_counts, seed

SMALL = Scale(tenants=2, incidents=12, events=3, limits=4, breaches=5, overrides=2, lessons=3)


async def test_seed_writes_the_expected_rows(engine):
    # when
    async with engine.begin() as conn:
        written = await seed(conn, SMALL)
    # then
    assert written == expected_counts(SMALL)
    async with engine.connect() as conn:
        for table, n in expected_counts(SMALL).items():
            count = text(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed table names
            assert (await conn.execute(count)).scalar() == n
        per_tenant = (
            await conn.execute(
                text("SELECT tenant_id, count(*) FROM incidents GROUP BY 1 ORDER BY 1")
            )
        ).all()
        newest = (
            await conn.execute(
                text(
                    "SELECT id FROM incidents WHERE tenant_id = 'bench-2'"
                    " ORDER BY created_at DESC, id DESC LIMIT 1"
                )
            )
        ).scalar()
        lesson_targets = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM lessons_learned l JOIN incidents i"
                    " ON i.id = l.source_event_id AND i.tenant_id = l.tenant_id"
                )
            )
        ).scalar()
        breach_links = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM limit_breaches b JOIN incidents i"
                    " ON i.id = b.incident_id AND i.tenant_id = b.tenant_id"
                )
            )
        ).scalar()
    assert [tuple(r) for r in per_tenant] == [("bench-1", 12), ("bench-2", 12)]
    assert newest == "bench-2-inc-00012"
    assert lesson_targets == 2 * 3
    assert breach_links == 2 * 4 * 5


async def test_full_scale_counts_match_the_issue():
    counts = expected_counts(Scale())
    assert counts["incidents"] == 5 * 2_000
    assert counts["incident_events"] == 5 * 2_000 * 20
    assert counts["limit_breaches"] == 5 * 200 * 25
    assert counts["limit_overrides"] == 5 * 200 * 2
    assert counts["lessons_learned"] == 5 * 500
