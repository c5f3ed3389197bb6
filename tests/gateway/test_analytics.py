"""Incident analytics over HTTP with exact numbers (DOMAIN.md §3.17): metrics, cost, trends."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.factories_analytics import (
    day_start,
    inc,
    month_start,
    seed,
    utc_now,
    week_start,
)
from tests.helpers import error_codes, gql

MIN = timedelta(minutes=1)

METRICS = """query($w: Int) { incidentMetrics(windowDays: $w) {
  windowDays open acknowledged active resolved total averageResolutionMs medianResolutionMs
  bySeverity { severity count }
} }"""


async def test_metrics_count_statuses_severities_and_resolution_times(client, engine):
    # given three resolved incidents (10, 20, 60 minutes), one open, one acknowledged,
    # an old one outside 30 days and another tenant's
    now = utc_now()
    rows = [
        inc(now - timedelta(days=1), resolved_after=10 * MIN, severity="CRITICAL"),
        inc(now - timedelta(days=2), resolved_after=20 * MIN, severity="HIGH"),
        inc(now - timedelta(days=3), resolved_after=60 * MIN, severity="HIGH"),
        inc(now - timedelta(hours=2), severity="LOW"),
        inc(
            now - timedelta(hours=3),
            severity="LOW",
            status="ACKNOWLEDGED",
            acknowledged_at=now - timedelta(hours=1),
        ),
        inc(now - timedelta(days=40), resolved_after=120 * MIN, severity="MEDIUM"),
        inc(now - timedelta(days=1), tenant="t2", resolved_after=MIN, severity="CRITICAL"),
    ]
    await seed(engine, rows)
    # when
    body = await gql(client, METRICS, {"w": 30}, role="VIEWER")
    # then
    assert "errors" not in body, body
    assert body["data"]["incidentMetrics"] == {
        "windowDays": 30,
        "open": 1,
        "acknowledged": 1,
        "active": 2,
        "resolved": 3,
        "total": 5,
        "averageResolutionMs": 1_800_000.0,
        "medianResolutionMs": 1_200_000.0,
        "bySeverity": [
            {"severity": "CRITICAL", "count": 1},
            {"severity": "HIGH", "count": 2},
            {"severity": "MEDIUM", "count": 0},
            {"severity": "LOW", "count": 2},
        ],
    }
    # the 60-day window takes the old one in: median of 10, 20, 60, 120 minutes is 40 minutes
    wide = (await gql(client, METRICS, {"w": 60}))["data"]["incidentMetrics"]
    assert (wide["total"], wide["resolved"]) == (6, 4)
    assert wide["averageResolutionMs"] == 3_150_000.0
    assert wide["medianResolutionMs"] == 2_400_000.0


async def test_metrics_of_an_empty_tenant(client, engine):
    body = await gql(client, "{ incidentMetrics { windowDays total averageResolutionMs } }")
    assert body["data"]["incidentMetrics"] == {
        "windowDays": 30,
        "total": 0,
        "averageResolutionMs": None,
    }


COST = """query($b: Int, $l: Int) { incidentCostImpact(baselineDays: $b, limit: $l) {
  category resolutionMethod count totalCost averageCost
} }"""


async def test_cost_impact_groups_by_category_and_method_with_cents_scale(client, engine):
    now = utc_now()
    d = timedelta(days=1)
    await seed(
        engine,
        [
            inc(now - d, category="COST_ANOMALY", resolved_after=MIN, cost_impact="10.50"),
            inc(now - 2 * d, category="COST_ANOMALY", resolved_after=MIN, cost_impact="20.25"),
            inc(
                now - d,
                category="COST_ANOMALY",
                resolved_after=MIN,
                method="AUTO",
                cost_impact="99.99",
            ),
            inc(now - d, category=None, cost_impact="5"),
            inc(now - d, category="MANUAL", cost_impact=None),
            inc(now - 40 * d, category="MANUAL", cost_impact="1000.00"),
            inc(now - d, tenant="t2", category="MANUAL", cost_impact="500.00"),
        ],
    )
    body = await gql(client, COST, {"b": 30, "l": 20})
    assert "errors" not in body, body
    assert body["data"]["incidentCostImpact"] == [
        {"category": "COST_ANOMALY", "resolutionMethod": "AUTO", "count": 1,
         "totalCost": "99.99", "averageCost": "99.99"},
        {"category": "COST_ANOMALY", "resolutionMethod": "MANUAL", "count": 2,
         "totalCost": "30.75", "averageCost": "15.38"},
        {"category": "UNCATEGORIZED", "resolutionMethod": None, "count": 1,
         "totalCost": "5.00", "averageCost": "5.00"},
    ]  # fmt: skip
    limited = await gql(client, COST, {"b": 30, "l": 1})
    assert [r["totalCost"] for r in limited["data"]["incidentCostImpact"]] == ["99.99"]
    wide = await gql(client, COST, {"b": 90, "l": 20})
    assert wide["data"]["incidentCostImpact"][0]["totalCost"] == "1000.00"


TREND = """query($w: Int, $g: Granularity) { incidentTrend(windowDays: $w, granularity: $g) {
  periodStart count resolvedCount averageResolutionMs
} }"""


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def test_weekly_trend_buckets_split_at_monday_midnight_utc(client, engine):
    # given one incident at this week's Monday 00:00 UTC and one a microsecond before
    now = utc_now()
    this_week = week_start(now)
    tick = timedelta(microseconds=1)
    await seed(
        engine,
        [
            inc(this_week, resolved_after=30 * MIN),
            inc(this_week - tick, resolved_after=10 * MIN),
            inc(this_week - tick - timedelta(days=1), resolved_after=20 * MIN),
            inc(this_week - timedelta(days=3)),
            inc(this_week, tenant="t2"),
        ],
    )
    # when: 14 days span exactly three ISO weeks (the partial first one included)
    body = await gql(client, TREND, {"w": 14, "g": "WEEK"})
    # then
    assert "errors" not in body, body
    assert body["data"]["incidentTrend"] == [
        {"periodStart": _iso(this_week - timedelta(days=14)), "count": 0, "resolvedCount": 0,
         "averageResolutionMs": None},
        {"periodStart": _iso(this_week - timedelta(days=7)), "count": 3, "resolvedCount": 2,
         "averageResolutionMs": 900_000.0},
        {"periodStart": _iso(this_week), "count": 1, "resolvedCount": 1,
         "averageResolutionMs": 1_800_000.0},
    ]  # fmt: skip


async def test_daily_and_monthly_trend_boundaries(client, engine):
    now = utc_now()
    today = day_start(now)
    tick = timedelta(microseconds=1)
    await seed(engine, [inc(today), inc(today - tick), inc(today - tick)])
    body = await gql(client, TREND, {"w": 2, "g": "DAY"})
    points = body["data"]["incidentTrend"]
    assert [(p["periodStart"], p["count"]) for p in points] == [
        (_iso(today - timedelta(days=2)), 0),
        (_iso(today - timedelta(days=1)), 2),
        (_iso(today), 1),
    ]
    monthly = (await gql(client, TREND, {"w": 1, "g": "MONTH"}))["data"]["incidentTrend"]
    starts = sorted({month_start(now - timedelta(days=1)), month_start(now)})
    assert [p["periodStart"] for p in monthly] == [_iso(s) for s in starts]
    assert sum(p["count"] for p in monthly) == 3


COST_TREND = """query($w: Int, $g: Granularity) {
  incidentCostTrend(windowDays: $w, granularity: $g) { periodStart totalCost count averageCost }
}"""


async def test_cost_trend_sums_per_day_with_two_decimals(client, engine):
    now = utc_now()
    today = day_start(now)
    yesterday = today - timedelta(days=1)
    await seed(
        engine,
        [
            inc(today, cost_impact="1.10"),
            inc(today, cost_impact="2.25"),
            inc(today, cost_impact=None),
            inc(yesterday + timedelta(hours=1), cost_impact="0.01"),
            inc(today, tenant="t2", cost_impact="7.00"),
        ],
    )
    body = await gql(client, COST_TREND, {"w": 2, "g": "DAY"})
    assert "errors" not in body, body
    assert body["data"]["incidentCostTrend"] == [
        {"periodStart": _iso(today - timedelta(days=2)), "totalCost": "0.00", "count": 0,
         "averageCost": None},
        {"periodStart": _iso(yesterday), "totalCost": "0.01", "count": 1, "averageCost": "0.01"},
        {"periodStart": _iso(today), "totalCost": "3.35", "count": 2, "averageCost": "1.68"},
    ]  # fmt: skip


DISTRIBUTION = """query($w: Int) { incidentDistribution(windowDays: $w) {
  windowDays total
  byCategory { key count percentage }
  bySeverity { key count percentage }
  byCauseType { key count percentage }
} }"""


async def test_distribution_counts_and_percentages(client, engine):
    now = utc_now()
    d = timedelta(days=1)
    await seed(
        engine,
        [
            inc(now - d, category="COST_ANOMALY", severity="HIGH", cause_type="SYSTEM"),
            inc(now - d, category="COST_ANOMALY", severity="LOW", cause_type="SYSTEM"),
            inc(now - d, category=None, severity="HIGH", cause_type="HUMAN"),
            inc(now - 100 * d, category="MANUAL"),
            inc(now - d, tenant="t2", category="MANUAL"),
        ],
    )
    body = await gql(client, DISTRIBUTION, {"w": 90})
    assert "errors" not in body, body
    assert body["data"]["incidentDistribution"] == {
        "windowDays": 90,
        "total": 3,
        "byCategory": [
            {"key": "COST_ANOMALY", "count": 2, "percentage": 66.67},
            {"key": "UNCATEGORIZED", "count": 1, "percentage": 33.33},
        ],
        "bySeverity": [
            {"key": "HIGH", "count": 2, "percentage": 66.67},
            {"key": "LOW", "count": 1, "percentage": 33.33},
        ],
        "byCauseType": [
            {"key": "SYSTEM", "count": 2, "percentage": 66.67},
            {"key": "HUMAN", "count": 1, "percentage": 33.33},
        ],
    }
    empty = await gql(client, DISTRIBUTION, {"w": 90}, tenant="nobody")
    assert empty["data"]["incidentDistribution"]["total"] == 0
    assert empty["data"]["incidentDistribution"]["byCategory"] == []


@pytest.mark.parametrize(
    ("_case", "query", "field"),
    [
        ("metrics_zero", "{ incidentMetrics(windowDays: 0) { total } }", "windowDays"),
        ("metrics_over", "{ incidentMetrics(windowDays: 366) { total } }", "windowDays"),
        ("cost_over", "{ incidentCostImpact(baselineDays: 91) { count } }", "baselineDays"),
        ("cost_limit", "{ incidentCostImpact(limit: 0) { count } }", "limit"),
        ("cost_limit_over", "{ incidentCostImpact(limit: 101) { count } }", "limit"),
        ("trend_over", "{ incidentTrend(windowDays: 366) { count } }", "windowDays"),
        ("trend_neg", "{ incidentTrend(windowDays: -1) { count } }", "windowDays"),
        ("dist_over", "{ incidentDistribution(windowDays: 400) { total } }", "windowDays"),
        ("cost_trend", "{ incidentCostTrend(windowDays: 0) { count } }", "windowDays"),
        ("patterns_h", "{ incidentPatterns(windowHours: 169) { incidentsAnalyzed } }",
         "windowHours"),
        ("patterns_h0", "{ incidentPatterns(windowHours: 0) { incidentsAnalyzed } }",
         "windowHours"),
        ("patterns_l", "{ incidentPatterns(limit: 0) { incidentsAnalyzed } }", "limit"),
        ("recur_b", "{ incidentRecurrence(baselineDays: 91) { totalRecurring } }",
         "baselineDays"),
        ("recur_t", "{ incidentRecurrence(threshold: 1) { totalRecurring } }", "threshold"),
        ("recur_l", "{ incidentRecurrence(limit: 101) { totalRecurring } }", "limit"),
        ("cat_b", '{ categoryLearnings(category: "X", baselineDays: 91) { category } }',
         "baselineDays"),
        ("cat_empty", '{ categoryLearnings(category: "") { category } }', "category"),
    ],
)  # fmt: skip
async def test_arguments_outside_their_caps_are_refused_before_sql(
    client, engine, count_statements, _case, query, field
):
    count_statements.reset()
    body = await gql(client, query)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == field
    assert count_statements.count == 0


async def test_caps_are_inclusive(client, engine):
    query = """{ incidentMetrics(windowDays: 365) { total }
      incidentCostImpact(baselineDays: 90, limit: 100) { count }
      incidentTrend(windowDays: 365, granularity: DAY) { count }
      incidentDistribution(windowDays: 365) { total }
      incidentCostTrend(windowDays: 365, granularity: MONTH) { count }
      incidentPatterns(windowHours: 168, limit: 100) { incidentsAnalyzed }
      incidentRecurrence(baselineDays: 90, threshold: 2, limit: 100) { totalRecurring }
      categoryLearnings(category: "X", baselineDays: 90) { totalIncidents } }"""
    body = await gql(client, query)
    assert "errors" not in body, body
    assert len(body["data"]["incidentTrend"]) in (366, 367)


ALL = """{
  incidentMetrics { total medianResolutionMs }
  incidentCostImpact { count totalCost }
  incidentTrend { count }
  incidentDistribution { total byCategory { key } }
  incidentCostTrend { totalCost }
  incidentPatterns { incidentsAnalyzed patterns { count confidence } }
  incidentRecurrence { totalRecurring groups { total } }
}"""


async def test_each_analytic_is_one_statement_whatever_the_row_count(
    client, engine, count_statements
):
    now = utc_now()

    async def fill(tenant: str, n: int) -> None:
        await seed(
            engine,
            [
                inc(
                    now - timedelta(hours=k),
                    tenant=tenant,
                    category=f"C{k % 4}",
                    resolved_after=MIN * (k + 1) if k % 2 else None,
                    cost_impact=f"{k}.25",
                )
                for k in range(n)
            ],
        )

    await fill("small", 3)
    await fill("large", 60)
    counts = {}
    for tenant in ("small", "large", "empty"):
        count_statements.reset()
        body = await gql(client, ALL, tenant=tenant)
        assert "errors" not in body, body
        counts[tenant] = count_statements.count
    # seven analytics, one statement each (a JWT needs no SQL)
    assert counts == {"small": 7, "large": 7, "empty": 7}
