"""The benchmark queries: our document, PostGraphile's equivalent, and the hand-written floor SQL.

The floor is one SQL statement per query that builds exactly our response's `data` as JSON in
PostgreSQL, so the runner can check it returns the same data as the two GraphQL servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.peer_sql import CLEANUP_Q7, WRITE_LIMITS, WRITE_TENANT

__all__ = ["QUERIES", "TENANT", "QuerySpec"]

HERE = Path(__file__).resolve().parent / "queries"
TENANT = "bench-1"
POINT_ID = f"{TENANT}-inc-02000"
# Q4 appends to incidents 00001..00100 in turn (far from Q1's page and Q3's incident): every
# write locks its incident, so one shared incident would measure a row lock, not the server.
WRITE_ROTATE = 100
WRITE_ID = f"{TENANT}-inc-__ROT__"


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """One benchmark query for every peer."""

    key: str
    title: str
    file: str
    variables: dict[str, Any]
    pgl_variables: dict[str, Any]
    floor_sql: str
    floor_args: tuple[Any, ...]
    mutation: bool = False
    # > 0: "__ROT__" in ids is replaced by 00001..rotate, one per request in turn.
    rotate: int = 0
    # Keys PostGraphile cannot answer alike (e.g. `viewer`, its own cursor format): left out of
    # its data check, wherever they occur.
    pgl_ignore: frozenset[str] = field(default_factory=frozenset)
    # Every request writes a row no other request of the load may repeat (a unique rule): the
    # load scripts hand out __ROT__ numbers without repeats (lua/post_unique.lua).
    unique: bool = False
    # Run by the floors in the same transaction, before `floor_sql` (e.g. an advisory lock
    # that a single statement could not take before its snapshot).
    floor_lock_sql: str | None = None
    # Deletes what the writes of a load left behind (None for reads).
    cleanup_sql: str | None = None
    # The gateway must beat its own resolver path by this factor (Q6), else None.
    resolver_target: float | None = None
    # The tenant of our gateway's token (Q7 writes to its own tenant).
    tenant: str = TENANT

    def args_for(self, n: int) -> tuple[Any, ...]:
        """The floor's arguments for the n-th request (n counts from 0)."""
        if not self.rotate:
            return self.floor_args
        number = f"{n % self.rotate + 1:05d}"
        return tuple(
            a.replace("__ROT__", number) if isinstance(a, str) else a for a in self.floor_args
        )

    @property
    def ours(self) -> str:
        """Our GraphQL document."""
        return (HERE / f"{self.file}.graphql").read_text()

    @property
    def postgraphile(self) -> str:
        """PostGraphile's document for the same data."""
        return (HERE / f"{self.file}.postgraphile.graphql").read_text()


# Shared fragment of floor SQL: an incident's first 20 events as our connection object. `ec.n`
# is the incident's event count from a LATERAL join (it answers totalCount and hasNextPage).
_EVENTS_20 = """json_build_object(
  'totalCount', ec.n,
  'nodes', coalesce((
     SELECT json_agg(json_build_object({fields}) ORDER BY e.created_at DESC, e.id DESC)
     FROM (SELECT * FROM incident_events e
           WHERE e.incident_id = i.id AND e.tenant_id = i.tenant_id
           ORDER BY e.created_at DESC, e.id DESC LIMIT 20) e), '[]'::json),
  'pageInfo', json_build_object('hasNextPage', ec.n > 20))"""
_EVENT_COUNT = """LATERAL (SELECT count(*) AS n FROM incident_events c
                  WHERE c.incident_id = i.id AND c.tenant_id = i.tenant_id) ec"""


def _events_20(fields: str) -> str:
    return _EVENTS_20.replace("{fields}", fields)


