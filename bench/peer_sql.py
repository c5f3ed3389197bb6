"""Bench-only SQL in `gw_bench`: what a PostGraphile user would add, and Q7's own tenant.

Applied by `prepare()` on every run (idempotent, outside the seed marker, so runs of other
branches on the same database are not reseeded):

- computed columns and one function that give PostGraphile the derived values ours has
  (severity rank as a sortable column, a limit's effective value, breaches in 30 days, a
  breaker's state, a year of incident metrics) — written as a PostGraphile user would
  (bench/README.md, "Q5", "Q6") — and the breaker row Q6 reads;
- Q7's audit and `pg_notify` triggers on `limit_overrides`, firing only for the rows
  PostGraphile's document writes (`requested_by = 'bench-pgl'`), so ours and the floor never
  pay for them;
- tenant `bench-w` with WRITE_LIMITS limits: each Q7 request asks an override for a limit no
  other request of the run uses (one open override per limit is a unique rule), and its
  overrides are deleted after each load (`CLEANUP_Q7`).
"""

from __future__ import annotations

from typing import Final

__all__ = ["CLEANUP_Q7", "PEER_SQL", "WRITE_LIMITS", "WRITE_TENANT"]

WRITE_TENANT: Final = "bench-w"
# Above the requests of one load of the fastest peer (warm-up and load are cleaned up apart).
WRITE_LIMITS: Final = 60_000

_WRITE_TENANT_SQL = f"""
DO $$
BEGIN
  IF (SELECT count(*) FROM limits WHERE tenant_id = '{WRITE_TENANT}') < {WRITE_LIMITS} THEN
    INSERT INTO limits (id, tenant_id, name, limit_category, limit_type, max_value,
                        enforcement, reset_period, created_at, updated_at)
    SELECT '{WRITE_TENANT}-lim-' || lpad(k::text, 5, '0'), '{WRITE_TENANT}', 'limit ' || k,
           'BUDGET', 'COST_USD', 100, 'BLOCK', 'MONTHLY',
           TIMESTAMPTZ '2026-01-01 00:00:00+00', TIMESTAMPTZ '2026-01-01 00:00:00+00'
    FROM generate_series(1, {WRITE_LIMITS}) AS k
    ON CONFLICT (id) DO NOTHING;
    INSERT INTO limit_integrity (id, tenant_id, limit_id, integrity_status, integrity_score,
                                 computed_at)
    SELECT '{WRITE_TENANT}-int-' || lpad(k::text, 5, '0'), '{WRITE_TENANT}',
           '{WRITE_TENANT}-lim-' || lpad(k::text, 5, '0'), 'VERIFIED', 1,
           TIMESTAMPTZ '2026-01-01 00:00:00+00'
    FROM generate_series(1, {WRITE_LIMITS}) AS k
    ON CONFLICT (limit_id) DO NOTHING;
  END IF;
END $$
"""

