"""The one declarative description of every table-backed GraphQL type (ARCHITECTURE.md § Reads).

An `Entity` names its table, its record class and the SQL of each derived field; every other
record field is the table column of the same name. A `Relation` says how a nested field reaches
its children (key, order, filter, shape). The resolver path's batch loaders are generated from
these descriptions (drivers/reads.py), and the compiled path reads the same ones, so the two
cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Label,
    String,
    Table,
    and_,
    any_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import BigInteger, DateTime, Float

from drivers import enums
from drivers import records as r
from drivers import tables as t
from drivers.keyset import Ordering, OrderKey

__all__ = [
    "ENTITIES",
    "RELATIONS",
    "ROOT_LISTS",
    "ArgFilter",
    "Entity",
    "Relation",
    "RootList",
    "incident_orderings",
    "like_pattern",
    "limit_orderings",
]

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
    # A condition on the PARENT row: when false the field is null (compiled path only; the
    # resolver checks the same rule in Python, e.g. Lesson.sourceIncident).
    parent_where: ColumnElement[bool] | None = None


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
        ),
        "limit_name": select(_lim.c.name)
        .where(_lim.c.id == _ovr.c.limit_id)
        .correlate(_ovr)
        .scalar_subquery(),
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

# The SQL twin of IncidentSeverity.rank (LOW 0 .. CRITICAL 3), for SEVERITY_DESC.
_severity_rank = case(
    {s.value: s.rank for s in enums.IncidentSeverity}, value=_inc.c.severity, else_=-1
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

# --- lessons and proposals (§1.9-1.10) ------------------------------------------------------------
_pp = t.policy_proposals

POLICY_PROPOSAL = Entity("PolicyProposal", _pp, r.PolicyProposalRecord)

lesson_orderings: dict[str, Ordering] = {
    "CREATED_AT_DESC": _desc_ts("LESSONS_CREATED_AT_DESC", _les.c.created_at, _les.c.id),
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

# --- controls: breaches, overrides, signals, scopes (root lists) ---------------------------------
_sig, _scp = t.threshold_signals, t.execution_scopes

THRESHOLD_SIGNAL = Entity("ThresholdSignal", _sig, r.ThresholdSignalRecord)
EXECUTION_SCOPE = Entity("ExecutionScope", _scp, r.ExecutionScopeRecord)

breach_orderings: dict[str, Ordering] = {
    "BREACHED_AT_DESC": _desc_ts("BREACHED_AT_DESC", _brk.c.breached_at, _brk.c.id),
}
override_orderings: dict[str, Ordering] = {
    "REQUESTED_AT_DESC": _desc_ts("REQUESTED_AT_DESC", _ovr.c.requested_at, _ovr.c.id),
}
signal_orderings: dict[str, Ordering] = {
    "TIMESTAMP_DESC": Ordering(
        "TIMESTAMP_DESC",
        (OrderKey(_sig.c.timestamp, True, "ts"), OrderKey(_sig.c.id, True, "int")),
    ),
}

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
        POLICY_PROPOSAL,
        CIRCUIT_BREAKER,
        BREAKER_INCIDENT,
        ALERT_OUTBOX,
        THRESHOLD_SIGNAL,
        EXECUTION_SCOPE,
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
    ("Query", "lesson"): Relation(LESSON, "id", _les.c.id, "one"),
    # Only lessons whose source_event_type is INCIDENT follow this one (checked by the resolver).
    ("Lesson", "sourceIncident"): Relation(
        INCIDENT,
        "source_event_id",
        _inc.c.id,
        "one",
        parent_where=_les.c.source_event_type == "INCIDENT",
    ),
    ("Lesson", "draftProposal"): Relation(POLICY_PROPOSAL, "draft_proposal_id", _pp.c.id, "one"),
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
    ("Query", "override"): Relation(LIMIT_OVERRIDE, "id", _ovr.c.id, "one"),
    ("Query", "thresholdSignal"): Relation(THRESHOLD_SIGNAL, "signal_id", _sig.c.signal_id, "one"),
    ("Incident", "executionScopes"): Relation(
        EXECUTION_SCOPE,
        "id",
        _scp.c.incident_id,
        "list",
        _desc_ts("SCOPES_NEWEST", _scp.c.created_at, _scp.c.id),
    ),
}

# --- runs, violations, failures, evidence (incident writes; DOMAIN.md §1.8, §1.11-1.13) ---------
_run, _stp, _fail = t.runs, t.run_steps, t.run_failures
_viol, _evd, _fev = t.policy_violations, t.incident_evidence, t.failure_evidence

RUN = Entity("Run", _run, r.RunRecord)
RUN_STEP = Entity("RunStep", _stp, r.RunStepRecord)
RUN_FAILURE = Entity("LlmFailure", _fail, r.RunFailureRecord)
FAILURE_EVIDENCE = Entity("FailureEvidence", _fev, r.FailureEvidenceRecord)
POLICY_VIOLATION = Entity("PolicyViolation", _viol, r.PolicyViolationRecord)
INCIDENT_EVIDENCE = Entity("IncidentEvidence", _evd, r.IncidentEvidenceRecord)

run_orderings: dict[str, Ordering] = {
    "CREATED_AT_DESC": _desc_ts("CREATED_AT_DESC", _run.c.created_at, _run.c.id),
}

ENTITIES.update(
    {
        e.name: e
        for e in (
            RUN,
            RUN_STEP,
            RUN_FAILURE,
            FAILURE_EVIDENCE,
            POLICY_VIOLATION,
            INCIDENT_EVIDENCE,
        )
    }
)

RELATIONS.update(
    {
        ("Query", "run"): Relation(RUN, "id", _run.c.id, "one"),
        ("Incident", "sourceRun"): Relation(RUN, "source_run_id", _run.c.id, "one"),
        ("Incident", "evidence"): Relation(
            INCIDENT_EVIDENCE,
            "id",
            _evd.c.incident_id,
            "list",
            _desc_ts("EVIDENCE_NEWEST", _evd.c.created_at, _evd.c.id),
        ),
        ("Run", "incidents"): Relation(
            INCIDENT,
            "id",
            _inc.c.source_run_id,
            "connection",
            _desc_ts("RUN_INCIDENTS_NEWEST", _inc.c.created_at, _inc.c.id),
        ),
        ("Run", "breaches"): Relation(
            LIMIT_BREACH,
            "id",
            _brk.c.run_id,
            "connection",
            _desc_ts("BREACHES_NEWEST", _brk.c.breached_at, _brk.c.id),
        ),
        ("Run", "steps"): Relation(
            RUN_STEP,
            "id",
            _stp.c.run_id,
            "connection",
            Ordering("STEPS_IN_ORDER", (OrderKey(_stp.c.step_index, False, "int"),)),
        ),
        ("Run", "failures"): Relation(
            RUN_FAILURE,
            "id",
            _fail.c.run_id,
            "connection",
            _desc_ts("FAILURES_NEWEST", _fail.c.created_at, _fail.c.id),
        ),
        ("Run", "violations"): Relation(
            POLICY_VIOLATION,
            "id",
            _viol.c.run_id,
            "connection",
            _desc_ts("VIOLATIONS_NEWEST", _viol.c.created_at, _viol.c.id),
        ),
        ("LlmFailure", "evidence"): Relation(
            FAILURE_EVIDENCE,
            "id",
            _fev.c.failure_id,
            "list",
            _desc_ts("FAILURE_EVIDENCE_NEWEST", _fev.c.created_at, _fev.c.id),
        ),
        ("PolicyViolation", "incident"): Relation(INCIDENT, "incident_id", _inc.c.id, "one"),
        ("Lesson", "sourceRun"): Relation(RUN, "source_run_id", _run.c.id, "one"),
        ("LimitBreach", "run"): Relation(RUN, "run_id", _run.c.id, "one"),
    }
)


# --- root lists and list arguments (both read paths) --------------------------------------------

FilterOp = Literal["in", "in_or_null", "eq", "gte", "lt", "pattern", "choice"]


def like_pattern(value: str) -> str:
    """`limitType` semantics: exact, or a prefix when it ends in `*` (LIKE, `/` escapes)."""
    prefix = value.endswith("*")
    body = value[:-1] if prefix else value
    body = body.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return body + "%" if prefix else body


@dataclass(frozen=True, eq=False)
class ArgFilter:
    """One filter field or argument, described once: its SQL and its GraphQL input field.

    `op` says how a given value narrows the rows: `in` (any of a list), `in_or_null` (`in`, and
    a null column also matches when the list holds `null_as`), `eq`, `gte`, `lt`, `pattern`
    (exact, or a prefix with `*`) and `choice` (one enum value -> one condition of `choices`).
    `value` is the Python type of one value (str, datetime or an enum of drivers/enums.py; a
    list of them for `in`/`in_or_null`), `graphql_id` makes a str an `ID`. Null or omitted
    narrows nothing, unless `default` holds values used instead (DOMAIN.md §3.1).
    Both read paths build the clause with `where` from a bound parameter (`prepare`d value).
    """

    column: ColumnElement[Any]
    op: FilterOp
    value: type[Any] = str
    description: str = ""
    null_as: str | None = None
    graphql_id: bool = False
    default: tuple[str, ...] | None = None
    choices: Mapping[str, ColumnElement[bool]] = field(default_factory=dict)

    @property
    def many(self) -> bool:
        """Whether the GraphQL value is a list."""
        return self.op in ("in", "in_or_null")

    @property
    def param_type(self) -> Any:
        """The SQL type of the bound parameter `where` compares with."""
        if self.many:
            return ARRAY(self.column.type)
        if self.op in ("pattern", "choice"):
            return String()
        return self.column.type

    def prepare(self, value: Any) -> Any:
        """The parameter for a given (non-null) input value: enums as their strings."""
        if self.many:
            return [str(v) for v in value]
        if self.op == "pattern":
            return like_pattern(str(value))
        if self.op == "choice" or isinstance(value, str):
            return str(value)
        return value

    def where(self, param: ColumnElement[Any]) -> ColumnElement[bool]:  # noqa: PLR0911 - one return per op
        """The condition on the table's own columns (callers adapt it to their alias)."""
        column = self.column
        if self.op == "in":
            return column == any_(param)
        if self.op == "in_or_null":
            null_matches = literal(self.null_as, String()) == any_(param)
            return or_(column == any_(param), column.is_(None) & null_matches)
        if self.op == "eq":
            return column == param
        if self.op == "gte":
            return column >= param
        if self.op == "lt":
            return column < param
        if self.op == "pattern":
            return column.like(param, escape="/")
        return or_(*(and_(param == name, cond) for name, cond in self.choices.items()))


