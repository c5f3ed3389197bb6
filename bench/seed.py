"""The deterministic benchmark data set, generated inside PostgreSQL (generate_series, no row loop).

Ids, timestamps and values are functions of (tenant, row number) only, so every run and every
peer sees the same rows. All timestamps lie in January to February 2026, more than 30 days in the
past, so `Limit.breachCount30d` is 0 and the limits' default order (last breach in 30 days, then
newest first) is plain `created_at DESC, id DESC`, an order PostGraphile can express too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["FULL", "SEED_VERSION", "Scale", "expected_counts", "seed", "tenant_ids"]

# 3: reseed once, as runs before it let the in-process stale-incident job resolve seeded rows.
SEED_VERSION = "bench-seed-3"


@dataclass(frozen=True, slots=True)
class Scale:
    """Row counts: `incidents` per tenant, `events` per incident, and so on."""

    tenants: int = 5
    incidents: int = 2_000
    events: int = 20
    limits: int = 200
    breaches: int = 25
    overrides: int = 2
    lessons: int = 500

    def label(self) -> str:
        """A stable text form, stored with the seed version to detect a different data set."""
        return ",".join(f"{k}={v}" for k, v in asdict(self).items())


FULL = Scale()


def tenant_ids(scale: Scale) -> list[str]:
    """bench-1 .. bench-N."""
    return [f"bench-{n}" for n in range(1, scale.tenants + 1)]


# One statement per table; :tenant_ids is a text[]; every row number starts at 1.
# Incident n starts at T0 + n minutes (newest = highest n); event e of it at + e seconds.
_INCIDENTS = """
INSERT INTO incidents (id, tenant_id, title, severity, status, trigger_type, category,
                       calls_affected, cost_delta_cents, started_at, created_at, updated_at)
SELECT t || '-inc-' || lpad(n::text, 5, '0'), t, 'Incident ' || n,
       (ARRAY['LOW','MEDIUM','HIGH','CRITICAL'])[1 + n % 4], 'OPEN',
       (ARRAY['FAILURE_SPIKE','BUDGET_BREACH','RATE_LIMIT','POLICY_VIOLATION'])[1 + n % 4],
       'cat-' || (n % 7), n % 50, (n % 1000) / 100.0,
       ts, ts, ts
