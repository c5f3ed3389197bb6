"""The limit slice over real HTTP (DOMAIN.md §3.1): defaults, filters, order, nested fields."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from drivers import tables as t
from tests.factories import (
    NOW,
    breach_row,
    insert_limits,
    insert_rows,
    limit_row,
    make_limits,
    override_row,
)
from tests.helpers import gql

LIMITS = """query($first: Int! = 50, $after: String, $filter: LimitFilter) {
  limits(first: $first, after: $after, filter: $filter) {
    totalCount
    nodes { id breachCount30d lastBreachedAt }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""

LIMIT = """query($id: ID!) { limit(id: $id) {
  id maxValue effectiveValue limitCategory limitType status
  integrity { integrityStatus integrityScore }
  activeOverride { id status overrideValue effectiveValue limit { id } }
} }"""


def _ago(**delta: float):
    return NOW - timedelta(**delta)


async def _ids(client, filter_: dict[str, Any] | None = None, **kw) -> list[str]:
    body = await gql(client, LIMITS, {"filter": filter_}, **kw)
    assert "errors" not in body, body
    return [n["id"] for n in body["data"]["limits"]["nodes"]]


async def test_no_filter_lists_active_budget_limits_only(client, engine):
    # given one limit of each other kind
    wanted = limit_row(created_at=_ago(hours=1))
    await insert_limits(
        engine,
        [
            wanted,
            limit_row(limit_category="RATE", window_seconds=60, reset_period=None),
            limit_row(limit_category="THRESHOLD", reset_period=None),
            limit_row(status="DISABLED"),
            limit_row("t2"),
        ],
    )
    # when
    body = await gql(client, LIMITS, {})
    # then
    assert body["data"]["limits"]["totalCount"] == 1
    assert [n["id"] for n in body["data"]["limits"]["nodes"]] == [wanted["id"]]


async def test_enum_and_date_filters(client, engine):
    # given
    rate = limit_row(limit_category="RATE", window_seconds=60, reset_period=None, scope="AGENT")
    threshold = limit_row(limit_category="THRESHOLD", reset_period=None, enforcement="WARN")
    disabled = limit_row(status="DISABLED", scope="PROJECT", scope_id="p1")
    old = limit_row(enforcement="ALERT", created_at=_ago(days=10))
    new = limit_row(scope="GLOBAL", created_at=_ago(hours=1))
    await insert_limits(engine, [rate, threshold, disabled, old, new])
    # when / then
    assert await _ids(client, {"category": ["RATE"]}) == [rate["id"]]
    assert set(await _ids(client, {"category": ["RATE", "THRESHOLD"]})) == {
        rate["id"],
        threshold["id"],
    }
    assert await _ids(client, {"status": ["DISABLED"]}) == [disabled["id"]]
    assert set(await _ids(client, {"status": ["ACTIVE", "DISABLED"]})) == {
        disabled["id"],
        old["id"],
        new["id"],
    }
    assert await _ids(client, {"scope": ["GLOBAL"]}) == [new["id"]]
    assert await _ids(client, {"scope": ["AGENT"], "category": ["RATE"]}) == [rate["id"]]
    assert await _ids(client, {"enforcement": ["ALERT"]}) == [old["id"]]
    assert await _ids(client, {"enforcement": ["WARN"]}) == []  # WARN is THRESHOLD, not BUDGET
    assert await _ids(client, {"createdAfter": _ago(days=1).isoformat()}) == [new["id"]]
    assert await _ids(client, {"createdBefore": _ago(days=1).isoformat()}) == [old["id"]]


async def test_limit_type_exact_and_prefix_with_literal_wildcards(client, engine):
    # given
    types = ["COST_USD", "TOKENS_PER_RUN", "TOKENS_DAILY", "TOKENSX", "TOKENS", "RATE%X", "RATEZX"]
    rows = [limit_row(limit_type=lt, created_at=_ago(minutes=i)) for i, lt in enumerate(types)]
    await insert_limits(engine, rows)
    by_type = {r["limit_type"]: r["id"] for r in rows}
    # when / then
    assert await _ids(client, {"limitType": "COST_USD"}) == [by_type["COST_USD"]]
    assert await _ids(client, {"limitType": "TOKENS"}) == [by_type["TOKENS"]]
    assert await _ids(client, {"limitType": "TOKENS_*"}) == [
        by_type["TOKENS_PER_RUN"],
        by_type["TOKENS_DAILY"],
    ]
    assert await _ids(client, {"limitType": "TOKENS*"}) == [
        by_type[x] for x in ("TOKENS_PER_RUN", "TOKENS_DAILY", "TOKENSX", "TOKENS")
    ]
    assert await _ids(client, {"limitType": "RATE%*"}) == [by_type["RATE%X"]]
    assert await _ids(client, {"limitType": "TOKENS_"}) == []  # no `*`: exact, `_` literal
    assert len(await _ids(client, {"limitType": "*"})) == len(types)


async def test_default_order_is_recent_breach_first_then_newest(client, engine):
    # given
    a = limit_row(name="a", created_at=_ago(days=5))  # breached 1 day ago
    b = limit_row(name="b", created_at=_ago(days=1))  # breached 3 days ago
    c = limit_row(name="c", created_at=_ago(hours=2))  # never breached, newest
    d = limit_row(name="d", created_at=_ago(days=3))  # breached only 40 days ago
    e = limit_row(name="e", created_at=_ago(days=10))  # never breached, oldest
    await insert_limits(engine, [a, b, c, d, e])
    await insert_rows(
        engine,
        t.limit_breaches,
        [
            breach_row(a["id"], breached_at=_ago(days=1)),
            breach_row(a["id"], breached_at=_ago(days=29)),
            breach_row(a["id"], breached_at=_ago(days=31)),
            breach_row(b["id"], breached_at=_ago(days=3)),
            breach_row(d["id"], breached_at=_ago(days=40)),
            breach_row(d["id"], breached_at=_ago(days=45)),
        ],
    )
    # when
    body = await gql(client, LIMITS, {})
    # then
    nodes = body["data"]["limits"]["nodes"]
    assert [n["id"] for n in nodes] == [a["id"], b["id"], c["id"], d["id"], e["id"]]
    assert [n["breachCount30d"] for n in nodes] == [2, 1, 0, 0, 0]
    last = [n["lastBreachedAt"] for n in nodes]
    assert last == [_ago(days=1).isoformat(), _ago(days=3).isoformat(), None, None, None]
    # and keyset pages over the derived order have no gaps or duplicates
    seen: list[str] = []
    after = None
    for _ in range(5):
        page = (await gql(client, LIMITS, {"first": 2, "after": after}))["data"]["limits"]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [n["id"] for n in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert seen == [a["id"], b["id"], c["id"], d["id"], e["id"]]


async def test_point_read_with_decimals_integrity_and_active_override(client, engine):
    # given one limit with an ACTIVE override, one with only a PENDING and an EXPIRED one
    boosted, plain = await make_limits(engine, 2, max_value=Decimal("100.5"))
    active = override_row(boosted["id"], override_value=Decimal("150"))
    await insert_rows(engine, t.limit_overrides, [active])
    await insert_rows(
        engine,
        t.limit_overrides,
        [
            override_row(plain["id"], status="PENDING"),
            override_row(plain["id"], status="EXPIRED", expires_at=_ago(hours=1)),
        ],
    )
    # when
    got = (await gql(client, LIMIT, {"id": boosted["id"]}))["data"]["limit"]
    other = (await gql(client, LIMIT, {"id": plain["id"]}))["data"]["limit"]
    # then
    assert got == {
        "id": boosted["id"],
        "maxValue": "100.5000",
        "effectiveValue": "150.0000",
        "limitCategory": "BUDGET",
        "limitType": "COST_USD",
        "status": "ACTIVE",
        "integrity": {"integrityStatus": "VERIFIED", "integrityScore": "1.0000"},
        "activeOverride": {
            "id": active["id"],
            "status": "ACTIVE",
            "overrideValue": "150.0000",
            "effectiveValue": "150.0000",
            "limit": {"id": boosted["id"]},
        },
    }
    assert (other["effectiveValue"], other["activeOverride"]) == ("100.5000", None)


async def test_foreign_and_missing_limit_read_as_null(client, engine):
    [theirs] = await make_limits(engine, 1, tenant="t2")
    query = "query($id: ID!) { limit(id: $id) { id } }"
    foreign = await gql(client, query, {"id": theirs["id"]})
    missing = await gql(client, query, {"id": "no-such-limit"})
    own = await gql(client, query, {"id": theirs["id"]}, tenant="t2")
    assert foreign == missing == {"data": {"limit": None}}
    assert own == {"data": {"limit": {"id": theirs["id"]}}}


async def test_nested_breach_pages_have_no_gaps_and_point_back_to_their_limit(client, engine):
    # given 8 breaches, three sharing one timestamp so the id tie-breaker matters
    [lim] = await make_limits(engine, 1, name="Monthly spend")
    times = [_ago(hours=h) for h in (1, 2, 2, 2, 3, 4, 5, 6)]
    breaches = [breach_row(lim["id"], breached_at=ts) for ts in times]
    await insert_rows(engine, t.limit_breaches, breaches)
    query = """query($id: ID!, $after: String) { limit(id: $id) {
      breaches(first: 3, after: $after) {
        totalCount
        nodes { id limitValue valueAtBreach limit { id name } }
        pageInfo { hasNextPage hasPreviousPage endCursor }
      }
    } }"""
    # when
    seen: list[str] = []
    after = None
    for _ in range(5):
        body = await gql(client, query, {"id": lim["id"], "after": after})
        page = body["data"]["limit"]["breaches"]
        assert page["totalCount"] == 8
        assert all(n["limit"] == {"id": lim["id"], "name": "Monthly spend"} for n in page["nodes"])
        assert all(
            (n["limitValue"], n["valueAtBreach"]) == ("100.0000", "120.0000") for n in page["nodes"]
        )
        seen += [n["id"] for n in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    # then every breach once, newest first, ties broken by id descending
    expected = sorted(breaches, key=lambda b: (b["breached_at"], b["id"]), reverse=True)
    assert seen == [b["id"] for b in expected]


async def test_overrides_filter_by_status_newest_request_first(client, engine):
    # given
    [lim] = await make_limits(engine, 1)
    rows = {
        status: override_row(lim["id"], status=status, requested_at=_ago(days=days))
        for status, days in (("EXPIRED", 4), ("REJECTED", 3), ("ACTIVE", 2), ("CANCELLED", 1))
    }
    for row in rows.values():
        await insert_rows(engine, t.limit_overrides, [row])
    query = """query($id: ID!, $status: [OverrideStatus!]) { limit(id: $id) {
      overrides(status: $status) { id status effectiveValue }
    } }"""

    async def statuses(status: list[str] | None) -> list[str]:
        body = await gql(client, query, {"id": lim["id"], "status": status})
        assert "errors" not in body, body
        got = body["data"]["limit"]["overrides"]
        assert all(o["id"] == rows[o["status"]]["id"] for o in got)
        return [o["status"] for o in got]

    # when / then
    assert await statuses(None) == ["CANCELLED", "ACTIVE", "REJECTED", "EXPIRED"]
    assert await statuses(["EXPIRED", "ACTIVE"]) == ["ACTIVE", "EXPIRED"]
    assert await statuses(["PENDING"]) == []
    assert await statuses([]) == []
    body = await gql(client, query, {"id": lim["id"], "status": ["ACTIVE", "EXPIRED"]})
    values = [o["effectiveValue"] for o in body["data"]["limit"]["overrides"]]
    assert values == ["150.0000", "100.0000"]  # original value once not ACTIVE


async def test_hundred_limits_cost_as_many_statements_as_five(client, engine, count_statements):
    async def seed(n: int, tenant: str) -> None:
        limits = await make_limits(engine, n, tenant)
        await insert_rows(
            engine,
            t.limit_breaches,
            [
                breach_row(lim["id"], tenant, breached_at=_ago(hours=k))
                for lim in limits
                for k in range(1, 8)
            ],
        )
        for status, requested in (("ACTIVE", _ago(hours=1)), ("EXPIRED", _ago(days=9))):
            await insert_rows(
                engine,
                t.limit_overrides,
                [
                    override_row(lim["id"], tenant, status=status, requested_at=requested)
                    for lim in limits
                ],
            )

    await seed(5, "small")
    await seed(100, "large")
    query = """{ limits(first: 100) { nodes {
      id breaches(first: 5) { nodes { id } pageInfo { hasNextPage } } overrides { id status }
    } } }"""
    counts = {}
    for tenant, n in (("small", 5), ("large", 100)):
        count_statements.reset()
        body = await gql(client, query, tenant=tenant)
        assert "errors" not in body, body
        nodes = body["data"]["limits"]["nodes"]
        assert len(nodes) == n
        assert all(len(x["breaches"]["nodes"]) == 5 for x in nodes)
        assert all(x["breaches"]["pageInfo"]["hasNextPage"] for x in nodes)
        assert all([o["status"] for o in x["overrides"]] == ["ACTIVE", "EXPIRED"] for x in nodes)
        counts[tenant] = count_statements.count
    # limits page + breaches window + overrides (auth is a JWT: no SQL)
    assert counts == {"small": 3, "large": 3}