# Binds one filter's parameter: (filter, argument name, input field name or None) -> parameter.
ParamOf = Callable[[ArgFilter, str, "str | None"], ColumnElement[Any]]


@dataclass(frozen=True, eq=False)
class RootList:
    """A root connection: its entity, filters, orderings, defaults and page size.

    `filters` are the fields of the `filter` input object (Python names, in GraphQL order;
    schema/filters.py generates the input type from them), `arg_filters` top-level arguments
    that narrow the list (e.g. `overrides(status:)`). `order_arg` names the ordering argument
    when the list has one; otherwise `default_order` is the only order.
    """

    entity: Entity
    orderings: Mapping[str, Ordering]
    default_order: str
    filters: Mapping[str, ArgFilter] = field(default_factory=dict)
    order_arg: str | None = None
    arg_filters: Mapping[str, ArgFilter] = field(default_factory=dict)
    page_size: int = 20

    def ordering(self, name: str | None) -> Ordering:
        """The named ordering, or the default one."""
        return self.orderings[name or self.default_order]

    def where(
        self, given: Mapping[str, Any], args: Mapping[str, Any], param: ParamOf
    ) -> list[ColumnElement[bool]]:
        """The list's conditions (without the tenant's) for these filter values and arguments.

        `given` is the filter object (field -> value), `args` the top-level arguments; a
        null or omitted value narrows nothing, or applies the filter's `default`.
        """
        clauses: list[ColumnElement[bool]] = []
        for name, flt in self.arg_filters.items():
            if args.get(name) is not None:
                clauses.append(flt.where(param(flt, name, None)))
        for name, flt in self.filters.items():
            if given.get(name) is not None:
                clauses.append(flt.where(param(flt, "filter", name)))
            elif flt.default is not None:
                clauses.append(flt.where(literal(list(flt.default), flt.param_type)))
        return clauses