_COMPUTED_COLUMNS = (
    """CREATE OR REPLACE FUNCTION incidents_severity_rank(i incidents) RETURNS int
       LANGUAGE sql STABLE AS $$
         SELECT CASE i.severity WHEN 'CRITICAL' THEN 3 WHEN 'HIGH' THEN 2
                                WHEN 'MEDIUM' THEN 1 WHEN 'LOW' THEN 0 ELSE -1 END $$""",
    "COMMENT ON FUNCTION incidents_severity_rank(incidents) IS E'@behavior +orderBy'",
    # PostGraphile 5 offers conditions on indexed columns only; this one is not indexed.
    "COMMENT ON COLUMN limits.limit_type IS E'@behavior +filterBy'",
    """CREATE OR REPLACE FUNCTION limits_effective_value(l limits) RETURNS numeric
       LANGUAGE sql STABLE AS $$
         SELECT coalesce((SELECT o.override_value FROM limit_overrides o
                          WHERE o.limit_id = l.id AND o.tenant_id = l.tenant_id
                            AND o.status = 'ACTIVE' LIMIT 1), l.max_value) $$""",
    """CREATE OR REPLACE FUNCTION limits_breach_count_30d(l limits) RETURNS int
       LANGUAGE sql STABLE AS $$
         SELECT count(*)::int FROM limit_breaches b
         WHERE b.limit_id = l.id AND b.tenant_id = l.tenant_id
           AND b.breached_at >= now() - interval '30 days' $$""",
    """CREATE OR REPLACE FUNCTION limits_last_breached_at(l limits) RETURNS timestamptz
       LANGUAGE sql STABLE AS $$
         SELECT max(b.breached_at) FROM limit_breaches b
         WHERE b.limit_id = l.id AND b.tenant_id = l.tenant_id
           AND b.breached_at >= now() - interval '30 days' $$""",
    """CREATE OR REPLACE FUNCTION circuit_breakers_state(b circuit_breakers) RETURNS text
       LANGUAGE sql STABLE AS $$ SELECT CASE WHEN b.disabled THEN 'OPEN' ELSE 'CLOSED' END $$""",
    # Q6 reads a written breaker row (ours would list a never-written default one too).
    """INSERT INTO circuit_breakers (tenant_id, name, disabled, consecutive_failures,
                                    created_at, updated_at)
       VALUES ('bench-1', 'costsim_v2', false, 0, TIMESTAMPTZ '2026-01-01 00:00:00+00',
               TIMESTAMPTZ '2026-01-01 00:00:00+00')
       ON CONFLICT (tenant_id, name) DO NOTHING""",
    # PostGraphile has no aggregates without a plugin: a user would write this function.
    """DO $$ BEGIN
         CREATE TYPE bench_incident_metrics AS (
           window_days int, open int, acknowledged int, active int, resolved int, total int,
           average_resolution_ms float8, by_severity json);
       EXCEPTION WHEN duplicate_object THEN NULL; END $$""",
    """CREATE OR REPLACE FUNCTION bench_incident_metrics(tenant text, window_days int)
       RETURNS bench_incident_metrics LANGUAGE sql STABLE AS $$
         SELECT window_days, m.open, m.ack, m.open + m.ack, m.resolved, m.total, m.avg_ms,
                json_build_array(
                  json_build_object('severity', 'CRITICAL', 'count', m.critical),
                  json_build_object('severity', 'HIGH', 'count', m.high),
                  json_build_object('severity', 'MEDIUM', 'count', m.medium),
                  json_build_object('severity', 'LOW', 'count', m.low))
         FROM (SELECT count(*) FILTER (WHERE status = 'OPEN')::int AS open,
                      count(*) FILTER (WHERE status = 'ACKNOWLEDGED')::int AS ack,
                      count(*) FILTER (WHERE status = 'RESOLVED')::int AS resolved,
                      count(*)::int AS total,
                      avg((extract(epoch FROM resolved_at - created_at) * 1000)::float8)
                        FILTER (WHERE resolved_at IS NOT NULL) AS avg_ms,
                      count(*) FILTER (WHERE severity = 'CRITICAL')::int AS critical,
                      count(*) FILTER (WHERE severity = 'HIGH')::int AS high,
                      count(*) FILTER (WHERE severity = 'MEDIUM')::int AS medium,
                      count(*) FILTER (WHERE severity = 'LOW')::int AS low
               FROM incidents
               WHERE incidents.tenant_id = tenant
                 AND created_at >= now() - make_interval(days => window_days)) m $$""",
)

_Q7_TRIGGERS = (
    """CREATE OR REPLACE FUNCTION bench_pgl_audit() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO audit_log (tenant_id, actor, actor_role, operation, entity_type,
                                entity_id, after)
         VALUES (NEW.tenant_id, NEW.requested_by, 'OPERATOR', 'createLimitOverride',
                 'limit_overrides', NEW.id, to_jsonb(NEW));
         RETURN NULL;
       END $$""",
    """CREATE OR REPLACE FUNCTION bench_pgl_notify() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         PERFORM pg_notify('gateway_bench', json_build_object(
           'kind', 'OVERRIDE_REQUESTED', 'tenant', NEW.tenant_id, 'id', NEW.id)::text);
         RETURN NULL;
       END $$""",
    "DROP TRIGGER IF EXISTS bench_pgl_audit ON limit_overrides",
    """CREATE TRIGGER bench_pgl_audit AFTER INSERT ON limit_overrides FOR EACH ROW
       WHEN (NEW.requested_by = 'bench-pgl') EXECUTE FUNCTION bench_pgl_audit()""",
    "DROP TRIGGER IF EXISTS bench_pgl_notify ON limit_overrides",
    """CREATE TRIGGER bench_pgl_notify AFTER INSERT ON limit_overrides FOR EACH ROW
       WHEN (NEW.requested_by = 'bench-pgl') EXECUTE FUNCTION bench_pgl_notify()""",
)

# Fresh statistics after the write tenant's rows: with stale ones the planner scans `limits`
# whole and JIT-compiles the floor's statements (half a second each).
_ANALYZE = ("ANALYZE limits", "ANALYZE limit_integrity", "ANALYZE limit_overrides")

PEER_SQL: Final[tuple[str, ...]] = (
    _WRITE_TENANT_SQL,
    *_ANALYZE,
    *_COMPUTED_COLUMNS,
    *_Q7_TRIGGERS,
)

CLEANUP_Q7: Final = f"DELETE FROM limit_overrides WHERE tenant_id = '{WRITE_TENANT}'"
