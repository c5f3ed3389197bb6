"""incidentCostImpact, incidentTrend, incidentCostTrend and incidentDistribution, compiled.

Both paths run the same SELECT (drivers/analytics.py); these tests prove the compiled answer's
bytes-as-parsed (every number compared as its text) equal to the resolver path's over every
argument edge: windows that include or exclude rows, each granularity, row limits, a tenant
without incidents, null categories, methods and costs, averages that round half up, fractional
resolution times, and out-of-range arguments (the resolver path's BAD_USER_INPUT).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import product
from typing import Any

from drivers import tables as t
from tests.compiled.test_roots import _both
from tests.factories import insert_rows
from tests.factories_analytics import inc, seed, utc_now

_COST = "category resolutionMethod count totalCost averageCost __typename"
_TREND = "periodStart count resolvedCount averageResolutionMs"
_COST_TREND = "periodStart totalCost count averageCost"
_BUCKET = "key count percentage __typename"
_GROUP = """category resolutionMethod total distinctDays occurrencesPerDay firstOccurrence
  lastOccurrence recentIncidentIds __typename"""
_RECURRENCE = f"baselineDays threshold totalRecurring groups {{ {_GROUP} }} __typename"
_DIST = f"""windowDays total byCategory {{ {_BUCKET} }} bySeverity {{ key count percentage }}
  byCauseType {{ percentage key }} __typename"""


def _incidents() -> list[dict[str, Any]]:
    """Tenant t1's incidents, never within minutes of a window's edge."""
    now = utc_now()
    rows = []
    ages = [0.02, 0.6, 1.5, 2.9, 6.5, 8.2, 29.5, 31.0, 45.0, 89.5, 91.0, 200.0, 364.5, 366.0]
    costs = [Decimal("0.01"), Decimal("0.02"), None, Decimal("1234567.89"), Decimal("0.00")]
    for i, age in enumerate(ages):
        for j in range(1 + i % 3):
            resolved = (
                None if (i + j) % 3 == 0 else timedelta(seconds=7 * i + j, microseconds=1234 * j)
            )
            rows.append(
                inc(
                    now - timedelta(days=age, minutes=j),
                    resolved_after=resolved,
                    method=("AUTO", "MANUAL", "ROLLBACK")[(i + j) % 3],
                    category=(None, "DRIFT", "COST", "DRIFT")[(i + j) % 4],
                    severity=("CRITICAL", "HIGH", "MEDIUM", "LOW")[(2 * i + j) % 4],
                    cause_type=("HUMAN", "SYSTEM", "LLM_RUN")[i % 3],
                    cost_impact=costs[(i + 2 * j) % len(costs)],
                )
            )
    return rows


async def _seeded(engine) -> None:
    await seed(engine, _incidents())


async def test_every_argument_edge_answers_as_the_resolver_path(client, compiled_client, engine):
    # given
    await _seeded(engine)
    queries = []
    for days, unit in product([1, 3, 7, 30, 90, 365], ["DAY", "WEEK", "MONTH"]):
        queries.append(
            f"{{ a: incidentTrend(windowDays: {days}, granularity: {unit}) {{ {_TREND} }}"
            f" b: incidentCostTrend(windowDays: {days}, granularity: {unit}) {{ {_COST_TREND} }} }}"
        )
    for days, limit in product([1, 2, 7, 30, 90], [1, 2, 3, 100]):
        queries.append(
            f"{{ incidentCostImpact(baselineDays: {days}, limit: {limit}) {{ {_COST} }} }}"
        )
    for days in [1, 2, 7, 30, 90, 365]:
        queries.append(f"{{ incidentDistribution(windowDays: {days}) {{ {_DIST} }} }}")
    for days, threshold, limit in product([1, 7, 30, 90], [2, 3, 10_000], [1, 2, 100]):
        queries.append(
            f"{{ incidentRecurrence(baselineDays: {days}, threshold: {threshold},"
            f" limit: {limit}) {{ {_RECURRENCE} }} }}"
        )
    # only the arguments echoed: still one object (no aggregate selected)
    queries.append(
        "{ incidentDistribution { windowDays } incidentRecurrence { threshold baselineDays } }"
    )
    queries.append(
        f"{{ incidentTrend {{ {_TREND} }} incidentCostTrend {{ {_COST_TREND} }}"
        f" incidentCostImpact {{ {_COST} }} incidentDistribution {{ {_DIST} }}"
        f" incidentRecurrence {{ {_RECURRENCE} }} }}"
    )
    mismatches = []
    # when
    for query in queries:
        for tenant in ("t1", "t2"):
            path, want, got = await _both(client, compiled_client, query, tenant=tenant)
            if path != "compiled" or got != want:
                mismatches.append((query, tenant, path, want, got))
    # then
    assert not mismatches, (len(mismatches), mismatches[:1])


async def test_the_numbers_cover_the_edges(client, compiled_client, engine):
    # given
    await _seeded(engine)
    query = f"""{{
      incidentCostImpact(baselineDays: 90, limit: 100) {{ {_COST} }}
      incidentTrend(windowDays: 30, granularity: DAY) {{ {_TREND} }}
      incidentCostTrend(windowDays: 365, granularity: MONTH) {{ {_COST_TREND} }}
      incidentDistribution(windowDays: 365) {{ {_DIST} }}
      incidentRecurrence(baselineDays: 90, threshold: 2) {{ {_RECURRENCE} }}
    }}"""
    # when
    path, want, got = await _both(client, compiled_client, query)
    _, want2, got2 = await _both(client, compiled_client, query, tenant="t2")
    # then
    assert path == "compiled"
    assert (got, got2) == (want, want2)
    data = got["data"]
    costs = data["incidentCostImpact"]
    assert {c["category"] for c in costs} == {"UNCATEGORIZED", "DRIFT", "COST"}
    assert None in {c["resolutionMethod"] for c in costs}  # unresolved incidents
    trend = data["incidentTrend"]
    assert len(trend) in (31, 32) and any(p["count"] == "i:0" for p in trend)
    assert any(p["averageResolutionMs"] not in (None,) for p in trend)
    assert any(p["averageCost"] is None for p in data["incidentCostTrend"])
    dist = data["incidentDistribution"]
    assert dist["total"] != "i:0"
    assert all(b["percentage"].startswith("f:") for b in dist["byCategory"])
    recurrence = data["incidentRecurrence"]
    assert recurrence["totalRecurring"] != "i:0"
    assert all(
        len(g["recentIncidentIds"]) == min(int(g["total"][2:]), 5) for g in recurrence["groups"]
    )
    assert all(g["occurrencesPerDay"].startswith("f:") for g in recurrence["groups"])
    empty = got2["data"]
    assert empty["incidentRecurrence"]["groups"] == []
    assert empty["incidentRecurrence"]["totalRecurring"] == "i:0"
    assert empty["incidentCostImpact"] == [] and empty["incidentDistribution"]["total"] == "i:0"
    assert empty["incidentDistribution"]["byCategory"] == []
    assert all(p["count"] == "i:0" and p["averageCost"] is None for p in empty["incidentCostTrend"])


async def test_out_of_range_arguments_are_the_resolver_paths_errors(
    client, compiled_client, engine
):
    # given
    await _seeded(engine)
    bad = [
        "incidentTrend(windowDays: 0) { count }",
        "incidentCostTrend(windowDays: 366) { count }",
        "incidentCostImpact(baselineDays: 91) { count }",
        "incidentCostImpact(limit: 0) { count }",
        "incidentCostImpact(limit: 101) { count }",
        "incidentDistribution(windowDays: -1) { total }",
        "incidentRecurrence(threshold: 1) { totalRecurring }",
        "incidentRecurrence(baselineDays: 91) { totalRecurring }",
        "incidentRecurrence(limit: 101) { totalRecurring }",
    ]
    for root in bad:
        # when
        _, want, got = await _both(
            client, compiled_client, f"{{ lessons(first: 1) {{ totalCount }} {root} }}"
        )
        # then: the root is non-null, so its error (the resolver path's) nulls the data
        assert got == want, root
        assert got["data"] is None, root
        assert got["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", root


async def test_averages_and_percentages_round_half_up_on_both_paths(
    client, compiled_client, engine
):
    # given: tenant t3's three incidents; costs 0.01 and 0.02 average 0.015
    now = utc_now()
    rows = [
        inc(now - timedelta(hours=h), tenant="t3", category="DRIFT", cost_impact=cost)
        for h, cost in ((1, Decimal("0.01")), (2, Decimal("0.02")), (3, None))
    ]
    rows[2]["category"] = None
    await seed(engine, rows)
    query = f"""{{ incidentCostImpact {{ {_COST} }} incidentDistribution {{ {_DIST} }}
      incidentCostTrend(windowDays: 1, granularity: DAY) {{ {_COST_TREND} }} }}"""
    # when
    path, want, got = await _both(client, compiled_client, query, tenant="t3")
    # then
    assert path == "compiled"
    assert got == want
    [cost] = got["data"]["incidentCostImpact"]
    assert (cost["totalCost"], cost["averageCost"], cost["count"]) == ("0.03", "0.02", "i:2")
    categories = got["data"]["incidentDistribution"]["byCategory"]
    assert [(b["key"], b["percentage"]) for b in categories] == [
        ("DRIFT", "f:66.67"),
        ("UNCATEGORIZED", "f:33.33"),
    ]
    assert sum(Decimal(p["totalCost"]) for p in got["data"]["incidentCostTrend"]) == Decimal("0.03")


async def test_alert_outbox_stats_compile(client, compiled_client, engine):
    # given: t1 has two PENDING rows (the older one with a fraction), one SENT, one FAILED
    now = utc_now().replace(microsecond=0)
    rows = [
        _alert(status, now - timedelta(minutes=m, microseconds=us))
        for status, m, us in (("PENDING", 5, 250), ("PENDING", 1, 0), ("SENT", 9, 0))
    ]
    rows.append(_alert("FAILED", now))
    await insert_rows(engine, t.alert_outbox, rows)
    query = "{ alertOutboxStats { pending sent failed oldestPendingAt __typename } }"
    # when
    path, want, got = await _both(client, compiled_client, query)
    path2, want2, got2 = await _both(client, compiled_client, query, tenant="t2")
    # then
    assert (path, path2) == ("compiled", "compiled")
    assert (got, got2) == (want, want2)
    stats = got["data"]["alertOutboxStats"]
    assert (stats["pending"], stats["sent"], stats["failed"]) == ("i:2", "i:1", "i:1")
    oldest = now - timedelta(minutes=5, microseconds=250)
    assert stats["oldestPendingAt"] == oldest.isoformat()
    assert got2["data"]["alertOutboxStats"]["oldestPendingAt"] is None


def _alert(status: str, created_at: Any) -> dict[str, Any]:
    return {
        "tenant_id": "t1",
        "payload": {},
        "alert_type": "DISABLE",
        "status": status,
        "created_at": created_at,
    }


async def test_recurrence_group_compiles_newest_fifty(client, compiled_client, engine):
    # given: 55 t1 incidents share a signature (some at the same instant: the id breaks ties)
    now = utc_now()
    rows = [
        inc(now - timedelta(minutes=i // 2), recurrence_signature="sig-a", category=None)
        for i in range(55)
    ]
    rows.append(inc(now, tenant="t2", recurrence_signature="sig-a"))
    rows.append(inc(now, recurrence_signature="sig-b", cost_impact=Decimal("3.10")))
    await seed(engine, rows)
    fields = """id title severity status createdAt costImpact recurrenceSignature
      recurrenceCount lastSeenAt __typename"""
    query = f"""{{ a: recurrenceGroup(signature: "sig-a") {{ {fields} }}
      b: recurrenceGroup(signature: "sig-b") {{ id costImpact }}
      none: recurrenceGroup(signature: "nothing") {{ id }} }}"""
    # when
    path, want, got = await _both(client, compiled_client, query)
    path2, want2, got2 = await _both(client, compiled_client, query, tenant="t2")
    # then
    assert (path, path2) == ("compiled", "compiled")
    assert (got, got2) == (want, want2)
    assert len(got["data"]["a"]) == 50 and got["data"]["none"] == []
    assert [i["costImpact"] for i in got["data"]["b"]] == ["3.10"]
    assert len(got2["data"]["a"]) == 1 and got2["data"]["b"] == []


async def test_a_bad_signature_is_the_resolver_paths_error(client, compiled_client, engine):
    # given
    await seed(engine, [inc(utc_now(), recurrence_signature="s")])
    for signature in ("", "x" * 129):
        query = f'{{ lessons(first: 1) {{ totalCount }} recurrenceGroup(signature: "{signature}") {{ id }} }}'
        # when
        _, want, got = await _both(client, compiled_client, query)
        # then
        assert got == want
        assert got["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    ok = '{ recurrenceGroup(signature: "' + "x" * 128 + '") { id } }'
    path, want, got = await _both(client, compiled_client, ok)
    assert path == "compiled" and got == want