Q1_FLOOR = f"""
SELECT json_build_object('incidents', json_build_object('nodes', coalesce(json_agg(
  json_build_object(
    'id', i.id, 'title', i.title, 'severity', i.severity,
    'events', {_events_20("'id', e.id, 'eventType', e.event_type, 'createdAt', e.created_at")},
    'breaches', coalesce((
       SELECT json_agg(json_build_object('id', b.id, 'breachType', b.breach_type,
                                         'limit', json_build_object('id', l.id, 'name', l.name))
                       ORDER BY b.breached_at DESC, b.id DESC)
       FROM limit_breaches b JOIN limits l ON l.id = b.limit_id AND l.tenant_id = b.tenant_id
       WHERE b.incident_id = i.id AND b.tenant_id = i.tenant_id), '[]'::json),
    'lessons', coalesce((
       SELECT json_agg(json_build_object('id', s.id, 'title', s.title)
                       ORDER BY s.created_at DESC, s.id DESC)
       FROM lessons_learned s
       WHERE s.source_event_id = i.id AND s.tenant_id = i.tenant_id
         AND s.source_event_type = 'INCIDENT'), '[]'::json))
  ORDER BY i.created_at DESC, i.id DESC), '[]'::json)))::text
FROM (SELECT * FROM incidents WHERE tenant_id = $1
      ORDER BY created_at DESC, id DESC LIMIT $2) i, {_EVENT_COUNT}
"""

Q2_FLOOR = """
SELECT json_build_object('limits', json_build_object('nodes', coalesce(json_agg(
  json_build_object(
    'id', l.id, 'name', l.name, 'limitCategory', l.limit_category,
    'maxValue', l.max_value::text, 'status', l.status, 'createdAt', l.created_at,
    'breaches', json_build_object(
       'totalCount', bc.n,
       'nodes', coalesce((
          SELECT json_agg(json_build_object(
                   'id', b.id, 'breachType', b.breach_type,
                   'valueAtBreach', b.value_at_breach::text, 'limitValue', b.limit_value::text,
                   'breachedAt', b.breached_at) ORDER BY b.breached_at DESC, b.id DESC)
          FROM (SELECT * FROM limit_breaches b
                WHERE b.limit_id = l.id AND b.tenant_id = l.tenant_id
                ORDER BY b.breached_at DESC, b.id DESC LIMIT 5) b), '[]'::json),
       'pageInfo', json_build_object('hasNextPage', bc.n > 5)),
    'overrides', coalesce((
       SELECT json_agg(json_build_object('id', o.id, 'status', o.status,
                                         'overrideValue', o.override_value::text,
                                         'requestedAt', o.requested_at)
                       ORDER BY o.requested_at DESC, o.id DESC)
       FROM limit_overrides o WHERE o.limit_id = l.id AND o.tenant_id = l.tenant_id),
       '[]'::json))
  ORDER BY l.sort_key DESC, l.created_at DESC, l.id DESC), '[]'::json)))::text
FROM (SELECT lim.*, coalesce((SELECT max(breached_at) FROM limit_breaches x
                              WHERE x.limit_id = lim.id AND x.tenant_id = lim.tenant_id
                                AND x.breached_at >= now() - interval '30 days'),
                             'epoch'::timestamptz) AS sort_key
      FROM limits lim WHERE lim.tenant_id = $1
      ORDER BY sort_key DESC, lim.created_at DESC, lim.id DESC LIMIT $2) l,
     LATERAL (SELECT count(*) AS n FROM limit_breaches c
              WHERE c.limit_id = l.id AND c.tenant_id = l.tenant_id) bc
"""

Q3_FLOOR = f"""
SELECT json_build_object('incident', (
  SELECT json_build_object(
    'id', i.id, 'title', i.title, 'severity', i.severity, 'status', i.status,
    'createdAt', i.created_at,
    'events', {
    _events_20(
        "'id', e.id, 'eventType', e.event_type, 'description', e.description, "
        "'createdAt', e.created_at"
    )
})
  FROM incidents i, {_EVENT_COUNT} WHERE i.id = $2 AND i.tenant_id = $1))::text
"""

