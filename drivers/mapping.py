"""The one declarative description of every table-backed GraphQL type (ARCHITECTURE.md § Reads).

An `Entity` names its table, its record class and the SQL of each derived field; every other
record field is the table column of the same name. A `Relation` says how a nested field reaches
its children (key, order, filter, shape). The resolver path's batch loaders are generated from
these descriptions (drivers/reads.py), and the compiled path reads the same ones, so the two
cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Label,
    Table,
    case,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.types import DateTime

from drivers import records as r
from drivers import tables as t
from drivers.keyset import Ordering, OrderKey

__all__ = ["ENTITIES", "RELATIONS", "Entity", "Relation", "incident_orderings", "limit_orderings"]

# Sentinel for "no value" inside sort keys: keyset comparisons need non-null keys.
EPOCH = literal_column("'epoch'::timestamptz", DateTime(timezone=True))
THIRTY_DAYS = text("interval '30 days'")


@dataclass(frozen=True, eq=False)
class Entity:
    name: str
    table: Table
    record: type[Any]
    derived: Mapping[str, ColumnElement[Any]] = field(default_factory=dict)
    columns: tuple[Label[Any], ...] = field(init=False)

    def __post_init__(self) -> None:
        cols = tuple(
            (self.derived[f.name] if f.name in self.derived else self.table.c[f.name]).label(f.name)
            for f in dataclasses.fields(self.record)
        )
        object.__setattr__(self, "columns", cols)

    def tenant_filter(self, tenant_id: str) -> ColumnElement[bool]:
        return self.table.c.tenant_id == tenant_id


@dataclass(frozen=True, eq=False)
class Relation:
    target: Entity
    parent_field: str
    child_key: ColumnElement[Any]
    kind: Literal["one", "list", "connection"]
    ordering: Ordering | None = None
    where: ColumnElement[bool] | None = None


def _desc_ts(name: str, expr: ColumnElement[Any], pk: ColumnElement[Any]) -> Ordering:
    return Ordering(name, (OrderKey(expr, True, "ts"), OrderKey(pk, True, "str")))


# --- limits -------------------------------------------------------------------------------------
_lim, _brk, _ovr = t.limits, t.limit_breaches, t.limit_overrides

_last_breach_30d = (
    select(func.max(_brk.c.breached_at))
    .where(
        _brk.c.limit_id == _lim.c.id,
        _brk.c.tenant_id == _lim.c.tenant_id,
        _brk.c.breached_at >= func.now() - THIRTY_DAYS,
    )
    .scalar_subquery()
)
_breach_count_30d = (
    select(func.count())
    .where(
        _brk.c.limit_id == _lim.c.id,
        _brk.c.tenant_id == _lim.c.tenant_id,
        _brk.c.breached_at >= func.now() - THIRTY_DAYS,
    )
    .scalar_subquery()
)
_active_override_value = (
    select(_ovr.c.override_value)
    .where(
        _ovr.c.limit_id == _lim.c.id,
        _ovr.c.tenant_id == _lim.c.tenant_id,
        _ovr.c.status == "ACTIVE",
    )
    .limit(1)
    .scalar_subquery()
)

LIMIT = Entity(
    "Limit",
    _lim,
    r.LimitRecord,
    derived={
        "effective_value": func.coalesce(_active_override_value, _lim.c.max_value),
        "breach_count_30d": _breach_count_30d,
        "last_breached_at": _last_breach_30d,
    },
)
LIMIT_INTEGRITY = Entity("LimitIntegrity", t.limit_integrity, r.LimitIntegrityRecord)
LIMIT_BREACH = Entity("LimitBreach", _brk, r.LimitBreachRecord)
LIMIT_OVERRIDE = Entity(
    "LimitOverride",
    _ovr,
    r.LimitOverrideRecord,
    derived={
        "effective_value": case(
            (_ovr.c.status == "ACTIVE", _ovr.c.override_value), else_=_ovr.c.original_value
        )
    },
)

limit_orderings: dict[str, Ordering] = {
    # DOMAIN.md §3.1: last breach in the last 30 days (nulls last), then newest first.
    "LAST_BREACHED_DESC": Ordering(
        "LAST_BREACHED_DESC",
        (
            OrderKey(func.coalesce(_last_breach_30d, EPOCH), True, "ts"),
            OrderKey(_lim.c.created_at, True, "ts"),
            OrderKey(_lim.c.id, True, "str"),
        ),
    ),
    "CREATED_AT_DESC": _desc_ts("CREATED_AT_DESC", _lim.c.created_at, _lim.c.id),
}

# --- incidents ----------------------------------------------------------------------------------
_inc, _evt, _les = t.incidents, t.incident_events, t.lessons_learned

INCIDENT = Entity("Incident", _inc, r.IncidentRecord)
INCIDENT_EVENT = Entity("IncidentEvent", _evt, r.IncidentEventRecord)
LESSON = Entity("Lesson", _les, r.LessonRecord)

_severity_rank = case(
    {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1}, value=_inc.c.severity, else_=0
)
incident_orderings: dict[str, Ordering] = {
    "CREATED_AT_DESC": _desc_ts("CREATED_AT_DESC", _inc.c.created_at, _inc.c.id),
    "CREATED_AT_ASC": Ordering(
        "CREATED_AT_ASC",
        (OrderKey(_inc.c.created_at, False, "ts"), OrderKey(_inc.c.id, False, "str")),
    ),
    "SEVERITY_DESC": Ordering(
        "SEVERITY_DESC",
        (
            OrderKey(_severity_rank, True, "int"),
            OrderKey(_inc.c.created_at, True, "ts"),
            OrderKey(_inc.c.id, True, "str"),
        ),
    ),
    "RESOLVED_AT_DESC": Ordering(
        "RESOLVED_AT_DESC",
        (
            OrderKey(func.coalesce(_inc.c.resolved_at, EPOCH), True, "ts"),
            OrderKey(_inc.c.id, True, "str"),
        ),
    ),
}

# --- circuit breakers (§1.14) -------------------------------------------------------------------
_cb, _bi = t.circuit_breakers, t.breaker_incidents

CIRCUIT_BREAKER = Entity(
    "CircuitBreaker",
    _cb,
    r.CircuitBreakerRecord,
    derived={
        "opened_at": select(_bi.c.created_at)
        .where(_bi.c.id == _cb.c.incident_id, _bi.c.tenant_id == _cb.c.tenant_id)
        .scalar_subquery()
    },
)
BREAKER_INCIDENT = Entity("BreakerIncident", _bi, r.BreakerIncidentRecord)
ALERT_OUTBOX = Entity("AlertOutbox", t.alert_outbox, r.AlertOutboxRecord)
_breaker_incidents_newest = _desc_ts("BREAKER_INCIDENTS_NEWEST", _bi.c.created_at, _bi.c.id)

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        INCIDENT,
        INCIDENT_EVENT,
        LESSON,
        LIMIT,
        LIMIT_INTEGRITY,
        LIMIT_BREACH,
        LIMIT_OVERRIDE,
        CIRCUIT_BREAKER,
        BREAKER_INCIDENT,
        ALERT_OUTBOX,
    )
}

RELATIONS: dict[tuple[str, str], Relation] = {
    # Root point lookups are to-one relations keyed by the `id` argument.
    ("Query", "incident"): Relation(INCIDENT, "id", _inc.c.id, "one"),
    ("Query", "limit"): Relation(LIMIT, "id", _lim.c.id, "one"),
    ("Incident", "events"): Relation(
        INCIDENT_EVENT,
        "id",
        _evt.c.incident_id,
        "connection",
        _desc_ts("EVENTS_NEWEST", _evt.c.created_at, _evt.c.id),
    ),
    ("Incident", "breaches"): Relation(
        LIMIT_BREACH,
        "id",
        _brk.c.incident_id,
        "list",
        _desc_ts("BREACHES_NEWEST", _brk.c.breached_at, _brk.c.id),
    ),
    ("Incident", "lessons"): Relation(
        LESSON,
        "id",
        _les.c.source_event_id,
        "list",
        _desc_ts("LESSONS_NEWEST", _les.c.created_at, _les.c.id),
        where=_les.c.source_event_type == "INCIDENT",
    ),
    ("Limit", "breaches"): Relation(
        LIMIT_BREACH,
        "id",
        _brk.c.limit_id,
        "connection",
        _desc_ts("BREACHES_NEWEST", _brk.c.breached_at, _brk.c.id),
    ),
    ("Limit", "overrides"): Relation(
        LIMIT_OVERRIDE,
        "id",
        _ovr.c.limit_id,
        "list",
        _desc_ts("OVERRIDES_NEWEST", _ovr.c.requested_at, _ovr.c.id),
    ),
    ("Limit", "integrity"): Relation(LIMIT_INTEGRITY, "id", t.limit_integrity.c.limit_id, "one"),
    ("Limit", "activeOverride"): Relation(
        LIMIT_OVERRIDE, "id", _ovr.c.limit_id, "one", where=_ovr.c.status == "ACTIVE"
    ),
    ("LimitBreach", "limit"): Relation(LIMIT, "limit_id", _lim.c.id, "one"),
    ("LimitBreach", "incident"): Relation(INCIDENT, "incident_id", _inc.c.id, "one"),
    ("LimitOverride", "limit"): Relation(LIMIT, "limit_id", _lim.c.id, "one"),
    ("Query", "circuitBreaker"): Relation(CIRCUIT_BREAKER, "name", _cb.c.name, "one"),
    ("CircuitBreaker", "currentIncident"): Relation(
        BREAKER_INCIDENT, "incident_id", _bi.c.id, "one"
    ),
    # Unresolved only (the default), and every incident (includeResolved: true).
    ("CircuitBreaker", "incidents"): Relation(
        BREAKER_INCIDENT,
        "name",
        _bi.c.circuit_breaker_name,
        "connection",
        _breaker_incidents_newest,
        where=_bi.c.resolved.is_(False),
    ),
    ("CircuitBreaker", "allIncidents"): Relation(
        BREAKER_INCIDENT,
        "name",
        _bi.c.circuit_breaker_name,
        "connection",
        _breaker_incidents_newest,
    ),
}
