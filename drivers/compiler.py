"""The compiled read path: one query operation -> ONE SQL statement that builds the response JSON.

Driven entirely by the mapping (drivers/mapping.py): an entity's fields, its relations, the root
lists with their filters and orderings. Every table gets its own alias, its tenant filter and
bound parameters only (values, JSON keys and the tenant alike); nothing from the request is
spliced into SQL text. The response is written byte for byte as the resolver path writes it:
compact JSON text with keys in selection order (obj, _array), DateTime as Python's `isoformat()`
in UTC, Decimal as `str(Decimal)`, Float as orjson (float_json), stored JSON as PostgreSQL's text
of it (drivers/stored_json.py), cursors byte-identical to drivers/keyset.py. A selection the
mapping does not describe raises NotCompilable, and the operation runs on the resolver path
instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cachetools import LRUCache
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Float,
    FromClause,
    Integer,
    Numeric,
    Select,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal_column,
    null,
    select,
    true,
    type_coerce,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, aggregate_order_by, array
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.types import TypeDecorator

from drivers import alerts, analytics, patterns
from drivers.keyset import Ordering, OrderKey
from drivers.mapping import (
    ANALYTICS_RANGES,
    BREAKER_ABSENT,
    BREAKER_DEFAULT_NAME,
    BUDGET_HALT,
    BUDGET_HALT_MATCHES,
    BUDGET_HALT_ORDER,
    BUDGET_HALT_WHERE,
    CIRCUIT_BREAKER,
    COMPUTED,
    INCIDENT,
    INCIDENT_METRICS,
    LESSON,
    LESSON_COUNTS,
    METRICS_CREATED_AT,
    METRICS_SEVERITIES,
    METRICS_SEVERITY,
    METRICS_WINDOW_DAYS,
    RECURRENCE_GROUP_LENGTH,
    RECURRENCE_GROUP_MAX,
    RECURRENCE_GROUP_ORDER,
    RECURRENCE_GROUP_SIGNATURE,
    RELATION_ARGS,
    RELATION_SWITCHES,
    RELATIONS,
    ROOT_LISTS,
    ArgFilter,
    Entity,
    Relation,
)
from drivers.selection import Field, flatten, shape

__all__ = ["BoundPlan", "NotCompilable", "Plan", "PlanCache", "bind_plan", "compile_operation"]

# Page arguments checked by the resolvers: node index -> (first, decoded `after` values or None).
Pages = Mapping[int, tuple[int, tuple[Any, ...] | None]]
Getter = Callable[[Sequence[Field], Pages], Any]

_RAW_SCALARS = frozenset({"String", "Int", "Long", "Boolean", "JSON"})
_MAX_ARGS = 100  # PostgreSQL's limit on a function's arguments (concat's included)
_UTC: ColumnElement[Any] = literal_column("'UTC'")
_NULL = literal_column("'null'", Text)
_EMPTY = literal_column("'[]'", Text)


_CALLER = frozenset({"tenant", "actor", "role"})  # bound per request from the principal


class JsonText(TypeDecorator[str]):
    """Text that already is JSON (an object or array this compiler built): embedded as is."""

    impl = Text
    cache_ok = True


class NotCompilable(Exception):
    """The selection leaves the mapping; run the operation on the resolver path."""


@dataclass(frozen=True, slots=True)
class Plan:
    """One compiled operation: SQL text, parameter order and how to find each value."""

    sql: str
    positions: tuple[str, ...]
    static: Mapping[str, Any]
    dynamic: Mapping[str, Getter]
    # Connections whose `first`/`after` the resolvers check: node index -> ordering.
    connections: Mapping[int, Ordering]
    # Response keys of the root fields the statement answers, in selection order: one text
    # element each. The operation's other roots are left to the resolver path.
    roots: tuple[str, ...] = ()
    # Trailing elements after the roots: per circuit-breaker root, a JSON array of the names
    # of its breakers whose TTL recovery is due (run first, then the statement again).
    settle: int = 0
    # Integer arguments the resolvers range-check: node index -> ((argument, low, high), ...). A
    # value outside leaves that root to the resolver path, which answers BAD_USER_INPUT.
    checks: Mapping[int, tuple[tuple[str, int, int], ...]] = dataclasses.field(default_factory=dict)


def _iso(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    """Timestamptz -> text exactly as Python's datetime.isoformat() of a UTC datetime.

    isoformat() writes all six fraction digits, or none when the microseconds are 0: one
    to_char with them, then `.000000` dropped. PostgreSQL evaluates a repeated subexpression
    once per occurrence, so this is cheaper than padding the text cast (used three times).
    """
    full = func.to_char(func.timezone(_UTC, expr), literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS.US'"))
    with_zone = full.op("||", return_type=Text)(literal_column("'+00:00'"))
    return func.replace(with_zone, literal_column("'.000000+'"), literal_column("'+'"), type_=Text)


def _json_text(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    return cast(func.to_json(cast(expr, Text)), Text)


def _json_key(key: str) -> str:
    """`"key":` for a response key (an alias or field name from the document)."""
    return orjson.dumps(key).decode() + ":"


def _as_json(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A value as JSON text; SQL NULL becomes `null`.

    Built objects and arrays are embedded as they are; integers and booleans print as their
    text; a stored JSON value prints as PostgreSQL's text form of it (the JSON scalar's one
    form, see docs/decisions.md); strings, enums and the rest go through to_json (escaping).
    """
    if isinstance(value.type, JsonText):
        text = value
    elif isinstance(value.type, Integer | Boolean | JSON):
        text = cast(value, Text)
    elif isinstance(value.type, Float):
        text = float_json(value)
    else:
        text = cast(func.to_json(value), Text)
    if getattr(value, "nullable", True) is False:  # a NOT NULL column of the row itself
        return text
    return func.coalesce(text, _NULL)