# The write floor: what our mutation must do, by hand, in one statement: lock and touch the
# incident, insert the event and its audit row (the event's jsonb, as ours stores it), and
# publish both changes the way NOTIFY_MODE=outbox (the default) does: a change_outbox row per
# change, numbered from its sequence in the changes' order, plus the incident's row as this
# transaction commits it in change_snapshots (issue #16 item 3). The running gateways' outbox
# publisher sends and deletes these rows, as it does ours.
Q4_FLOOR = """
WITH inc AS (
  UPDATE incidents SET updated_at = now() WHERE id = $2 AND tenant_id = $1
  RETURNING *
), ev AS (
  INSERT INTO incident_events (tenant_id, incident_id, event_type, description)
  SELECT tenant_id, id, 'NOTE', 'bench q4' FROM inc
  RETURNING *
), audit AS (
  INSERT INTO audit_log (tenant_id, actor, actor_role, operation, entity_type, entity_id, after)
  SELECT tenant_id, 'bench', 'OPERATOR', 'addIncidentEvent', 'incident_events', id,
         to_jsonb(ev) - 'tenant_id'
  FROM ev RETURNING id
), changes AS (
  SELECT nextval(pg_get_serial_sequence('change_outbox', 'id')) AS seq, c.kind, c.entity_id
  FROM ev, inc, audit,
       LATERAL (VALUES (1, 'INCIDENT_UPDATED', inc.id), (2, 'INCIDENT_EVENT_ADDED', ev.id))
         AS c(ord, kind, entity_id)
  ORDER BY c.ord
), snapshot AS (
  INSERT INTO change_snapshots (seq, tenant_id, kind, entity_id, snapshot)
  SELECT seq, $1, kind, entity_id, (SELECT to_jsonb(inc) FROM inc)
  FROM changes WHERE kind = 'INCIDENT_UPDATED'
), outbox AS (
  INSERT INTO change_outbox (id, tenant_id, kind, entity_id)
  SELECT seq, $1, kind, entity_id FROM changes
)
SELECT json_build_object('addIncidentEvent', json_build_object(
         'incidentId', ev.incident_id, 'eventType', ev.event_type,
         'description', ev.description))::text
FROM ev
"""

