"""Hypothesis strategies for query documents over the mapped types, driven by the live schema."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from graphql import GraphQLEnumType, GraphQLObjectType, get_named_type, is_leaf_type
from hypothesis import strategies as st

from drivers.keyset import encode_cursor
from drivers.mapping import (
    INCIDENT_EVENTS,
    LIMIT_BREACHES,
    RELATIONS,
    RUN_STEPS,
    breach_orderings,
    incident_orderings,
    lesson_orderings,
    limit_orderings,
    override_orderings,
    run_orderings,
    signal_orderings,
)
from schema import Limits, build_schema
from tests.factories_compiler import BASE, Seeded

SCHEMA = build_schema(
    Limits(max_depth=10, max_aliases=30, max_tokens=2000, max_cost=50_000)
)._schema
ENTITY_TYPES = (
    "Incident",
    "IncidentEvent",
    "Lesson",
    "Limit",
    "LimitBreach",
    "LimitOverride",
    "LimitIntegrity",
    "Run",
    "RunStep",
    "LlmFailure",
    "PolicyViolation",
    "IncidentEvidence",
    "FailureEvidence",
    "PolicyProposal",
    "ThresholdSignal",
)


def _obj(name: str) -> GraphQLObjectType:
    t = SCHEMA.type_map[name]
    assert isinstance(t, GraphQLObjectType)
    return t


def _enum_values(name: str) -> list[str]:
    t = SCHEMA.type_map[name]
    assert isinstance(t, GraphQLEnumType)
    return list(t.values)


class _Doc:
    """Collects fragments and variable definitions while a query is drawn."""

    def __init__(self) -> None:
        self.fragments: list[str] = []
        self.var_defs: list[str] = []
        self.variables: dict[str, Any] = {}

    def var(self, type_: str, value: Any) -> str:
        name = f"v{len(self.var_defs)}"
        self.var_defs.append(f"${name}: {type_}")
        self.variables[name] = value
        return f"${name}"


def _cursor_pool(data: Seeded) -> dict[str, list[str]]:
    inc = data.incidents["t1"]
    ev = data.events["t1"]
    br = data.breaches["t1"]
    pool: dict[str, list[str]] = {}
    for name, ordering in incident_orderings.items():
        rows = inc[::3]
        vals: list[tuple[Any, ...]]
        if name == "CREATED_AT_DESC" or name == "CREATED_AT_ASC":
            vals = [(r["created_at"], r["id"]) for r in rows]
        elif name == "SEVERITY_DESC":
            rank = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1}
            vals = [(rank[r["severity"]], r["created_at"], r["id"]) for r in rows]
        else:
            vals = [
                (
                    r.get("resolved_at")
                    or BASE.replace(year=1970, month=1, day=1, hour=0, minute=0, second=0),
                    r["id"],
                )
                for r in rows
            ]
        pool[f"Query.incidents.{name}"] = [encode_cursor(ordering, v) for v in vals]
    events_ordering = INCIDENT_EVENTS.ordering
    breaches_ordering = LIMIT_BREACHES.ordering
    assert events_ordering is not None and breaches_ordering is not None
    pool["Incident.events"] = [
        encode_cursor(events_ordering, (e["created_at"], e["id"])) for e in ev[::4]
    ]
    pool["Limit.breaches"] = [
        encode_cursor(breaches_ordering, (b["breached_at"], b["id"])) for b in br[::3]
    ]
    lim_ord = limit_orderings["LAST_BREACHED_DESC"]
    pool["Query.limits"] = [
        encode_cursor(
            lim_ord, (BASE.replace(year=1970, month=1, day=1, hour=0), lim["created_at"], lim["id"])
        )
        for lim in data.limits["t1"][::2]
    ]
    pool["Query.limitBreaches"] = [
        encode_cursor(breach_orderings["BREACHED_AT_DESC"], (b["breached_at"], b["id"]))
        for b in br[::3]
    ]
    pool["Query.overrides"] = [
        encode_cursor(override_orderings["REQUESTED_AT_DESC"], (o["requested_at"], o["id"]))
        for o in data.overrides["t1"][::3]
    ]
    pool["Query.runs"] = [
        encode_cursor(run_orderings["CREATED_AT_DESC"], (r["created_at"], r["id"]))
        for r in data.runs["t1"][::2]
    ]
    pool["Query.lessons"] = [
        encode_cursor(lesson_orderings["CREATED_AT_DESC"], (x["created_at"], x["id"]))
        for x in data.lessons["t1"][::2]
    ]
    pool["Query.thresholdSignals"] = [
        encode_cursor(signal_orderings["TIMESTAMP_DESC"], (x["timestamp"], x["id"]))
        for x in data.signals["t1"][::2]
    ]
    pool["Run.breaches"] = pool["Query.limitBreaches"]
    steps = RUN_STEPS.ordering
    assert steps is not None
    pool["Run.steps"] = [encode_cursor(steps, (k,)) for k in (0, 1, 2)]
    return pool


BAD_CURSORS = ["garbage", "WyJOT1BFIl0", ""]


@st.composite
def _after(draw: st.DrawFn, pool: list[str], doc: _Doc, *, bad: bool = True) -> str | None:
    # No bad cursors in nested connections: the resolver path itself crashes on those today
    # (graphql-core cancels a DataLoader future that sibling fields share; see the report).
    choice = draw(st.sampled_from(["none"] * 5 + ["valid"] * 4 + (["bad"] if bad else [])))
    if choice == "none" or not pool:
        return None
    value = draw(st.sampled_from(pool)) if choice == "valid" else draw(st.sampled_from(BAD_CURSORS))
    if draw(st.booleans()):
        return doc.var("String", value)
    return '"' + value + '"'


@st.composite
def _first(draw: st.DrawFn, doc: _Doc) -> str | None:
    value = draw(
        st.sampled_from(
            [None, None, None, 1, 2, 3, 5, 7, 20, 100, 0, 101][
                : 12 if draw(st.integers(0, 5)) == 0 else 10
            ]
        )
    )
    if value is None:
        return None
    if draw(st.booleans()):
        return doc.var("Int!", value)
    return str(value)


def _args(parts: dict[str, str | None]) -> str:
    given = [f"{k}: {v}" for k, v in parts.items() if v is not None]
    return f"({', '.join(given)})" if given else ""


@st.composite
def _key(draw: st.DrawFn, name: str) -> str:
    if draw(st.integers(0, 5)) == 0:
        return f"a_{name}_{draw(st.integers(0, 3))}: {name}"
    return name


@st.composite
def _object(
    draw: st.DrawFn, type_name: str, depth: int, doc: _Doc, pool: dict[str, list[str]]
) -> str:
    t = _obj(type_name)
    leaves = sorted(
        n for n, f in t.fields.items() if is_leaf_type(get_named_type(f.type)) and not f.args
    )
    picked = draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=6, unique=True))
    items = [draw(_key(n)) for n in picked]
    if draw(st.integers(0, 6)) == 0:
        items.append("__typename")
    objects = sorted(n for n, f in t.fields.items() if not is_leaf_type(get_named_type(f.type)))
    if depth < 3:
        for name in objects:
            # Relations not `compiled` send the whole operation to the resolver path: keep them
            # rare so most generated operations still compile.
            relation = RELATIONS.get((type_name, name))
            odds = 2 if relation is not None and relation.compiled else 80
            if draw(st.integers(0, odds)) == 0:
                items.append(draw(_nested(type_name, name, depth + 1, doc, pool)))
    mode = draw(st.integers(0, 7))
    if mode == 0 and len(items) > 1:  # a named fragment
        frag = f"F{len(doc.fragments)}"
        doc.fragments.append(f"fragment {frag} on {type_name} {{ {' '.join(items[1:])} }}")
        items = [items[0], f"...{frag}"]
    elif mode == 1:
        items = [f"... on {type_name} {{ {' '.join(items)} }}"]
    elif mode == 2 and len(items) > 1:
        flag = draw(st.booleans())
        cond = doc.var("Boolean!", flag) if draw(st.booleans()) else str(flag).lower()
        directive = draw(st.sampled_from(["include", "skip"]))
        items = [items[0], f"... @{directive}(if: {cond}) {{ {' '.join(items[1:])} }}"]
    elif mode == 3:
        items.append(f"{items[0].split(':')[-1].strip()}")  # the same field twice: merged
    return "{ " + " ".join(items) + " }"


@st.composite
def _connection(
    draw: st.DrawFn, node_type: str, depth: int, doc: _Doc, pool: dict[str, list[str]]
) -> str:
    parts: list[str] = []
    for name in draw(
        st.lists(
            st.sampled_from(["nodes", "edges", "pageInfo", "totalCount", "__typename"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    ):
        if name == "nodes":
            parts.append("nodes " + draw(_object(node_type, depth, doc, pool)))
        elif name == "edges":
            inner = draw(
                st.lists(
                    st.sampled_from(["cursor", "node", "__typename"]),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            )
            sub = [
                ("node " + draw(_object(node_type, depth, doc, pool))) if x == "node" else x
                for x in inner
            ]
            parts.append("edges { " + " ".join(sub) + " }")
        elif name == "pageInfo":
            inner = draw(
                st.lists(
                    st.sampled_from(
                        ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"]
                    ),
                    min_size=1,
                    max_size=5,
                    unique=True,
                )
            )
            parts.append("pageInfo { " + " ".join(inner) + " }")
        else:
            parts.append(name)
    return "{ " + " ".join(parts) + " }"


@st.composite
def _nested(
    draw: st.DrawFn, parent: str, name: str, depth: int, doc: _Doc, pool: dict[str, list[str]]
) -> str:
    field = _obj(parent).fields[name]
    target = get_named_type(field.type)
    key = draw(_key(name))
    if target.name.endswith("Connection"):
        node = target.name.removesuffix("Connection")
        args = _args(
            {
                "first": draw(_first(doc)),
                "after": draw(_after(pool.get(f"{parent}.{name}", []), doc, bad=False)),
            }
        )
        return f"{key}{args} " + draw(_connection(node, depth, doc, pool))
    args = ""
    if "status" in field.args:
        values = draw(
            st.none()
            | st.lists(st.sampled_from(_enum_values("OverrideStatus")), max_size=3, unique=True)
        )
        if values is not None:
            args = (
                f"(status: {doc.var('[OverrideStatus!]', values)})"
                if draw(st.booleans())
                else f"(status: [{', '.join(values)}])"
            )
    return f"{key}{args} " + draw(_object(target.name, depth, doc, pool))


@st.composite
def _incident_filter(draw: st.DrawFn) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if draw(st.booleans()):
        f["status"] = draw(
            st.lists(st.sampled_from(_enum_values("IncidentStatus")), max_size=2, unique=True)
        )
    if draw(st.booleans()):
        f["severity"] = draw(
            st.lists(st.sampled_from(_enum_values("Severity")), max_size=3, unique=True)
        )
    if draw(st.integers(0, 3)) == 0:
        f["category"] = draw(
            st.lists(
                st.sampled_from(["BUDGET_EXCEEDED", "RATE_LIMIT", "UNCATEGORIZED", "NOPE"]),
                max_size=2,
            )
        )
    if draw(st.integers(0, 4)) == 0:
        f["topic"] = draw(st.sampled_from(_enum_values("IncidentListTopic")))
    if draw(st.integers(0, 3)) == 0:
        f["createdAfter"] = (BASE + timedelta(minutes=draw(st.integers(0, 100)))).isoformat()
    if draw(st.integers(0, 3)) == 0:
        f["resolvedBefore"] = (BASE + timedelta(minutes=draw(st.integers(0, 200)))).isoformat()
    if draw(st.integers(0, 5)) == 0:
        f["causeType"] = draw(
            st.lists(st.sampled_from(_enum_values("CauseType")), max_size=2, unique=True)
        )
    return f


@st.composite
def _limit_filter(draw: st.DrawFn) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if draw(st.booleans()):
        f["category"] = draw(
            st.lists(st.sampled_from(_enum_values("LimitCategory")), max_size=3, unique=True)
        )
    if draw(st.booleans()):
        f["status"] = draw(
            st.lists(st.sampled_from(_enum_values("LimitStatus")), max_size=3, unique=True)
        )
    if draw(st.integers(0, 2)) == 0:
        f["limitType"] = draw(
            st.sampled_from(["COST_USD", "TOKENS_*", "CALLS_50%", "CALLS_5*", "X"])
        )
    if draw(st.integers(0, 3)) == 0:
        f["createdBefore"] = (BASE + timedelta(hours=draw(st.integers(0, 9)))).isoformat()
    return f


_POINT: dict[str, Any] = {
    "incident": lambda d: ("Incident", d.incidents),
    "limit": lambda d: ("Limit", d.limits),
    "override": lambda d: ("LimitOverride", d.overrides),
    "lesson": lambda d: ("Lesson", d.lessons),
    "run": lambda d: ("Run", d.runs),
}
_LISTS = ("limitBreaches", "overrides", "runs", "lessons", "thresholdSignals")
_NODE = {
    "limitBreaches": "LimitBreach",
    "overrides": "LimitOverride",
    "runs": "Run",
    "lessons": "Lesson",
    "thresholdSignals": "ThresholdSignal",
}


@st.composite
def _enum_list(draw: st.DrawFn, enum: str) -> list[str]:
    return draw(st.lists(st.sampled_from(_enum_values(enum)), max_size=3, unique=True))


@st.composite
def _other_filter(draw: st.DrawFn, kind: str, data: Seeded, tenant: str) -> dict[str, Any]:
    f: dict[str, Any] = {}
    when = (BASE + timedelta(minutes=draw(st.integers(0, 200)))).isoformat()
    if kind == "limitBreaches":
        if draw(st.integers(0, 2)) == 0:
            f["limitId"] = draw(st.sampled_from([x["id"] for x in data.limits[tenant][:4]] + ["x"]))
        if draw(st.integers(0, 2)) == 0:
            f["runId"] = draw(st.sampled_from([x["id"] for x in data.runs[tenant][:4]] + ["x"]))
        if draw(st.integers(0, 2)) == 0:
            f["breachType"] = draw(st.sampled_from(_enum_values("BreachType")))
        if draw(st.integers(0, 2)) == 0:
            f["since"] = when
    elif kind == "runs":
        if draw(st.booleans()):
            f["status"] = draw(_enum_list("RunStatus"))
        if draw(st.integers(0, 2)) == 0:
            f["agentId"] = draw(st.sampled_from(["agent-0", "agent-1", "nobody"]))
        if draw(st.integers(0, 2)) == 0:
            f["projectId"] = draw(st.sampled_from(["proj-1", "proj-2"]))
        if draw(st.integers(0, 3)) == 0:
            f["createdAfter"] = when
        if draw(st.integers(0, 3)) == 0:
            f["createdBefore"] = when
    else:
        for name, enum in (
            ("lessonType", "LessonType"),
            ("status", "LessonStatus"),
            ("severity", "LessonSeverity"),
        ):
            if draw(st.integers(0, 2)) == 0:
                f[name] = draw(_enum_list(enum))
    return f


_FILTER_TYPE = {"limitBreaches": "BreachFilter", "runs": "RunFilter", "lessons": "LessonFilter"}


@st.composite
def _other_list(
    draw: st.DrawFn, kind: str, key: str, data: Seeded, doc: _Doc, pool: dict[str, list[str]]
) -> str:
    tenant = "t1"
    parts: dict[str, str | None] = {
        "first": draw(_first(doc)),
        "after": draw(_after(pool[f"Query.{kind}"], doc)),
    }
    if kind == "overrides":
        status = draw(st.none() | _enum_list("OverrideStatus"))
        parts["status"] = None if status is None else doc.var("[OverrideStatus!]", status)
    elif kind == "thresholdSignals":
        if draw(st.booleans()):
            run_id = draw(st.sampled_from([x["id"] for x in data.runs[tenant][:3]] + ["x"]))
            parts["runId"] = doc.var("String", run_id)
        if draw(st.booleans()):
            parts["signalType"] = draw(st.sampled_from(_enum_values("SignalType")))
    else:
        flt = draw(st.none() | _other_filter(kind, data, tenant))
        parts["filter"] = None if flt is None else doc.var(_FILTER_TYPE[kind], flt)
    return f"{key}{_args(parts)} " + draw(_connection(_NODE[kind], 1, doc, pool))


@st.composite
def _root(draw: st.DrawFn, data: Seeded, doc: _Doc, pool: dict[str, list[str]], tenant: str) -> str:
    kind = draw(
        st.sampled_from(
            [
                "incidents",
                "incidents",
                "incident",
                "limits",
                "limits",
                "limit",
                *_LISTS,
                *_LISTS,
                "override",
                "lesson",
                "run",
                "typename",
                "viewer",
            ]
        )
    )
    key = draw(_key(kind if kind not in ("typename",) else "__typename"))
    if kind == "typename":
        return "__typename"
    if kind == "viewer":
        picked = draw(
            st.lists(
                st.sampled_from(["tenantId", "actor", "role", "__typename"]),
                min_size=1,
                unique=True,
            )
        )
        return f"{key} {{ {' '.join(picked)} }}"
    if kind in _POINT:
        type_name, rows = _POINT[kind](data)
        other = "t2" if tenant == "t1" else "t1"
        ident = draw(
            st.sampled_from(
                [r["id"] for r in rows[tenant][:4]] + [rows[other][0]["id"], "does-not-exist"]
            )
        )
        arg = doc.var("ID!", ident) if draw(st.booleans()) else f'"{ident}"'
        return f"{key}(id: {arg}) " + draw(_object(type_name, 1, doc, pool))
    if kind in _LISTS:
        return draw(_other_list(kind, key, data, doc, pool))
    if kind == "incidents":
        order = draw(st.sampled_from([None, *_enum_values("IncidentOrder")]))
        flt = draw(st.none() | _incident_filter())
        parts = {
            "first": draw(_first(doc)),
            "after": draw(_after(pool[f"Query.incidents.{order or 'CREATED_AT_DESC'}"], doc)),
            "orderBy": None
            if order is None
            else (doc.var("IncidentOrder!", order) if draw(st.booleans()) else order),
            "filter": None if flt is None else doc.var("IncidentFilter", flt),
        }
        return f"{key}{_args(parts)} " + draw(_connection("Incident", 1, doc, pool))
    flt = draw(st.none() | _limit_filter())
    parts = {
        "first": draw(_first(doc)),
        "after": draw(_after(pool["Query.limits"], doc)),
        "filter": None if flt is None else doc.var("LimitFilter", flt),
    }
    return f"{key}{_args(parts)} " + draw(_connection("Limit", 1, doc, pool))


@st.composite
def query_cases(draw: st.DrawFn, data: Seeded) -> tuple[str, dict[str, Any], str]:
    """A query document, its variables and the calling tenant."""
    pool = _cursor_pool(data)
    doc = _Doc()
    tenant = draw(st.sampled_from(["t1", "t1", "t1", "t2"]))
    roots = draw(st.lists(_root(data, doc, pool, tenant), min_size=1, max_size=2))
    # Two root fields with the same key but different arguments would be invalid: keep one.
    seen: set[str] = set()
    unique = []
    for r in roots:
        head = r.split("(")[0].split(" ")[0]
        if head not in seen:
            seen.add(head)
            unique.append(r)
    header = f"query Q({', '.join(doc.var_defs)})" if doc.var_defs else "query Q"
    text = header + " { " + " ".join(unique) + " }\n" + "\n".join(doc.fragments)
    return text, doc.variables, tenant