def _in(column: ColumnElement[Any], value: type[Any], description: str) -> ArgFilter:
    return ArgFilter(column, "in", value, description)


_CREATED_AFTER = "Created at or after this instant."
_CREATED_BEFORE = "Created before this instant."
# DOMAIN.md §3.17: HISTORICAL = RESOLVED longer ago than the retention (30 days).
HISTORY_RETENTION = THIRTY_DAYS

ROOT_LISTS: dict[tuple[str, str], RootList] = {
    ("Query", "incidents"): RootList(
        INCIDENT,
        incident_orderings,
        "CREATED_AT_DESC",
        filters={
            "status": _in(_inc.c.status, enums.IncidentStatus, "Any of these statuses."),
            "severity": _in(_inc.c.severity, enums.IncidentSeverity, "Any of these severities."),
            "category": ArgFilter(
                _inc.c.category,
                "in_or_null",
                str,
                "Any of these categories; UNCATEGORIZED also matches a null category.",
                null_as=enums.UNCATEGORIZED,
            ),
            "cause_type": _in(
                _inc.c.cause_type, enums.IncidentCauseType, "Any of these cause types."
            ),
            "trigger_type": _in(_inc.c.trigger_type, str, "Any of these trigger types."),
            "source_run_id": ArgFilter(
                _inc.c.source_run_id, "eq", str, "Only incidents of this run."
            ),
            "created_after": ArgFilter(_inc.c.created_at, "gte", datetime, _CREATED_AFTER),
            "created_before": ArgFilter(_inc.c.created_at, "lt", datetime, _CREATED_BEFORE),
            "resolved_after": ArgFilter(
                _inc.c.resolved_at, "gte", datetime, "Resolved at or after this instant."
            ),
            "resolved_before": ArgFilter(
                _inc.c.resolved_at, "lt", datetime, "Resolved before this instant."
            ),
            "topic": ArgFilter(
                _inc.c.status,
                "choice",
                enums.IncidentListTopic,
                "ACTIVE (OPEN, ACKNOWLEDGED), RESOLVED, HISTORICAL (resolved > 30 days ago).",
                choices={
                    # No IN (...): a compiled plan cannot hold SQLAlchemy's expanding IN.
                    "ACTIVE": or_(_inc.c.status == "OPEN", _inc.c.status == "ACKNOWLEDGED"),
                    "RESOLVED": _inc.c.status == "RESOLVED",
                    "HISTORICAL": (_inc.c.status == "RESOLVED")
                    & (_inc.c.resolved_at < func.now() - HISTORY_RETENTION),
                },
            ),
        },
        order_arg="order_by",
    ),
    ("Query", "limits"): RootList(
        LIMIT,
        limit_orderings,
        "LAST_BREACHED_DESC",
        filters={
            # DOMAIN.md §3.1: an omitted (or null) category means BUDGET, status ACTIVE.
            "category": ArgFilter(
                _lim.c.limit_category,
                "in",
                enums.LimitCategory,
                "Any of these categories (default BUDGET).",
                default=("BUDGET",),
            ),
            "status": ArgFilter(
                _lim.c.status,
                "in",
                enums.LimitStatus,
                "Any of these statuses (default ACTIVE).",
                default=("ACTIVE",),
            ),
            "scope": _in(_lim.c.scope, enums.LimitScope, "Any of these scopes."),
            "enforcement": _in(
                _lim.c.enforcement, enums.LimitEnforcement, "Any of these enforcements."
            ),
            "limit_type": ArgFilter(
                _lim.c.limit_type,
                "pattern",
                str,
                "Exact type, or a prefix ending in `*` (e.g. TOKENS_*).",
            ),
            "created_after": ArgFilter(_lim.c.created_at, "gte", datetime, _CREATED_AFTER),
            "created_before": ArgFilter(_lim.c.created_at, "lt", datetime, _CREATED_BEFORE),
        },
    ),
    ("Query", "limitBreaches"): RootList(
        LIMIT_BREACH,
        breach_orderings,
        "BREACHED_AT_DESC",
        filters={
            "limit_id": ArgFilter(_brk.c.limit_id, "eq", str, "One limit.", graphql_id=True),
            "run_id": ArgFilter(_brk.c.run_id, "eq", str, "One run."),
            "breach_type": ArgFilter(_brk.c.breach_type, "eq", enums.BreachType, "One kind."),
            "since": ArgFilter(_brk.c.breached_at, "gte", datetime, "breachedAt >= since."),
        },
    ),
    # An empty status list matches nothing.
    ("Query", "overrides"): RootList(
        LIMIT_OVERRIDE,
        override_orderings,
        "REQUESTED_AT_DESC",
        arg_filters={"status": _in(_ovr.c.status, enums.OverrideStatus, "Only these statuses.")},
    ),
    ("Query", "runs"): RootList(
        RUN,
        run_orderings,
        "CREATED_AT_DESC",
        filters={
            "status": _in(_run.c.status, enums.RunStatus, "Any of these statuses."),
            "agent_id": ArgFilter(_run.c.agent_id, "eq", str, "Only runs of this agent."),
            "project_id": ArgFilter(_run.c.project_id, "eq", str, "Only runs of this project."),
            "created_after": ArgFilter(_run.c.created_at, "gte", datetime, _CREATED_AFTER),
            "created_before": ArgFilter(_run.c.created_at, "lt", datetime, _CREATED_BEFORE),
        },
    ),
    # Top-level arguments, no filter object.
    ("Query", "thresholdSignals"): RootList(
        THRESHOLD_SIGNAL,
        signal_orderings,
        "TIMESTAMP_DESC",
        arg_filters={
            "run_id": ArgFilter(_sig.c.run_id, "eq", str, "One run."),
            "signal_type": ArgFilter(_sig.c.signal_type, "eq", enums.SignalType, "NEAR or BREACH."),
        },
    ),
    ("Query", "lessons"): RootList(
        LESSON,
        lesson_orderings,
        "CREATED_AT_DESC",
        filters={
            "lesson_type": _in(_les.c.lesson_type, enums.LessonType, "Any of these lesson types."),
            "status": _in(_les.c.status, enums.LessonStatus, "Any of these statuses."),
            "severity": _in(_les.c.severity, enums.LessonSeverity, "Any of these severities."),
        },
        page_size=50,
    ),
}