# Q5: the README's console operation. Our cursor is base64url (unpadded) of the compact JSON
# [ordering, rank (LOW 0 .. CRITICAL 3), createdAt, id]; severity rank and the limits' derived
# values as in drivers/mapping.py; `limitType: "COST*"` is `LIKE 'COST%'` ($2).
Q5_FLOOR = """WITH page AS (
  SELECT i.*, CASE i.severity WHEN 'CRITICAL' THEN 3 WHEN 'HIGH' THEN 2 WHEN 'MEDIUM' THEN 1
                             WHEN 'LOW' THEN 0 ELSE -1 END AS rank
  FROM incidents i
  WHERE i.tenant_id = $1 AND i.status IN ('OPEN', 'ACKNOWLEDGED')
  ORDER BY rank DESC, i.created_at DESC, i.id DESC LIMIT 21
), shown AS (
  SELECT * FROM page ORDER BY rank DESC, created_at DESC, id DESC LIMIT 20
), last AS (
  SELECT * FROM shown ORDER BY rank, created_at, id LIMIT 1
)
SELECT json_build_object(
  'viewer', json_build_object('tenantId', $1::text, 'role', 'OPERATOR'),
  'incidents', json_build_object(
    'totalCount', (SELECT count(*) FROM incidents c
                   WHERE c.tenant_id = $1 AND c.status IN ('OPEN', 'ACKNOWLEDGED')),
    'pageInfo', json_build_object(
      'hasNextPage', (SELECT count(*) FROM page) > 20,
      'endCursor', (SELECT translate(replace(rtrim(encode(convert_to(
                      '["SEVERITY_DESC",' || l.rank || ',"'
                      || to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
                      || '+00:00",' || to_json(l.id)::text || ']', 'UTF8'), 'base64'), '='),
                      E'\n', ''), '+/', '-_')
                    FROM last l)),
    'nodes', coalesce((SELECT json_agg(json_build_object(
      'id', i.id, 'title', i.title, 'severity', i.severity, 'status', i.status,
      'createdAt', i.created_at,
      'events', json_build_object('nodes', coalesce((
         SELECT json_agg(json_build_object('eventType', e.event_type,
                                           'description', e.description,
                                           'createdAt', e.created_at)
                         ORDER BY e.created_at DESC, e.id DESC)
         FROM (SELECT * FROM incident_events e
               WHERE e.incident_id = i.id AND e.tenant_id = i.tenant_id
               ORDER BY e.created_at DESC, e.id DESC LIMIT 5) e), '[]'::json)),
      'breaches', coalesce((
         SELECT json_agg(json_build_object(
                  'breachType', b.breach_type, 'valueAtBreach', b.value_at_breach::text,
                  'limit', json_build_object(
                    'name', l.name,
                    'effectiveValue', coalesce(
                      (SELECT o.override_value FROM limit_overrides o
                       WHERE o.limit_id = l.id AND o.tenant_id = l.tenant_id
                         AND o.status = 'ACTIVE' LIMIT 1), l.max_value)::text))
                  ORDER BY b.breached_at DESC, b.id DESC)
         FROM limit_breaches b JOIN limits l ON l.id = b.limit_id AND l.tenant_id = b.tenant_id
         WHERE b.incident_id = i.id AND b.tenant_id = i.tenant_id), '[]'::json),
      'lessons', coalesce((
         SELECT json_agg(json_build_object('title', s.title, 'status', s.status)
                         ORDER BY s.created_at DESC, s.id DESC)
         FROM lessons_learned s
         WHERE s.source_event_id = i.id AND s.tenant_id = i.tenant_id
           AND s.source_event_type = 'INCIDENT'), '[]'::json))
      ORDER BY i.rank DESC, i.created_at DESC, i.id DESC) FROM shown i), '[]'::json)),
  'limits', json_build_object('nodes', coalesce((SELECT json_agg(json_build_object(
      'name', l.name, 'maxValue', l.max_value::text,
      'effectiveValue', coalesce(l.active_value, l.max_value)::text,
      'breachCount30d', l.n30, 'lastBreachedAt', l.last30,
      'integrity', (SELECT json_build_object('integrityStatus', g.integrity_status)
                    FROM limit_integrity g WHERE g.limit_id = l.id AND g.tenant_id = l.tenant_id))
      ORDER BY coalesce(l.last30, 'epoch') DESC, l.created_at DESC, l.id DESC)
    FROM (SELECT lim.*, r.n30, r.last30,
                 (SELECT o.override_value FROM limit_overrides o
                  WHERE o.limit_id = lim.id AND o.tenant_id = lim.tenant_id
                    AND o.status = 'ACTIVE' LIMIT 1) AS active_value
          FROM limits lim,
               LATERAL (SELECT count(*) AS n30, max(x.breached_at) AS last30
                        FROM limit_breaches x
                        WHERE x.limit_id = lim.id AND x.tenant_id = lim.tenant_id
                          AND x.breached_at >= now() - interval '30 days') r
          WHERE lim.tenant_id = $1 AND lim.limit_category = 'BUDGET' AND lim.status = 'ACTIVE'
            AND lim.limit_type LIKE $2
          ORDER BY coalesce(r.last30, 'epoch') DESC, lim.created_at DESC, lim.id DESC
          LIMIT 20) l), '[]'::json))
)::text
"""

