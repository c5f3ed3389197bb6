"""seed_demo loads a consistent data set once per tenant and nothing on a second call."""

from __future__ import annotations

import sqlalchemy as sa

from drivers import tables as t
from drivers.demo import seed_demo


async def _seed(engine, tenant: str) -> dict[str, int]:
    async with engine.begin() as conn:  # commit runs the deferred integrity trigger
        return await seed_demo(conn, tenant)


async def _scalar(engine, query: str, **params):
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(query), params)).scalar()


async def test_seed_demo_inserts_once_then_nothing(engine):
    first = await _seed(engine, "demo")
    assert first["runs"] >= 8
    assert first["incidents"] == 12
    assert first["limits"] >= 10
    assert first["limit_integrity"] == first["limits"]
    assert first["lessons_learned"] >= 6
    assert first["circuit_breakers"] == 1
    assert all(first[name] > 0 for name in ("run_steps", "incident_events", "limit_breaches"))

    second = await _seed(engine, "demo")
    assert set(second) == set(first)
    assert all(count == 0 for count in second.values()), second

    async with engine.connect() as conn:
        for name, count in first.items():
            stored = await conn.scalar(
                sa.select(sa.func.count()).select_from(t.metadata.tables[name])
            )
            assert stored == count, name


async def test_seed_demo_tenants_do_not_collide(engine):
    first = await _seed(engine, "demo-a")
    assert await _seed(engine, "demo-b") == first
    assert await _scalar(engine, "SELECT count(DISTINCT tenant_id) FROM incidents") == 2


async def test_demo_content_follows_the_domain_rules(engine):
    await _seed(engine, "demo")
    # Every incident starts with INCIDENT_CREATED at its creation time and has 2-25 more events.
    bad_timelines = await _scalar(
        engine,
        """
        SELECT count(*) FROM (
            SELECT i.id,
                   (array_agg(e.event_type ORDER BY e.created_at, e.id))[1] AS first_event,
                   min(e.created_at) AS first_at, i.created_at, count(e.id) AS n
            FROM incidents i JOIN incident_events e ON e.incident_id = i.id
            GROUP BY i.id
        ) x
        WHERE first_event <> 'INCIDENT_CREATED' OR first_at <> created_at OR n NOT BETWEEN 3 AND 26
        """,
    )
    assert bad_timelines == 0
    statuses = await _scalar(
        engine, "SELECT array_agg(DISTINCT status ORDER BY status) FROM incidents"
    )
    assert statuses == ["ACKNOWLEDGED", "OPEN", "RESOLVED"]
    assert (
        await _scalar(
            engine, "SELECT count(*) FROM incidents WHERE created_at < now() - interval '10 days'"
        )
        == 0
    )
    halted = await _scalar(engine, "SELECT error_message FROM runs WHERE status = 'HALTED'")
    assert halted == "Hard budget limit: 1250c consumed >= 1200c limit"
    assert await _scalar(engine, "SELECT count(*) FROM runs WHERE status = 'FAILED'") >= 2
    overrides = await _scalar(
        engine, "SELECT array_agg(status ORDER BY status) FROM limit_overrides"
    )
    assert {"ACTIVE", "PENDING", "EXPIRED"} <= set(overrides)
    assert (
        await _scalar(
            engine,
            "SELECT count(*) FROM lessons_learned l JOIN incidents i ON i.id = l.source_event_id"
            " WHERE l.source_event_type = 'INCIDENT'",
        )
        >= 2
    )
    assert (
        await _scalar(
            engine,
            "SELECT count(*) FROM limit_breaches"
            " WHERE run_id IS NOT NULL AND incident_id IS NOT NULL",
        )
        >= 2
    )
    categories = await _scalar(
        engine, "SELECT array_agg(DISTINCT limit_category ORDER BY limit_category) FROM limits"
    )
    assert categories == ["BUDGET", "RATE", "THRESHOLD"]
    assert (
        await _scalar(
            engine,
            "SELECT count(*) FROM limits WHERE limit_category = 'THRESHOLD' AND params = '{}'",
        )
        == 0
    )
    assert (
        await _scalar(engine, "SELECT disabled FROM circuit_breakers WHERE name = 'costsim_v2'")
        is False
    )
    assert await _scalar(engine, "SELECT count(*) FROM policy_violations") == 1
    assert await _scalar(engine, "SELECT count(*) FROM policy_proposals") >= 1