# The relations the compiled path may follow: those the differential suite (tests/compiled/)
# proves identical to their resolvers. A relation added to RELATIONS runs on the resolver path
# until it is listed here (with its filters/rules mirrored, e.g. Lesson.sourceIncident only
# follows INCIDENT sources) and covered by the generated queries.
COMPILED_RELATIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("Query", "incident"),
        ("Query", "limit"),
        ("Incident", "events"),
        ("Incident", "breaches"),
        ("Incident", "lessons"),
        ("Limit", "breaches"),
        ("Limit", "overrides"),
        ("Limit", "integrity"),
        ("Limit", "activeOverride"),
        ("LimitBreach", "limit"),
        ("LimitBreach", "incident"),
        ("LimitOverride", "limit"),
        ("Query", "override"),
        ("Query", "lesson"),
        ("Query", "run"),
        ("LimitBreach", "run"),
        ("Incident", "sourceRun"),
        ("Lesson", "sourceRun"),
        ("Run", "incidents"),
        ("Run", "breaches"),
        ("Run", "steps"),
        ("Run", "failures"),
        ("Run", "violations"),
        ("PolicyViolation", "incident"),
        ("Lesson", "sourceIncident"),
        ("Lesson", "draftProposal"),
        ("Incident", "evidence"),
        ("LlmFailure", "evidence"),
    }
)

