"""The benchmark queries: our document, PostGraphile's equivalent, and the hand-written floor SQL.

The floor is one SQL statement per query that builds exactly our response's `data` as JSON in
PostgreSQL, so the runner can check it returns the same data as the two GraphQL servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    # Fields that differ by design between peers (generated ids of a write).
    ignore: frozenset[str] = field(default_factory=frozenset)

    def args_for(self, n: int) -> tuple[Any, ...]:
        """The floor's arguments for the n-th request (n counts from 0)."""
        if not self.rotate:
            return self.floor_args
        number = f"{n % self.rotate + 1:05d}"
        return tuple(
            a.replace("__ROT__", number) if isinstance(a, str) else a for a in self.floor_args
        )

    def variables_for_check(self, variables: dict[str, Any]) -> dict[str, Any]:
        """Variables of the equality check (the first rotated row)."""
        return {
            k: v.replace("__ROT__", "00001") if isinstance(v, str) else v
            for k, v in variables.items()
        }

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

# The write floor: what our mutation must do (lock and touch the incident, insert the event and
# its audit row, notify) in one statement.
Q4_FLOOR = """
WITH inc AS (
  UPDATE incidents SET updated_at = now() WHERE id = $2 AND tenant_id = $1
  RETURNING id, tenant_id
), ev AS (
  INSERT INTO incident_events (tenant_id, incident_id, event_type, description)
  SELECT tenant_id, id, 'NOTE', 'bench q4' FROM inc
  RETURNING id, tenant_id, incident_id, event_type, description
), audit AS (
  INSERT INTO audit_log (tenant_id, actor, actor_role, operation, entity_type, entity_id, after)
  SELECT tenant_id, 'bench', 'OPERATOR', 'addIncidentEvent', 'IncidentEvent', id,
         jsonb_build_object('description', description)
  FROM ev RETURNING id
)
SELECT json_build_object('addIncidentEvent', json_build_object(
         'incidentId', ev.incident_id, 'eventType', ev.event_type,
         'description', ev.description))::text
FROM ev, LATERAL (SELECT pg_notify('gateway_bench', ev.id)) n, (SELECT count(*) FROM audit) a
"""

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
    ),
)