def float_json(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A float8 printed exactly as orjson prints the Python float (the resolver path's form).

    Digits: the shortest that read back as the same double. PostgreSQL's own shortest output
    (extra_float_digits >= 1, the server default) never ends exactly on a rounding boundary, so
    it can be a digit longer than Python's: when its 16 or 17 digits have a correctly rounded
    form one digit shorter (to_char) that reads back as the same double, that one is printed.
    Layout as orjson: plain for 1e-5 <= |x| < 1e16 with `.0` on whole numbers (`100.0`,
    `0.00001`), else `1e+16`, `1.5e-7`; -0.0 stays. Not finite fails the statement.
    """
    x = cast(value, Float(precision=53))
    pg = cast(x, Text)
    significant = func.length(func.trim(func.translate(func.split_part(pg, "e", 1), "-.", ""), "0"))
    digits15 = func.to_char(x, literal_column("'9.99999999999999EEEE'"))
    digits16 = func.to_char(x, literal_column("'9.999999999999999EEEE'"))
    shortest = case(
        # Rounding the largest doubles up would overflow float8.
        (func.abs(x) >= literal_column("1e308::float8"), pg),
        (
            (significant == literal_column("17")) & (cast(digits16, Float(precision=53)) == x),
            func.trim(digits16),
        ),
        (
            (significant == literal_column("16")) & (cast(digits15, Float(precision=53)) == x),
            func.trim(digits15),
        ),
        else_=pg,
    )
    exact = func.trim_scale(cast(shortest, Numeric))
    plain = cast(exact, Text).op("||", return_type=Text)(
        case((func.scale(exact) == literal_column("0"), literal_column("'.0'")), else_="")
    )
    exponent = cast(func.split_part(shortest, "e", 2), Integer)
    mantissa = func.rtrim(func.rtrim(func.split_part(shortest, "e", 1), "0"), ".")
    scientific = mantissa.op("||", return_type=Text)(
        case((exponent < literal_column("0"), "e-"), else_="e+")
    ).op("||", return_type=Text)(cast(func.abs(exponent), Text))
    magnitude = func.abs(x)
    not_finite: list[ColumnElement[Any]] = [
        literal_column(f"'{v}'::float8") for v in ("NaN", "Infinity", "-Infinity")
    ]
    printed = case(
        # NaN or an infinity: the cast fails the statement, and the resolver path answers
        # (GraphQL's Float cannot represent it).
        (x.in_(not_finite), cast(cast(pg, Integer), Text)),
        (x == literal_column("0"), case((cast(x, Text) == "-0", "-0.0"), else_="0.0")),
        (
            (magnitude >= literal_column("1e-5::float8"))
            & (magnitude < literal_column("1e16::float8")),
            plain,
        ),
        else_=scientific,
    )
    return type_coerce(printed, JsonText)


def _quoted(text: ColumnElement[Any]) -> ColumnElement[Any]:
    """Text that never needs escaping (a timestamp) as a JSON string; NULL stays NULL."""
    quote = literal_column("'\"'", Text)
    quoted = quote.op("||", return_type=Text)(text).op("||", return_type=Text)(quote)
    return type_coerce(quoted, JsonText)


def _concat(parts: Sequence[ColumnElement[Any]]) -> ColumnElement[Any]:
    """concat() of any number of text parts (nested: one call takes at most 100 arguments)."""
    while len(parts) > _MAX_ARGS:
        parts = [
            func.concat(*parts[i : i + _MAX_ARGS])
            if len(parts[i : i + _MAX_ARGS]) > 1
            else parts[i]
            for i in range(0, len(parts), _MAX_ARGS)
        ]
    return type_coerce(func.concat(*parts), JsonText)


def _array(
    element: ColumnElement[Any],
    order_by: Sequence[ColumnElement[Any]] = (),
    where: ColumnElement[bool] | None = None,
) -> ColumnElement[Any]:
    """An aggregate: `[e1,e2,...]` of JSON text elements in `order_by` order, `[]` for none."""
    separator = literal_column("','", Text)
    call = func.string_agg(
        element, aggregate_order_by(separator, *order_by) if order_by else separator
    )
    agg: ColumnElement[Any] = call if where is None else call.filter(where)
    wrapped = (
        literal_column("'['", Text)
        .op("||", return_type=Text)(agg)
        .op("||", return_type=Text)(literal_column("']'", Text))
    )
    return type_coerce(func.coalesce(wrapped, _EMPTY), JsonText)


def _format(expr: ColumnElement[Any], f: Field) -> ColumnElement[Any]:
    """A leaf's SQL value as the resolver path renders it."""
    if f.type_name == "DateTime":
        return _quoted(_iso(expr))
    if f.type_name in ("Decimal", "ID"):
        return cast(expr, Text)
    if f.type_name == "Float":
        return float_json(expr)
    if f.enum or f.type_name in _RAW_SCALARS:
        return expr
    raise NotCompilable(f"scalar {f.type_name}")


class _Compiler:
    def __init__(self, root: tuple[Field, ...]) -> None:
        self.index = {id(f): i for i, f in enumerate(flatten(root))}
        self.static: dict[str, Any] = {}
        self.dynamic: dict[str, Getter] = {}
        self.connections: dict[int, Ordering] = {}
        self.tenant = bindparam("tenant", type_=String)
        self.caller = {
            "tenant_id": self.tenant,
            "actor": bindparam("actor", type_=String),
            "role": bindparam("role", type_=String),
        }
        self._aliases = 0
        self.settle: list[ColumnElement[Any]] = []  # see Plan.settle
        self.checks: dict[int, tuple[tuple[str, int, int], ...]] = {}  # see Plan.checks

    # -- parameters and aliases -------------------------------------------------------------
    def const(self, value: Any, type_: Any = String) -> BindParameter[Any]:
        name = f"c{len(self.static)}"
        self.static[name] = value
        return bindparam(name, type_=type_)

    def dyn(self, getter: Getter, type_: Any = None) -> BindParameter[Any]:
        name = f"p{len(self.dynamic)}"
        self.dynamic[name] = getter
        return bindparam(name, type_=type_)

    def arg(
        self, f: Field, key: str, type_: Any = None, fn: Callable[[Any], Any] = lambda v: v
    ) -> Any:
        i = self.index[id(f)]
        return self.dyn(lambda nodes, _p: fn(nodes[i].args[key]), type_)

    def alias(self, entity: Entity[Any]) -> tuple[FromClause, Callable[[Any], Any]]:
        self._aliases += 1
        alias = entity.table.alias(f"t{self._aliases}")
        adapter = ClauseAdapter(alias)
        return alias, adapter.traverse

    # -- objects ----------------------------------------------------------------------------
    def obj(self, pairs: list[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
        """`{"key":value,...}` as compact JSON text, keys in selection order, any number of keys.

        Built by concatenation rather than json_build_object, which spaces its output (` : `,
        `, `) and takes at most 100 arguments. The text between values (`{"a":`, `,"b":`, `}`)
        is JSON-encoded here and bound as a parameter; a constant string value (`__typename`)
        joins that text. Nothing from the request is spliced into the SQL.
        """
        parts: list[ColumnElement[Any]] = []
        text = "{"
        for n, (key, value) in enumerate(pairs):
            text += ("," if n else "") + _json_key(key)
            constant = self._constant_text(value)
            if constant is not None:
                text += constant
                continue
            parts.append(self.const(text, Text))
            parts.append(_as_json(value))
            text = ""
        parts.append(self.const(text + "}", Text))
        return _concat(parts)

    def _constant_text(self, value: ColumnElement[Any]) -> str | None:
        """A bound constant string (e.g. `__typename`) as JSON text, else None."""
        if isinstance(value, BindParameter) and isinstance(self.static.get(value.key), str):
            return orjson.dumps(self.static[value.key]).decode()
        return None

    def leaf(
        self, entity: Entity[Any], adapt: Callable[[Any], Any], f: Field
    ) -> ColumnElement[Any]:
        names = {x.name for x in dataclasses.fields(entity.record)}
        computed = COMPUTED.get((entity.name, f.attr))
        if computed is not None:
            expr = adapt(computed)
        elif f.resolver or f.attr not in names:
            raise NotCompilable(f"{entity.name}.{f.name}")
        else:
            expr = adapt(entity.expr(f.attr))
        return _format(expr, f)

    def entity_object(
        self,
        entity: Entity[Any],
        alias: FromClause,
        adapt: Callable[[Any], Any],
        fields: tuple[Field, ...],
        type_name: str,
    ) -> ColumnElement[Any]:
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for f in fields:
            if f.name == "__typename":
                pairs.append((f.key, self.const(type_name)))
            elif f.leaf:
                pairs.append((f.key, self.leaf(entity, adapt, f)))
            else:
                relation = _relation(entity.name, f.name)
                switch = RELATION_SWITCHES.get((entity.name, f.name))
                if switch is not None and f.args.get(switch[0]):
                    relation = _relation(*switch[1])
                if relation is None:
                    raise NotCompilable(f"{entity.name}.{f.name}")
                parent_expr = adapt(entity.expr(relation.parent_field))
                value = self.relation(entity.name, relation, parent_expr, alias, f)
                if relation.parent_where is not None:
                    if relation.kind != "one":
                        raise NotCompilable(f"{entity.name}.{f.name} parent condition")
                    value = case((adapt(relation.parent_where), value), else_=null())
                pairs.append((f.key, value))
        return self.obj(pairs)

    # -- relations --------------------------------------------------------------------------
    def _child_where(
        self, relation: Relation[Any], parent_expr: ColumnElement[Any]
    ) -> Callable[[FromClause, Callable[[Any], Any]], list[ColumnElement[bool]]]:
        def where(alias: FromClause, adapt: Callable[[Any], Any]) -> list[ColumnElement[bool]]:
            clauses = [alias.c.tenant_id == self.tenant, adapt(relation.child_key) == parent_expr]
            if relation.where is not None:
                clauses.append(adapt(relation.where))
            return clauses

        return where

    def relation(
        self,
        parent: str,
        relation: Relation[Any],
        parent_expr: ColumnElement[Any],
        parent_alias: FromClause | None,
        f: Field,
    ) -> ColumnElement[Any]:
        entity = relation.target
        where = self._child_where(relation, parent_expr)
        if relation.kind == "connection":
            switch = RELATION_SWITCHES.get((parent, f.name))
            allowed = {"first", "after"} | ({switch[0]} if switch else set())
            if relation.ordering is None or set(f.args) - allowed:
                raise NotCompilable(f"{parent}.{f.name} arguments")
            return self.connection(entity, where, relation.ordering, f, parent_alias)
        alias, adapt = self.alias(entity)
        clauses = where(alias, adapt)
        if relation.kind == "one":
            if f.args:
                raise NotCompilable(f"{parent}.{f.name} arguments")
            stmt = select(
                self.entity_object(entity, alias, adapt, f.fields, f.type_name)
            ).select_from(alias)
            if relation.ordering is not None:
                stmt = stmt.order_by(*self._ordering(relation.ordering, adapt).order_by())
            return stmt.where(*clauses).limit(1).scalar_subquery()
        filters = RELATION_ARGS.get((parent, f.name), {})
        for name, value in f.args.items():
            if name not in filters:
                raise NotCompilable(f"{parent}.{f.name}({name})")
            if value is not None:
                clauses.append(
                    adapt(filters[name].where(self.filter_param(f, filters[name], name, None)))
                )
        body = self.entity_object(entity, alias, adapt, f.fields, f.type_name)
        order = self._ordering(relation.ordering, adapt).order_by() if relation.ordering else []
        # An aggregate over no rows still returns its one row: `[]`.
        rows = select(_array(body, order)).select_from(alias).where(*clauses)
        return type_coerce(rows.scalar_subquery(), JsonText)

    def filter_param(self, f: Field, flt: ArgFilter, key: str, sub: str | None) -> Any:
        """A filter's parameter, read from the argument `key` (its input field `sub`)."""
        if sub is None:
            return self.arg(f, key, flt.param_type, flt.prepare)
        return self.arg(f, key, flt.param_type, lambda v: flt.prepare(v[sub]))

    @staticmethod
    def _ordering(ordering: Ordering, adapt: Callable[[Any], Any]) -> Ordering:
        return Ordering(
            ordering.name, tuple(OrderKey(adapt(k.expr), k.desc, k.kind) for k in ordering.keys)
        )

    def _cursor(self, ordering: Ordering) -> ColumnElement[Any]:
        parts: list[ColumnElement[Any]] = [
            literal_column("'['"),
            _json_text(self.const(ordering.name)),
        ]
        for key in ordering.keys:
            parts.append(literal_column("','"))
            if key.kind == "ts":
                parts.append(_json_text(_iso(key.expr)))
            elif key.kind in ("str", "dec"):
                parts.append(_json_text(key.expr))
            else:
                parts.append(cast(key.expr, Text))
        parts.append(literal_column("']'"))
        text = parts[0]
        for part in parts[1:]:
            text = text.op("||", return_type=Text)(part)
        b64 = func.encode(
            func.convert_to(text, literal_column("'UTF8'")), literal_column("'base64'")
        )
        return func.rtrim(
            func.translate(b64, literal_column("'+/' || chr(10)"), literal_column("'-_'")),
            literal_column("'='"),
        )

    def connection(  # noqa: PLR0912, PLR0915 - one pass over the connection's selection
        self,
        entity: Entity[Any],
        where: Callable[[FromClause, Callable[[Any], Any]], list[ColumnElement[bool]]],
        ordering: Ordering,
        f: Field,
        parent_alias: FromClause | None,
    ) -> ColumnElement[Any]:
        idx = self.index[id(f)]
        self.connections[idx] = ordering
        first = self.dyn(lambda _n, pages: pages[idx][0], Integer)
        limit = self.dyn(lambda _n, pages: pages[idx][0] + 1, Integer)
        alias, adapt = self.alias(entity)
        local = self._ordering(ordering, adapt)
        clauses = where(alias, adapt)
        has_after = f.args.get("after") is not None
        if has_after:
            values = tuple(
                self.dyn(lambda _n, pages, i=i: pages[idx][1][i], k.expr.type)  # type: ignore[misc]
                for i, k in enumerate(ordering.keys)
            )
            clauses.append(local.after(values))
        rn = func.row_number().over(order_by=local.order_by()).label("rn")
        columns: list[Any] = [rn]
        cursor_needed = False
        row_cols: dict[int, str] = {}
        for n, sub in enumerate(f.fields):
            if sub.name == "nodes":
                columns.append(
                    self.entity_object(entity, alias, adapt, sub.fields, sub.type_name).label(
                        f"j{n}"
                    )
                )
                row_cols[n] = f"j{n}"
            elif sub.name == "edges":
                pairs: list[tuple[str, ColumnElement[Any]]] = []
                for e in sub.fields:
                    if e.name == "__typename":
                        pairs.append((e.key, self.const(sub.type_name)))
                    elif e.name == "cursor":
                        pairs.append((e.key, self._cursor(local)))
                    elif e.name == "node":
                        pairs.append(
                            (e.key, self.entity_object(entity, alias, adapt, e.fields, e.type_name))
                        )
                    else:
                        raise NotCompilable(f"edge field {e.name}")
                columns.append(self.obj(pairs).label(f"j{n}"))
                row_cols[n] = f"j{n}"
            elif sub.name == "pageInfo":
                cursor_needed = cursor_needed or any(
                    p.name in ("startCursor", "endCursor") for p in sub.fields
                )
            elif sub.name not in ("totalCount", "__typename"):
                raise NotCompilable(f"connection field {sub.name}")
        if cursor_needed:
            columns.append(self._cursor(local).label("cur"))
        inner = (
            select(*columns)
            .select_from(alias)
            .where(*clauses)
            .order_by(*local.order_by())
            .limit(limit)
        )
        if parent_alias is not None:
            inner = inner.correlate(parent_alias)
        page = inner.subquery(f"pg{idx}")
        in_page = page.c.rn <= first
        pairs = []
        for n, sub in enumerate(f.fields):
            if sub.name == "__typename":
                pairs.append((sub.key, self.const(f.type_name)))
            elif sub.name == "totalCount":
                count_alias, count_adapt = self.alias(entity)
                count = (
                    select(func.count())
                    .select_from(count_alias)
                    .where(*where(count_alias, count_adapt))
                )
                if parent_alias is not None:
                    count = count.correlate(parent_alias)
                pairs.append((sub.key, count.scalar_subquery()))
            elif n in row_cols:
                pairs.append((sub.key, _array(page.c[row_cols[n]], [page.c.rn], in_page)))
            else:  # pageInfo
                info: list[tuple[str, ColumnElement[Any]]] = []
                for p in sub.fields:
                    if p.name == "__typename":
                        info.append((p.key, self.const(sub.type_name)))
                    elif p.name == "hasNextPage":
                        info.append((p.key, func.count() > first))
                    elif p.name == "hasPreviousPage":
                        info.append((p.key, true() if has_after else false()))
                    elif p.name in ("startCursor", "endCursor"):
                        direction = page.c.rn.asc() if p.name == "startCursor" else page.c.rn.desc()
                        cursors = func.array_agg(
                            aggregate_order_by(page.c.cur, direction), type_=ARRAY(Text)
                        ).filter(in_page)
                        info.append((p.key, type_coerce(cursors.self_group(), ARRAY(Text))[1]))
                    else:
                        raise NotCompilable(f"pageInfo field {p.name}")
                pairs.append((sub.key, self.obj(info)))
        # HAVING makes it an aggregate query: exactly one row even over an empty page and when
        # no aggregate is selected (e.g. only totalCount).
        body = select(self.obj(pairs)).select_from(page).having(true()).scalar_subquery()
        return type_coerce(body, JsonText)

    # -- roots ------------------------------------------------------------------------------
    def root_list(self, f: Field) -> ColumnElement[Any]:
        spec = ROOT_LISTS[("Query", f.name)]
        known = {"first", "after", "filter"} | ({spec.order_arg} if spec.order_arg else set())
        known |= set(spec.arg_filters)
        if set(f.args) - known:
            raise NotCompilable(f"Query.{f.name} arguments")
        ordering = spec.ordering(f.args.get(spec.order_arg) if spec.order_arg else None)
        given: Mapping[str, Any] = f.args.get("filter") or {}
        # Null and omitted fields narrow nothing; only a set field the mapping lacks stops us.
        for name, value in given.items():
            if value is not None and name not in spec.filters:
                raise NotCompilable(f"Query.{f.name} filter {name}")

        def param(flt: ArgFilter, key: str, sub: str | None) -> Any:
            return self.filter_param(f, flt, key, sub)

        def where(alias: FromClause, adapt: Callable[[Any], Any]) -> list[ColumnElement[bool]]:
            clauses = spec.where(given, f.args, param)
            return [alias.c.tenant_id == self.tenant, *(adapt(c) for c in clauses)]

        return self.connection(spec.entity, where, ordering, f, None)

    def root_one(self, f: Field, relation: Relation[Any]) -> ColumnElement[Any]:
        if set(f.args) != {relation.parent_field}:
            raise NotCompilable(f"Query.{f.name} arguments")
        entity = relation.target
        alias, adapt = self.alias(entity)
        key = self.arg(f, relation.parent_field, adapt(relation.child_key).type, str)
        clauses = [alias.c.tenant_id == self.tenant, adapt(relation.child_key) == key]
        if relation.where is not None:
            clauses.append(adapt(relation.where))
        body = self.entity_object(entity, alias, adapt, f.fields, f.type_name)
        return select(body).select_from(alias).where(*clauses).limit(1).scalar_subquery()

    def viewer(self, f: Field) -> ColumnElement[Any]:
        """`viewer`: the caller's tenant, subject and role, bound like every other value."""
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for sub in f.fields:
            if sub.name == "__typename":
                pairs.append((sub.key, self.const(f.type_name)))
            elif sub.attr in self.caller and not sub.resolver:
                pairs.append((sub.key, self.caller[sub.attr]))
            else:
                raise NotCompilable(f"Viewer.{sub.name}")
        return self.obj(pairs)

    def root(self, f: Field) -> ColumnElement[Any]:
        """One root field's JSON, or NotCompilable."""
        if f.name == "__typename":
            return func.to_json(self.const("Query"))
        if ("Query", f.name) in ROOT_LISTS:
            return self.root_list(f)
        named = _NAMED_ROOTS.get(f.name)
        if named is not None and set(f.args) == named[0]:
            return named[1](self, f)
        relation = _relation("Query", f.name)
        if relation is not None and relation.kind != "connection":
            if relation.kind == "one":
                return self.root_one(f, relation)
            return self.root_keyed_list(f, relation)
        raise NotCompilable(f"Query.{f.name}")

    def root_keyed_list(self, f: Field, relation: Relation[Any]) -> ColumnElement[Any]:
        """A root list keyed by its one argument (`executionScopes(incidentId:)`)."""
        if set(f.args) != {relation.parent_field}:
            raise NotCompilable(f"Query.{f.name} arguments")
        key = self.arg(f, relation.parent_field, relation.child_key.type, str)
        return self.relation("Query", relation, key, None, dataclasses.replace(f, args={}))

    # -- circuit breakers -------------------------------------------------------------------
    def breaker_rows(self, want: Select[Any]) -> tuple[FromClause, Callable[[Any], Any]]:
        """The tenant's breakers named by `want` (one `name` column); an unwritten one CLOSED."""
        self._aliases += 1
        n = self._aliases
        table = CIRCUIT_BREAKER.table
        row = table.alias(f"t{n}")
        names = want.subquery(f"w{n}")
        columns = []
        for c in table.c:
            if c.name == "name":
                expr: ColumnElement[Any] = names.c.name
            elif c.name == "tenant_id":
                expr = self.tenant
            elif c.name in BREAKER_ABSENT:
                expr = func.coalesce(row.c[c.name], BREAKER_ABSENT[c.name])
            else:
                expr = row.c[c.name]
            columns.append(expr.label(c.name))
        joined = names.outerjoin(
            row, and_(row.c.tenant_id == self.tenant, row.c.name == names.c.name)
        )
        rows = select(*columns).select_from(joined).subquery(f"b{n}")
        adapter = ClauseAdapter(
            rows, include_fn=lambda col: getattr(col, "table", None) is table, adapt_on_names=True
        )
        return rows, adapter.traverse

    def due_breakers(self, name: ColumnElement[Any] | None) -> None:
        """Ask the statement for the breakers (all, or `name`) whose TTL recovery is due."""
        self._aliases += 1
        row = CIRCUIT_BREAKER.table.alias(f"t{self._aliases}")
        clauses = [
            row.c.tenant_id == self.tenant,
            row.c.disabled.is_(True),
            row.c.disabled_until <= func.now(),
        ]
        if name is not None:
            clauses.append(row.c.name == name)
        names = _array(cast(func.to_json(row.c.name), Text))
        self.settle.append(select(names).select_from(row).where(*clauses).scalar_subquery())

    def circuit_breaker(self, f: Field) -> ColumnElement[Any]:
        name = self.arg(f, "name", Text)
        rows, adapt = self.breaker_rows(select(name.label("name")))
        body = self.entity_object(CIRCUIT_BREAKER, rows, adapt, f.fields, f.type_name)
        self.due_breakers(self.arg(f, "name", Text))
        return select(body).select_from(rows).scalar_subquery()

    def circuit_breakers(self, f: Field) -> ColumnElement[Any]:
        """Every breaker by name, the default one listed before its first write.

        Ordered as the resolver path: by the database's collation, and by code point (Python's
        sort) when the default breaker was added without a row.
        """
        self._aliases += 1
        written = CIRCUIT_BREAKER.table.alias(f"t{self._aliases}")
        default = self.const(BREAKER_DEFAULT_NAME, Text)
        want = union(
            select(written.c.name).where(written.c.tenant_id == self.tenant),
            select(default.label("name")),
        )
        rows, adapt = self.breaker_rows(select(want.subquery().c.name))
        self._aliases += 1
        existing = CIRCUIT_BREAKER.table.alias(f"t{self._aliases}")
        has_default = (
            select(existing.c.id)
            .where(existing.c.tenant_id == self.tenant, existing.c.name == default)
            .exists()
        )
        body = self.entity_object(CIRCUIT_BREAKER, rows, adapt, f.fields, f.type_name)
        order = (case((has_default, rows.c.name)), rows.c.name.collate("C"))
        self.due_breakers(None)
        return type_coerce(
            select(_array(body, order)).select_from(rows).scalar_subquery(), JsonText
        )

    # -- lessons and runs -------------------------------------------------------------------
    def lesson_stats(self, f: Field) -> ColumnElement[Any]:
        """Totals of the tenant's lessons: every type and status in enum order, zeros too."""
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for sub in f.fields:
            alias, adapt = self.alias(LESSON)
            counted = select(func.count()).select_from(alias)
            if sub.name == "__typename":
                pairs.append((sub.key, self.const(f.type_name)))
            elif sub.attr == "total":
                pairs.append(
                    (sub.key, counted.where(alias.c.tenant_id == self.tenant).scalar_subquery())
                )
            elif sub.attr in LESSON_COUNTS:
                column, values = LESSON_COUNTS[sub.attr]
                cells = (
                    func.unnest(self.const(list(values), ARRAY(Text)))
                    .table_valued("v", with_ordinality="n")
                    .render_derived(name=f"u{self._aliases}")
                )
                cell: list[tuple[str, ColumnElement[Any]]] = []
                for leaf in sub.fields:
                    if leaf.name == "__typename":
                        cell.append((leaf.key, self.const(sub.type_name)))
                    elif leaf.attr == "count":
                        where = (alias.c.tenant_id == self.tenant, adapt(column) == cells.c.v)
                        cell.append((leaf.key, counted.where(*where).scalar_subquery()))
                    elif leaf.enum:
                        cell.append((leaf.key, cells.c.v))
                    else:
                        raise NotCompilable(f"{sub.type_name}.{leaf.name}")
                agg = _array(self.obj(cell), [cells.c.n])
                pairs.append((sub.key, select(agg).select_from(cells).scalar_subquery()))
            else:
                raise NotCompilable(f"LessonStats.{sub.name}")
        return self.obj(pairs)

    def incident_metrics(self, f: Field) -> ColumnElement[Any]:
        """One aggregate over the incidents created in the last `windowDays` days.

        The aggregates are computed in an inner query and formatted outside it, so each is
        written (and computed) once.
        """
        self.checks[self.index[id(f)]] = (("window_days", *METRICS_WINDOW_DAYS),)
        alias, adapt = self.alias(INCIDENT)
        now = func.now()
        start = now - func.make_interval(0, 0, 0, self.arg(f, "window_days", Integer))
        values: dict[str, ColumnElement[Any]] = {
            "start": start,
            "end": now,
            **{name: adapt(expr) for name, expr in INCIDENT_METRICS.items()},
        }
        for severity in METRICS_SEVERITIES:
            match = adapt(METRICS_SEVERITY) == self.const(severity)
            values[severity] = func.count().filter(match)
        window = (alias.c.tenant_id == self.tenant, adapt(METRICS_CREATED_AT) >= start)
        row = (
            select(*(v.label(k) for k, v in values.items()))
            .select_from(alias)
            .where(*window)
            .subquery(f"m{self._aliases}")
        )
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for sub in f.fields:
            if sub.name == "__typename":
                pairs.append((sub.key, self.const(f.type_name)))
            elif sub.attr == "window_days":
                pairs.append((sub.key, self.arg(f, "window_days", Integer)))
            elif sub.attr in ("window_start", "window_end"):
                pairs.append((sub.key, _iso(row.c[sub.attr.removeprefix("window_")])))
            elif sub.attr in INCIDENT_METRICS:
                pairs.append((sub.key, _format(row.c[sub.attr], sub)))
            elif sub.attr == "by_severity":
                pairs.append((sub.key, self.severity_counts(sub, row)))
            else:
                raise NotCompilable(f"IncidentMetrics.{sub.name}")
        return select(self.obj(pairs)).select_from(row).scalar_subquery()

    def severity_counts(self, f: Field, row: FromClause) -> ColumnElement[Any]:
        """`bySeverity`: one object per severity, CRITICAL first, from the row's counts."""
        cells = []
        for severity in METRICS_SEVERITIES:
            cell: list[tuple[str, ColumnElement[Any]]] = []
            for leaf in f.fields:
                if leaf.name == "__typename":
                    cell.append((leaf.key, self.const(f.type_name)))
                elif leaf.attr == "severity":
                    cell.append((leaf.key, self.const(severity)))
                elif leaf.attr == "count":
                    cell.append((leaf.key, row.c[severity]))
                else:
                    raise NotCompilable(f"{f.type_name}.{leaf.name}")
            cells.append(self.obj(cell))
        comma = self.const(",", Text)
        parts: list[ColumnElement[Any]] = [self.const("[", Text)]
        for n, built in enumerate(cells):
            parts += [comma, built] if n else [built]
        return _concat([*parts, self.const("]", Text)])

    def budget_halts(self, f: Field) -> ColumnElement[Any]:
        """The newest `first` halted runs, then those whose message holds the amounts."""
        entity = BUDGET_HALT
        inner, inner_adapt = self.alias(entity)
        newest = (
            select(inner.c.id)
            .where(inner.c.tenant_id == self.tenant, inner_adapt(BUDGET_HALT_WHERE))
            .order_by(*(inner_adapt(o) for o in BUDGET_HALT_ORDER))
            .limit(self.arg(f, "first", Integer))
        )
        alias, adapt = self.alias(entity)
        body = self.entity_object(entity, alias, adapt, f.fields, f.type_name)
        agg = _array(body, [adapt(o) for o in BUDGET_HALT_ORDER])
        halts = (
            select(agg)
            .select_from(alias)
            .where(
                alias.c.tenant_id == self.tenant,
                alias.c.id.in_(newest),
                adapt(BUDGET_HALT_MATCHES),
            )
        )
        return type_coerce(halts.scalar_subquery(), JsonText)

    # -- incident analytics (drivers/analytics.py: the resolver path's very statements) --------
    def window_start(self, f: Field, days: str) -> ColumnElement[Any]:
        """now() - `days` days (the read pool's session is in UTC: a day is 24 hours)."""
        return func.now() - func.make_interval(0, 0, 0, self.arg(f, days, Integer))

    def check(self, f: Field, *args: str) -> None:
        """Leave `f` to the resolver path when an argument is out of its range."""
        self.checks[self.index[id(f)]] = tuple((a, *ANALYTICS_RANGES[a]) for a in args)

    def rows_json(
        self, rows: FromClause, f: Field, order: Sequence[Any], where: Any = None
    ) -> ColumnElement[Any]:
        """A JSON array of one object per row of `rows` (leaves named as its columns)."""
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for sub in f.fields:
            if sub.name == "__typename":
                pairs.append((sub.key, self.const(f.type_name)))
            elif (f.type_name, sub.attr) in _ID_LISTS:
                pairs.append(
                    (sub.key, type_coerce(cast(func.to_json(rows.c[sub.attr]), Text), JsonText))
                )
            elif sub.leaf and sub.attr in rows.c:
                pairs.append((sub.key, _format(rows.c[sub.attr], sub)))
            else:
                raise NotCompilable(f"{f.type_name}.{sub.name}")
        return _array(self.obj(pairs), order, where)

    def periods(self, f: Field, build: Callable[..., Select[Any]]) -> ColumnElement[Any]:
        """IncidentTrend / incidentCostTrend: one object per UTC period, oldest first."""
        self.check(f, "window_days")
        unit = self.arg(f, "granularity", Text, analytics.GRANULARITY_UNITS.__getitem__)
        stmt = build(self.tenant, self.window_start(f, "window_days"), func.now(), unit)
        self._aliases += 1
        rows = stmt.subquery(f"a{self._aliases}")
        body = self.rows_json(rows, f, [rows.c.period_start])
        return select(body).select_from(rows).scalar_subquery()

    def incident_trend(self, f: Field) -> ColumnElement[Any]:
        return self.periods(f, analytics.trend_select)

    def incident_cost_trend(self, f: Field) -> ColumnElement[Any]:
        return self.periods(f, analytics.cost_trend_select)

    def incident_cost_impact(self, f: Field) -> ColumnElement[Any]:
        self.check(f, "baseline_days", "limit")
        stmt = analytics.cost_impact_select(
            self.tenant, self.window_start(f, "baseline_days"), self.arg(f, "limit", Integer)
        )
        self._aliases += 1
        rows = stmt.subquery(f"a{self._aliases}")
        c = rows.c
        order = analytics.cost_impact_order(c.total_cost, c.category, c.resolution_method)
        return select(self.rows_json(rows, f, order)).select_from(rows).scalar_subquery()

    def incident_recurrence(self, f: Field) -> ColumnElement[Any]:
        """RecurrenceReport: the groups and the sum of their totals, from one subquery."""
        self.check(f, "baseline_days", "threshold", "limit")
        stmt = patterns.recurrence_select(
            self.tenant,
            self.window_start(f, "baseline_days"),
            self.arg(f, "threshold", Integer),
            self.arg(f, "limit", Integer),
        )
        self._aliases += 1
        rows = stmt.subquery(f"a{self._aliases}")
        c = rows.c
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for sub in f.fields:
            if sub.name == "__typename":
                pairs.append((sub.key, self.const(f.type_name)))
            elif sub.attr in ("baseline_days", "threshold"):
                pairs.append((sub.key, self.arg(f, sub.attr, Integer)))
            elif sub.attr == "total_recurring":
                pairs.append((sub.key, cast(func.coalesce(func.sum(c.total), 0), BigInteger)))
            elif sub.attr == "groups":
                order = patterns.recurrence_order(c.total, c.category, c.resolution_method)
                pairs.append((sub.key, self.rows_json(rows, sub, order)))
            else:
                raise NotCompilable(f"RecurrenceReport.{sub.name}")
        # HAVING: one group, so one row even without groups or when no aggregate is selected.
        return select(self.obj(pairs)).select_from(rows).having(true()).scalar_subquery()

    def recurrence_group(self, f: Field) -> ColumnElement[Any]:
        """The newest RECURRENCE_GROUP_MAX incidents with the signature, as full Incidents."""
        self.checks[self.index[id(f)]] = (("signature", *RECURRENCE_GROUP_LENGTH),)
        inner, inner_adapt = self.alias(INCIDENT)
        signature = self.arg(f, "signature", Text)
        newest = (
            select(inner.c.id)
            .where(
                inner.c.tenant_id == self.tenant,
                inner_adapt(RECURRENCE_GROUP_SIGNATURE) == signature,
            )
            .order_by(*(inner_adapt(o) for o in RECURRENCE_GROUP_ORDER))
            .limit(self.const(RECURRENCE_GROUP_MAX, Integer))
        )
        alias, adapt = self.alias(INCIDENT)
        body = self.entity_object(INCIDENT, alias, adapt, f.fields, f.type_name)
        agg = _array(body, [adapt(o) for o in RECURRENCE_GROUP_ORDER])
        group = select(agg).where(alias.c.tenant_id == self.tenant, alias.c.id.in_(newest))
        return type_coerce(group.scalar_subquery(), JsonText)

    def alert_outbox_stats(self, f: Field) -> ColumnElement[Any]:
        """The tenant's outbox counts: drivers/alerts.py's one-row select, as a subquery."""
        self._aliases += 1
        row = alerts.outbox_stats_select(self.tenant).subquery(f"a{self._aliases}")
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for sub in f.fields:
            if sub.name == "__typename":
                pairs.append((sub.key, self.const(f.type_name)))
            elif sub.leaf and sub.attr in row.c:
                pairs.append((sub.key, _format(row.c[sub.attr], sub)))
            else:
                raise NotCompilable(f"AlertOutboxStats.{sub.name}")
        return select(self.obj(pairs)).select_from(row).scalar_subquery()

    def incident_distribution(self, f: Field) -> ColumnElement[Any]:
        """The rows of all dimensions at once; each bucket list aggregates its own (FILTER)."""
        self.check(f, "window_days")
        stmt = analytics.distribution_select(self.tenant, self.window_start(f, "window_days"))
        self._aliases += 1
        rows = stmt.subquery(f"a{self._aliases}")
        # DistributionBucket as the resolver builds it: key or "", percentage or 0 as a float.
        self._aliases += 1
        buckets = select(
            rows.c.dimension,
            rows.c.count,
            func.coalesce(rows.c.key, literal_column("''")).label("key"),
            cast(func.coalesce(rows.c.percentage, 0), Float(precision=53)).label("percentage"),
            rows.c.key.label("sort_key"),
        ).subquery(f"a{self._aliases}")
        order = (buckets.c.count.desc(), buckets.c.sort_key)
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for sub in f.fields:
            dimension = _DISTRIBUTION_LISTS.get(sub.attr)
            if sub.name == "__typename":
                pairs.append((sub.key, self.const(f.type_name)))
            elif sub.attr == "window_days":
                pairs.append((sub.key, self.arg(f, "window_days", Integer)))
            elif sub.attr == "total":
                total = func.max(buckets.c.count).filter(buckets.c.dimension == "total")
                pairs.append((sub.key, func.coalesce(total, 0)))
            elif dimension is not None:
                match = buckets.c.dimension == self.const(dimension)
                pairs.append((sub.key, self.rows_json(buckets, sub, order, match)))
            else:
                raise NotCompilable(f"IncidentDistribution.{sub.name}")
        return select(self.obj(pairs)).select_from(buckets).having(true()).scalar_subquery()

    def operation(self, root: tuple[Field, ...]) -> list[tuple[str, ColumnElement[Any]]]:
        """The roots that compile, planned one by one; the others are left out (resolver path).

        A root that does not compile leaves nothing behind: the parameters and connections it
        registered are dropped, so binding the plan never evaluates them.
        """
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for f in root:
            static, dynamic, connections = (
                len(self.static),
                len(self.dynamic),
                set(self.connections),
            )
            try:
                pairs.append((f.key, self.root(f)))
            except NotCompilable:
                for name in list(self.static)[static:]:
                    del self.static[name]
                for name in list(self.dynamic)[dynamic:]:
                    del self.dynamic[name]
                for index in set(self.connections) - connections:
                    del self.connections[index]
        if not pairs:
            raise NotCompilable("no root field compiles")
        return pairs


# Root fields with a root function of their own: name -> (their arguments, the function).
_NAMED_ROOTS: dict[str, tuple[frozenset[str], Callable[[_Compiler, Field], ColumnElement[Any]]]] = {
    "viewer": (frozenset(), _Compiler.viewer),
    "circuitBreaker": (frozenset({"name"}), _Compiler.circuit_breaker),
    "circuitBreakers": (frozenset(), _Compiler.circuit_breakers),
    "lessonStats": (frozenset(), _Compiler.lesson_stats),
    "budgetHalts": (frozenset({"first"}), _Compiler.budget_halts),
    "incidentMetrics": (frozenset({"window_days"}), _Compiler.incident_metrics),
    "incidentTrend": (frozenset({"window_days", "granularity"}), _Compiler.incident_trend),
    "incidentCostTrend": (
        frozenset({"window_days", "granularity"}),
        _Compiler.incident_cost_trend,
    ),
    "incidentCostImpact": (frozenset({"baseline_days", "limit"}), _Compiler.incident_cost_impact),
    "incidentDistribution": (frozenset({"window_days"}), _Compiler.incident_distribution),
    "alertOutboxStats": (frozenset(), _Compiler.alert_outbox_stats),
    "recurrenceGroup": (frozenset({"signature"}), _Compiler.recurrence_group),
    "incidentRecurrence": (
        frozenset({"baseline_days", "threshold", "limit"}),
        _Compiler.incident_recurrence,
    ),
}

# Leaves that are lists of IDs (text[] columns): printed as a JSON array of strings.
_ID_LISTS = frozenset({("RecurrenceGroup", "recent_incident_ids")})

# IncidentDistribution's bucket lists: field -> the `dimension` of their rows.
_DISTRIBUTION_LISTS = {
    "by_category": "category",
    "by_severity": "severity",
    "by_cause_type": "cause_type",
}


def _relation(parent: str, name: str) -> Relation[Any] | None:
    """A relation the compiled path may follow (`Relation.compiled`), else None."""
    relation = RELATIONS.get((parent, name))
    return relation if relation is not None and relation.compiled else None


def compile_operation(root: tuple[Field, ...], dialect: Dialect) -> Plan:
    """Compile the operation's compilable roots into one statement returning one text per root.

    Raises NotCompilable when no root compiles.
    """
    compiler = _Compiler(root)
    pairs = compiler.operation(root)
    parts: list[ColumnElement[Any]] = [_as_json(v) for _k, v in pairs]
    parts += [cast(due, Text) for due in compiler.settle]
    stmt = select(array(parts, type_=Text).label("roots"))  # type: ignore[misc]
    compiled = stmt.compile(dialect=dialect)
    return Plan(
        sql=compiled.string,
        positions=tuple(compiled.positiontup or ()),
        # Anonymous binds SQLAlchemy made itself (e.g. an array index) keep their values.
        static={
            **{
                k: v
                for k, v in compiled.params.items()
                if k not in compiler.dynamic and k not in _CALLER
            },
            **compiler.static,
        },
        dynamic=dict(compiler.dynamic),
        connections=dict(compiler.connections),
        roots=tuple(k for k, _v in pairs),
        settle=len(compiler.settle),
        checks=dict(compiler.checks),
    )


# Arguments whose values (not only null-ness) change the SQL: orderings and relation switches.
_ORDER_ARGS = frozenset(s.order_arg for s in ROOT_LISTS.values() if s.order_arg) | {
    arg for arg, _ in RELATION_SWITCHES.values()
}


class PlanCache:
    """Bounded LRU of plans keyed by the selection's shape (None = not compilable)."""

    def __init__(self, maxsize: int = 512) -> None:
        self._plans: LRUCache[Any, Plan | None] = LRUCache(maxsize=maxsize)
        self.compiles = 0  # plan misses: selections compiled (or found not compilable)

    def get(self, root: tuple[Field, ...], dialect: Dialect) -> Plan | None:
        key = shape(root, _ORDER_ARGS)
        try:
            return self._plans[key]
        except KeyError:
            pass
        self.compiles += 1
        try:
            plan: Plan | None = compile_operation(root, dialect)
        except NotCompilable:
            plan = None
        self._plans[key] = plan
        return plan

    def __len__(self) -> int:
        return len(self._plans)


@dataclass(frozen=True, slots=True)
class BoundPlan:
    """A plan with every argument bound; only the caller (tenant, actor, role) is per request.

    Values are computed once from the selection, so an identical request re-binds nothing: the
    gateway keeps these per (document, operation, variables) and fills in the caller.
    """

    sql: str
    template: tuple[Any, ...]
    caller: tuple[tuple[int, str], ...]  # (parameter index, "tenant" | "actor" | "role")
    roots: tuple[str, ...]  # Plan.roots: the response key of each text the statement returns
    settle: int  # Plan.settle

    def params(self, *, tenant_id: str, actor: str, role: str) -> list[Any]:
        """The statement's parameters for one caller; the tenant comes only from here."""
        params = list(self.template)
        who = {"tenant": tenant_id, "actor": actor, "role": role}
        for index, name in self.caller:
            params[index] = who[name]
        return params


def bind_plan(plan: Plan, root: tuple[Field, ...], pages: Pages) -> BoundPlan:
    """Bind the selection's argument values (and checked pages) to the plan's parameters."""
    nodes = list(flatten(root))
    values: dict[str, Any] = dict(plan.static)
    for name, getter in plan.dynamic.items():
        values[name] = getter(nodes, pages)
    template = tuple(None if name in _CALLER else values[name] for name in plan.positions)
    caller = tuple((i, name) for i, name in enumerate(plan.positions) if name in _CALLER)
    return BoundPlan(plan.sql, template, caller, plan.roots, plan.settle)