# Arguments of nested list fields that narrow the list (argument name -> filter).
RELATION_ARGS: dict[tuple[str, str], dict[str, ArgFilter]] = {
    ("Limit", "overrides"): {
        # Described (GraphQL) by the Limit type's field; its resolver filters in Python.
        "status": _in(_ovr.c.status, enums.OverrideStatus, "")
    },
}

# Incident values derived on read from other rows (DOMAIN.md §1.18), as correlated subqueries
# over `incidents`. The resolver path selects them for a batch of ids (one statement per request
# level, drivers/incidents.fetch_derived_by_ids) and the compiled path inlines them (COMPUTED):
# one definition for both. Keyed by the Python field name of IncidentDerivedRecord.
_prior = _inc.alias("prior_incident")
INCIDENT_DERIVED: dict[str, ColumnElement[Any]] = {
    "last_seen_at": func.coalesce(
        select(func.max(_evt.c.created_at))
        .where(_evt.c.tenant_id == _inc.c.tenant_id, _evt.c.incident_id == _inc.c.id)
        .scalar_subquery(),
        _inc.c.created_at,
    ),
    "evidence_count": select(func.count())
    .select_from(_evd)
    .where(_evd.c.tenant_id == _inc.c.tenant_id, _evd.c.incident_id == _inc.c.id)
    .scalar_subquery(),
    "recovery_attempted": exists()
    .where(
        _evd.c.tenant_id == _inc.c.tenant_id,
        _evd.c.incident_id == _inc.c.id,
        _evd.c.recovery_executed.is_(True),
    )
    .correlate(_inc),
    # Same category (null = uncategorized), created in the 30 days before this incident.
    "recurrence_count": select(func.count())
    .select_from(_prior)
    .where(
        _prior.c.tenant_id == _inc.c.tenant_id,
        _prior.c.category.is_not_distinct_from(_inc.c.category),
        _prior.c.created_at >= _inc.c.created_at - THIRTY_DAYS,
        _prior.c.created_at < _inc.c.created_at,
    )
    .scalar_subquery(),
}