# Q6: the operator dashboard. The breaker list as ours gives it (the default breaker is listed
# before its first write); the metrics as drivers/analytics.py counts them ($2 = window days).
Q6_FLOOR = """SELECT json_build_object(
  'circuitBreakers', (
    SELECT json_agg(json_build_object(
             'name', b.name, 'state', CASE WHEN b.disabled THEN 'OPEN' ELSE 'CLOSED' END,
             'isOpen', b.disabled, 'consecutiveFailures', b.consecutive_failures,
             'disabledUntil', b.disabled_until, 'disabledBy', b.disabled_by,
             'reason', CASE WHEN b.disabled THEN b.disabled_reason END,
             'updatedAt', b.updated_at) ORDER BY b.name)
    FROM (SELECT name, disabled, consecutive_failures, disabled_until, disabled_by,
                 disabled_reason, updated_at
          FROM circuit_breakers WHERE tenant_id = $1
          UNION ALL
          SELECT 'costsim_v2', false, 0, NULL, NULL, NULL, NULL
          WHERE NOT EXISTS (SELECT FROM circuit_breakers
                            WHERE tenant_id = $1 AND name = 'costsim_v2')) b),
  'overrides', json_build_object(
    'totalCount', (SELECT count(*) FROM limit_overrides
                   WHERE tenant_id = $1 AND status = 'ACTIVE'),
    'nodes', coalesce((
      SELECT json_agg(json_build_object(
               'id', o.id, 'limitId', o.limit_id, 'overrideValue', o.override_value::text,
               'status', o.status, 'requestedBy', o.requested_by, 'startsAt', o.starts_at,
               'expiresAt', o.expires_at) ORDER BY o.requested_at DESC, o.id DESC)
      FROM (SELECT * FROM limit_overrides WHERE tenant_id = $1 AND status = 'ACTIVE'
            ORDER BY requested_at DESC, id DESC LIMIT 20) o), '[]'::json)),
  'lessons', json_build_object('nodes', coalesce((
      SELECT json_agg(json_build_object(
               'id', s.id, 'title', s.title, 'severity', s.severity, 'status', s.status,
               'createdAt', s.created_at) ORDER BY s.created_at DESC, s.id DESC)
      FROM (SELECT * FROM lessons_learned WHERE tenant_id = $1
            ORDER BY created_at DESC, id DESC LIMIT 20) s), '[]'::json)),
  'incidentMetrics', (
    SELECT json_build_object(
             'windowDays', $2::int, 'open', m.open, 'acknowledged', m.ack,
             'active', m.open + m.ack, 'resolved', m.resolved, 'total', m.total,
             'averageResolutionMs', m.avg_ms,
             'bySeverity', json_build_array(
               json_build_object('severity', 'CRITICAL', 'count', m.critical),
               json_build_object('severity', 'HIGH', 'count', m.high),
               json_build_object('severity', 'MEDIUM', 'count', m.medium),
               json_build_object('severity', 'LOW', 'count', m.low)))
    FROM (SELECT count(*) FILTER (WHERE status = 'OPEN') AS open,
                 count(*) FILTER (WHERE status = 'ACKNOWLEDGED') AS ack,
                 count(*) FILTER (WHERE status = 'RESOLVED') AS resolved,
                 count(*) AS total,
                 avg((extract(epoch FROM resolved_at - created_at) * 1000)::float8)
                   FILTER (WHERE resolved_at IS NOT NULL) AS avg_ms,
                 count(*) FILTER (WHERE severity = 'CRITICAL') AS critical,
                 count(*) FILTER (WHERE severity = 'HIGH') AS high,
                 count(*) FILTER (WHERE severity = 'MEDIUM') AS medium,
                 count(*) FILTER (WHERE severity = 'LOW') AS low
          FROM incidents
          WHERE tenant_id = $1 AND created_at >= now() - make_interval(days => $2::int)) m)
)::text
"""