FROM unnest(CAST(:tenant_ids AS text[])) AS t,
     generate_series(1, :incidents) AS n,
     LATERAL (SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' + n * INTERVAL '1 minute') AS x(ts)
"""

_EVENTS = """
INSERT INTO incident_events (id, tenant_id, incident_id, event_type, description, data, created_at)
SELECT t || '-evt-' || lpad(n::text, 5, '0') || '-' || lpad(e::text, 3, '0'), t,
       t || '-inc-' || lpad(n::text, 5, '0'),
       (ARRAY['NOTE','CALL_FAILED','EVIDENCE_CAPTURED','THRESHOLD_CROSSED'])[1 + e % 4],
       'event ' || e || ' of incident ' || n, jsonb_build_object('seq', e),
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + n * INTERVAL '1 minute' + e * INTERVAL '1 second'
FROM unnest(CAST(:tenant_ids AS text[])) AS t,
     generate_series(1, :incidents) AS n,
     generate_series(1, :events) AS e
"""

# Limit k is created at T0 + k hours; the integrity row is required by a deferred trigger. All
# are ACTIVE BUDGET limits: the category and status `limits` lists when its filter omits them.
_LIMITS = """
INSERT INTO limits (id, tenant_id, name, limit_category, limit_type, max_value, enforcement,
                    reset_period, created_at, updated_at)
SELECT t || '-lim-' || lpad(k::text, 4, '0'), t, 'limit ' || k,
       'BUDGET', 'COST_USD', 100 + k,
       (ARRAY['BLOCK','WARN','ALERT'])[1 + k % 3], 'MONTHLY',
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + k * INTERVAL '1 hour',
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + k * INTERVAL '1 hour'
FROM unnest(CAST(:tenant_ids AS text[])) AS t, generate_series(1, :limits) AS k
"""

_INTEGRITY = """
INSERT INTO limit_integrity (id, tenant_id, limit_id, integrity_status, integrity_score,
                             computed_at)
SELECT t || '-int-' || lpad(k::text, 4, '0'), t, t || '-lim-' || lpad(k::text, 4, '0'),
       'VERIFIED', 1, TIMESTAMPTZ '2026-01-01 00:00:00+00'
FROM unnest(CAST(:tenant_ids AS text[])) AS t, generate_series(1, :limits) AS k
"""

# Breach b of limit k is linked to incident ((k-1)*breaches + b - 1) % incidents + 1.
_BREACHES = """
INSERT INTO limit_breaches (id, tenant_id, limit_id, incident_id, breach_type, value_at_breach,
                            limit_value, details, breached_at)
SELECT t || '-brk-' || lpad(k::text, 4, '0') || '-' || lpad(b::text, 3, '0'), t,
       t || '-lim-' || lpad(k::text, 4, '0'),
       t || '-inc-' || lpad((((k - 1) * :breaches + b - 1) % :incidents + 1)::text, 5, '0'),
       (ARRAY['BREACHED','EXHAUSTED','THROTTLED','VIOLATED'])[1 + b % 4],
       100 + k + b * 0.5, 100 + k, jsonb_build_object('b', b),
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + k * INTERVAL '1 hour' + b * INTERVAL '1 minute'
FROM unnest(CAST(:tenant_ids AS text[])) AS t,
     generate_series(1, :limits) AS k,
     generate_series(1, :breaches) AS b
"""

# Past overrides only (EXPIRED, then REJECTED): at most one live override per limit is allowed.
_OVERRIDES = """
INSERT INTO limit_overrides (id, tenant_id, limit_id, original_value, override_value, status,
                             requested_at, requested_by, reason, starts_at, expires_at)
SELECT t || '-ovr-' || lpad(k::text, 4, '0') || '-' || o, t,
       t || '-lim-' || lpad(k::text, 4, '0'), 100 + k, 200 + k + o,
       CASE WHEN o % 2 = 1 THEN 'EXPIRED' ELSE 'REJECTED' END,
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + k * INTERVAL '1 hour' + o * INTERVAL '1 minute',
       'bench', 'override ' || o || ' of limit ' || k,
       TIMESTAMPTZ '2026-01-02 00:00:00+00', TIMESTAMPTZ '2026-01-03 00:00:00+00'
FROM unnest(CAST(:tenant_ids AS text[])) AS t,
     generate_series(1, :limits) AS k,
     generate_series(1, :overrides) AS o
"""

# Lesson m is about incident incidents - (m-1)*step, so the newest incidents have lessons.
_LESSONS = """
INSERT INTO lessons_learned (id, tenant_id, lesson_type, severity, source_event_id,
                             source_event_type, title, description, status, created_at)
SELECT t || '-les-' || lpad(m::text, 4, '0'), t, 'FAILURE',
       (ARRAY['LOW','MEDIUM','HIGH','CRITICAL'])[1 + m % 4],
       t || '-inc-' || lpad((:incidents - (m - 1) * :step)::text, 5, '0'), 'INCIDENT',
       'Failure: lesson ' || m, 'lesson ' || m,
       'PENDING', TIMESTAMPTZ '2026-02-01 00:00:00+00' + m * INTERVAL '1 minute'
FROM unnest(CAST(:tenant_ids AS text[])) AS t, generate_series(1, :lessons) AS m
"""

_STATEMENTS = (_INCIDENTS, _EVENTS, _LIMITS, _INTEGRITY, _BREACHES, _OVERRIDES, _LESSONS)


def expected_counts(scale: Scale) -> dict[str, int]:
    """Rows per table the seed writes (over all tenants)."""
    per_tenant = {
        "incidents": scale.incidents,
        "incident_events": scale.incidents * scale.events,
        "limits": scale.limits,
        "limit_integrity": scale.limits,
        "limit_breaches": scale.limits * scale.breaches,
        "limit_overrides": scale.limits * scale.overrides,
        "lessons_learned": scale.lessons,
    }
    return {table: n * scale.tenants for table, n in per_tenant.items()}


async def seed(conn: AsyncConnection, scale: Scale = FULL) -> dict[str, int]:
    """Insert the data set in the caller's transaction; returns rows written per table.

    Expects empty tables (the runner drops and recreates its database when the version differs).
    """
    if scale.lessons > scale.incidents:
        raise ValueError("lessons must not outnumber incidents (one lesson per incident)")
    params = {
        "tenant_ids": tenant_ids(scale),
        **asdict(scale),
        "step": max(1, scale.incidents // max(1, scale.lessons)),
    }
    written: dict[str, int] = {}
    for statement, table in zip(_STATEMENTS, expected_counts(scale), strict=True):
        result = await conn.execute(text(statement), params)
        written[table] = result.rowcount
    return written