# SQL of fields whose resolver computes them in Python from the record, for the compiled path;
# tests/compiled/ proves each equal to its resolver. Keyed by (type, Python field name).
_usec = func.extract("epoch", _inc.c.resolved_at - _inc.c.created_at) * 1_000_000
# int(timedelta.total_seconds() * 1000): the same two float8 operations, then truncation.
_resolution_ms = func.trunc(
    cast(cast(_usec, BigInteger), Float(precision=53)) / 1_000_000.0 * 1000.0
).cast(BigInteger)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
COMPUTED: dict[tuple[str, str], ColumnElement[Any]] = {
    ("Incident", "first_seen_at"): _inc.c.created_at,
    # ThresholdSignal.id is the public signal id, never the numeric row id (schema/thresholds.py).
    ("ThresholdSignal", "id"): _sig.c.signal_id,
    ("Incident", "topic"): case((_inc.c.status == "RESOLVED", "RESOLVED"), else_="ACTIVE"),
    ("Incident", "time_to_resolution_millis"): _resolution_ms,
    # The deprecated Int field: null once the value no longer fits 32 bits (~24.8 days).
    ("Incident", "time_to_resolution_ms"): case(
        (_resolution_ms.between(INT32_MIN, INT32_MAX), _resolution_ms), else_=null()
    ),
    **{("Incident", name): expr for name, expr in INCIDENT_DERIVED.items()},
}