# Q7: what requestOverride does for a scheduled request, by hand: the tenant's advisory lock
# (taken first, in its own statement: a single statement's snapshot would predate it), then one
# statement that checks the limit, the 5-ACTIVE cap and stacking, inserts the override and its
# audit row (no notification: ours sends none for an override request).
Q7_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('limit_overrides:' || $1::text, 0))"
Q7_FLOOR = """
WITH lim AS (
  SELECT l.id, l.tenant_id, l.max_value FROM limits l WHERE l.id = $2 AND l.tenant_id = $1
), ok AS (
  SELECT lim.* FROM lim
  WHERE (SELECT count(*) FROM limit_overrides
         WHERE tenant_id = $1 AND status = 'ACTIVE') < 5
    AND NOT EXISTS (SELECT FROM limit_overrides
                    WHERE tenant_id = $1 AND limit_id = $2
                      AND status IN ('PENDING', 'APPROVED', 'ACTIVE'))
), ins AS (
  INSERT INTO limit_overrides (tenant_id, limit_id, original_value, override_value, status,
                               requested_by, reason, starts_at, expires_at)
  SELECT tenant_id, id, max_value, 250, 'PENDING', 'bench', $3, $4::text::timestamptz,
         $4::text::timestamptz + interval '24 hours'
  FROM ok
  RETURNING *
), audit AS (
  INSERT INTO audit_log (tenant_id, actor, actor_role, operation, entity_type, entity_id, after)
  SELECT tenant_id, 'bench', 'OPERATOR', 'requestOverride', 'limit_overrides', id, to_jsonb(ins)
  FROM ins RETURNING id
)
SELECT json_build_object('requestOverride', json_build_object(
         'limitId', ins.limit_id, 'overrideValue', ins.override_value::text,
         'status', ins.status, 'reason', ins.reason, 'startsAt', ins.starts_at,
         'expiresAt', ins.expires_at))::text
FROM ins, (SELECT count(*) FROM audit) a
"""
Q7_REASON = "bench q7: quarter-end batch"
Q7_STARTS = "2030-01-01T00:00:00Z"
Q7_LIMIT_ID = f"{WRITE_TENANT}-lim-__ROT__"

QUERIES: tuple[QuerySpec, ...] = (
    QuerySpec(
        "Q1",
        "console: 50 incidents x events(first: 20), breaches, lessons",
        "q1_console",
        {"first": 50},
        {"first": 50, "tenant": TENANT},
        Q1_FLOOR,
        (TENANT, 50),
    ),
    QuerySpec(
        "Q2",
        "limits: 100 limits x breaches(first: 5), overrides",
        "q2_limits",
        {"first": 100},
        {"first": 100, "tenant": TENANT},
        Q2_FLOOR,
        (TENANT, 100),
    ),
    QuerySpec(
        "Q3",
        "point: 1 incident x 20 events",
        "q3_point",
        {"id": POINT_ID},
        {"id": POINT_ID},
        Q3_FLOOR,
        (TENANT, POINT_ID),
    ),
    QuerySpec(
        "Q4",
        "write: addIncidentEvent vs createIncidentEvent",
        "q4_add_event",
        {"incidentId": WRITE_ID},
        {"incidentId": WRITE_ID, "tenant": TENANT},
        Q4_FLOOR,
        (TENANT, WRITE_ID),
        mutation=True,
        rotate=WRITE_ROTATE,
        cleanup_sql="DELETE FROM incident_events WHERE description = 'bench q4'",
    ),
    QuerySpec(
        "Q5",
        "README console: incidents(status filter, SEVERITY_DESC) x events, breaches, lessons"
        " + limits(COST*)",
        "q5_readme_console",
        {},
        {"tenant": TENANT},
        Q5_FLOOR,
        (TENANT, "COST%"),
        pgl_ignore=frozenset({"viewer", "endCursor"}),
    ),
    QuerySpec(
        "Q6",
        "operator dashboard: circuitBreakers + overrides(ACTIVE) + lessons + incidentMetrics",
        "q6_dashboard",
        {},
        {"tenant": TENANT},
        Q6_FLOOR,
        (TENANT, 365),
        resolver_target=5.0,
    ),
    QuerySpec(
        "Q7",
        "governance write: requestOverride (scheduled) vs createLimitOverride + triggers",
        "q7_request_override",
        {"limitId": Q7_LIMIT_ID},
        {"limitId": Q7_LIMIT_ID, "tenant": WRITE_TENANT},
        Q7_FLOOR,
        (WRITE_TENANT, Q7_LIMIT_ID, Q7_REASON, Q7_STARTS),
        mutation=True,
        rotate=WRITE_LIMITS,
        unique=True,
        floor_lock_sql=Q7_LOCK,
        cleanup_sql=CLEANUP_Q7,
        tenant=WRITE_TENANT,
    ),
)
