"""Patterns, recurrence and postmortem learnings over HTTP (DOMAIN.md §3.18-3.20)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.factories_analytics import day_start, evidence, inc, run, seed, utc_now
from tests.helpers import error_codes, gql

H = timedelta(hours=1)
D = timedelta(days=1)
MIN = timedelta(minutes=1)

PATTERNS = """query($h: Int, $l: Int) { incidentPatterns(windowHours: $h, limit: $l) {
  windowHours windowStart windowEnd incidentsAnalyzed
  patterns { patternType dimension count incidentIds confidence }
  categoryClusters { dimension }
  severitySpikes { dimension }
  cascadeFailures { dimension }
} }"""


def _pattern_rows() -> dict[str, list[dict[str, Any]]]:
    now = utc_now()
    return {
        # 12 LOOP_DETECTED in the window (2..13 h old) and one 30 h old
        "loop": [
            inc(now - (k + 2) * H, id=f"loop-{k:02d}", category="LOOP_DETECTED", severity="MEDIUM")
            for k in range(12)
        ],
        "loop_old": [inc(now - 30 * H, category="LOOP_DETECTED", severity="MEDIUM")],
        "rate": [inc(now - 3 * H, id=f"rate-{k}", category="RATE_LIMIT", severity="LOW")
                 for k in range(4)],
        "few": [inc(now - 3 * H, category="MANUAL", severity="LOW") for _ in range(2)],
        # spikes: OPEN and created in the last hour; the acknowledged and older ones do not count
        "critical": [inc(now - (10 + k) * MIN, id=f"crit-{k}", category=None, severity="CRITICAL")
                     for k in range(4)],
        "high": [inc(now - (20 + k) * MIN, id=f"high-{k}", category=None, severity="HIGH")
                 for k in range(3)],
        "not_spike": [
            inc(now - 5 * MIN, category=None, severity="CRITICAL", status="ACKNOWLEDGED",
                acknowledged_at=now - MIN),
            inc(now - 2 * H, category=None, severity="HIGH"),
            inc(now - 2 * H, category=None, severity="HIGH"),
        ],
        # cascades: 3 incidents of run-A, 2 of run-B, 1 of run-C
        "cascade": [
            inc(now - (5 + k) * H, id=f"casc-a{k}", category=None, severity="LOW",
                source_run_id="run-A") for k in range(3)
        ] + [
            inc(now - 6 * H, id=f"casc-b{k}", category=None, severity="LOW", source_run_id="run-B")
            for k in range(2)
        ] + [inc(now - 6 * H, category=None, severity="LOW", source_run_id="run-C")],
        "foreign": [inc(now - 2 * H, tenant="t2", category="LOOP_DETECTED", severity="CRITICAL")
                    for _ in range(5)],
    }  # fmt: skip


async def _seed_patterns(engine: Any) -> dict[str, list[dict[str, Any]]]:
    rows = _pattern_rows()
    await seed(
        engine,
        [r for group in rows.values() for r in group],
        runs=[run("run-A"), run("run-B"), run("run-C")],
    )
    return rows


async def test_pattern_report_with_confidences(client, engine):
    # given
    await _seed_patterns(engine)
    # when
    body = await gql(client, PATTERNS, {"h": 24, "l": 10}, role="VIEWER")
    # then
    assert "errors" not in body, body
    rep = body["data"]["incidentPatterns"]
    assert rep["windowHours"] == 24
    assert rep["incidentsAnalyzed"] == 12 + 4 + 2 + 4 + 3 + 3 + 6
    assert rep["patterns"] == [
        {"patternType": "CATEGORY_CLUSTER", "dimension": "LOOP_DETECTED", "count": 12,
         "incidentIds": [f"loop-{k:02d}" for k in range(10)], "confidence": 0.95},
        {"patternType": "CATEGORY_CLUSTER", "dimension": "RATE_LIMIT", "count": 4,
         "incidentIds": ["rate-3", "rate-2", "rate-1", "rate-0"], "confidence": 0.6},
        {"patternType": "SEVERITY_SPIKE", "dimension": "CRITICAL", "count": 4,
         "incidentIds": ["crit-0", "crit-1", "crit-2", "crit-3"], "confidence": 0.85},
        {"patternType": "SEVERITY_SPIKE", "dimension": "HIGH", "count": 3,
         "incidentIds": ["high-0", "high-1", "high-2"], "confidence": 0.7},
        {"patternType": "CASCADE_FAILURE", "dimension": "run-A", "count": 3,
         "incidentIds": ["casc-a0", "casc-a1", "casc-a2"], "confidence": 0.85},
        {"patternType": "CASCADE_FAILURE", "dimension": "run-B", "count": 2,
         "incidentIds": ["casc-b1", "casc-b0"], "confidence": 0.75},
    ]  # fmt: skip
    assert [p["dimension"] for p in rep["categoryClusters"]] == ["LOOP_DETECTED", "RATE_LIMIT"]
    assert [p["dimension"] for p in rep["severitySpikes"]] == ["CRITICAL", "HIGH"]
    assert [p["dimension"] for p in rep["cascadeFailures"]] == ["run-A", "run-B"]


async def test_pattern_window_and_limit(client, engine):
    await _seed_patterns(engine)
    wide = (await gql(client, PATTERNS, {"h": 48, "l": 1}))["data"]["incidentPatterns"]
    # limit 1 per pattern type; the 30 h old incident joins the cluster; spikes ignore the window
    assert [(p["patternType"], p["dimension"], p["count"]) for p in wide["patterns"]] == [
        ("CATEGORY_CLUSTER", "LOOP_DETECTED", 13),
        ("SEVERITY_SPIKE", "CRITICAL", 4),
        ("CASCADE_FAILURE", "run-A", 3),
    ]
    assert wide["incidentsAnalyzed"] == 35
    narrow = (await gql(client, PATTERNS, {"h": 1, "l": 10}))["data"]["incidentPatterns"]
    assert [p["patternType"] for p in narrow["patterns"]] == ["SEVERITY_SPIKE", "SEVERITY_SPIKE"]
    assert narrow["incidentsAnalyzed"] == 8


RECURRENCE = """query($b: Int, $t: Int, $l: Int) {
  incidentRecurrence(baselineDays: $b, threshold: $t, limit: $l) {
    baselineDays threshold totalRecurring
    groups { category resolutionMethod total distinctDays occurrencesPerDay
             firstOccurrence lastOccurrence recentIncidentIds }
  }
}"""


async def test_recurrence_groups(client, engine):
    # given
    today = day_start(utc_now())
    d2, d5, d1 = today - 2 * D, today - 5 * D, today - D
    rows = [
        inc(d5 + 10 * H, id="ef-1", category="EXECUTION_FAILURE", resolved_after=MIN, method="AUTO"),
        inc(d5 + 12 * H, id="ef-2", category="EXECUTION_FAILURE", resolved_after=MIN, method="AUTO"),
        inc(d2 + 10 * H, id="ef-3", category="EXECUTION_FAILURE", resolved_after=MIN, method="AUTO"),
        inc(d2 + 11 * H, id="ef-4", category="EXECUTION_FAILURE", resolved_after=MIN, method="AUTO"),
        inc(d1, id="ef-m1", category="EXECUTION_FAILURE", resolved_after=MIN),
        inc(d2, id="ef-m2", category="EXECUTION_FAILURE", resolved_after=MIN),
        inc(today - 3 * D, id="un-1", category=None),
        inc(today - 4 * D, id="un-2", category=None),
        inc(today - 6 * D, id="un-3", category=None),
        *[inc(d1 + k * H, id=f"co-{k}", category="COST_ANOMALY", resolved_after=MIN,
              method="ROLLBACK") for k in range(1, 8)],
        *[inc(today - 40 * D, category="MANUAL", resolved_after=MIN) for _ in range(6)],
        *[inc(d1, tenant="t2", category="COST_ANOMALY", resolved_after=MIN, method="ROLLBACK")
          for _ in range(5)],
    ]  # fmt: skip
    await seed(engine, rows)
    # when
    body = await gql(client, RECURRENCE, {"b": 30, "t": 3, "l": 20})
    # then
    assert "errors" not in body, body
    rep = body["data"]["incidentRecurrence"]
    assert (rep["baselineDays"], rep["threshold"], rep["totalRecurring"]) == (30, 3, 14)
    assert rep["groups"] == [
        {"category": "COST_ANOMALY", "resolutionMethod": "ROLLBACK", "total": 7,
         "distinctDays": 1, "occurrencesPerDay": 7.0,
         "firstOccurrence": (d1 + H).isoformat(), "lastOccurrence": (d1 + 7 * H).isoformat(),
         "recentIncidentIds": ["co-7", "co-6", "co-5", "co-4", "co-3"]},
        {"category": "EXECUTION_FAILURE", "resolutionMethod": "AUTO", "total": 4,
         "distinctDays": 2, "occurrencesPerDay": 2.0,
         "firstOccurrence": (d5 + 10 * H).isoformat(),
         "lastOccurrence": (d2 + 11 * H).isoformat(),
         "recentIncidentIds": ["ef-4", "ef-3", "ef-2", "ef-1"]},
        {"category": "UNCATEGORIZED", "resolutionMethod": None, "total": 3,
         "distinctDays": 3, "occurrencesPerDay": 1.0,
         "firstOccurrence": (today - 6 * D).isoformat(),
         "lastOccurrence": (today - 3 * D).isoformat(),
         "recentIncidentIds": ["un-1", "un-2", "un-3"]},
    ]  # fmt: skip
    two = (await gql(client, RECURRENCE, {"b": 30, "t": 2, "l": 2}))["data"]["incidentRecurrence"]
    assert [(g["category"], g["total"]) for g in two["groups"]] == [
        ("COST_ANOMALY", 7),
        ("EXECUTION_FAILURE", 4),
    ]
    assert two["totalRecurring"] == 11
    lower = (await gql(client, RECURRENCE, {"b": 30, "t": 2, "l": 20}))["data"]
    assert [g["total"] for g in lower["incidentRecurrence"]["groups"]] == [7, 4, 3, 2]
    wide = (await gql(client, RECURRENCE, {"b": 90, "t": 3, "l": 20}))["data"]
    assert [g["total"] for g in wide["incidentRecurrence"]["groups"]] == [7, 6, 4, 3]


LEARNINGS = """query($id: ID!) { incidentLearnings(incidentId: $id) {
  incidentId
  summary { title category severity status resolutionMethod timeToResolutionMs evidenceCount
            recoveryAttempted }
  similarIncidents { id resolutionMethod timeToResolutionMs recoveryAttempted }
  insights { insightType description confidence }
} }"""

CATEGORY = """query($c: String!, $b: Int) { categoryLearnings(category: $c, baselineDays: $b) {
  category baselineDays totalIncidents resolvedCount resolutionRate averageResolutionMs
  recurrenceRate topResolutionMethods { resolutionMethod count }
  recurrence { category resolutionMethod total distinctDays }
  insights { insightType description confidence }
} }"""


async def _seed_learnings(engine: Any) -> None:
    base = day_start(utc_now()) - 10 * D
    ef = "EXECUTION_FAILURE"
    rows = [
        inc(base, id="x", category=ef, title="Step failed", severity="HIGH",
            resolved_after=30 * MIN),
        inc(base + D, id="s1", category=ef, resolved_after=60 * MIN),
        inc(base + 2 * D, id="s2", category=ef, resolved_after=90 * MIN),
        inc(base + 3 * D, id="s3", category=ef, resolved_after=150 * MIN, method="AUTO"),
        inc(base + 4 * D, id="open", category=ef),
        inc(base + 4 * D, id="other", category="MANUAL", resolved_after=MIN),
        inc(base + 4 * D, id="foreign", tenant="t2", category=ef, resolved_after=MIN),
        *[inc(base + 7 * D + k * H, id=f"re-{k}", category="RESOURCE_EXHAUSTION",
              resolved_after=50 * H if k == 0 else None) for k in range(6)],
    ]  # fmt: skip
    await seed(
        engine,
        rows,
        evidence_rows=[
            evidence("x"),
            evidence("x", recovery=True),
            evidence("s3", recovery=True),
            evidence("foreign", tenant="t2", recovery=True),
        ],
    )


async def test_incident_learnings(client, engine):
    await _seed_learnings(engine)
    body = await gql(client, LEARNINGS, {"id": "x"}, role="VIEWER")
    assert "errors" not in body, body
    assert body["data"]["incidentLearnings"] == {
        "incidentId": "x",
        "summary": {
            "title": "Step failed",
            "category": "EXECUTION_FAILURE",
            "severity": "HIGH",
            "status": "RESOLVED",
            "resolutionMethod": "MANUAL",
            "timeToResolutionMs": 1_800_000.0,
            "evidenceCount": 2,
            "recoveryAttempted": True,
        },
        "similarIncidents": [
            {"id": "s3", "resolutionMethod": "AUTO", "timeToResolutionMs": 9_000_000.0,
             "recoveryAttempted": True},
            {"id": "s2", "resolutionMethod": "MANUAL", "timeToResolutionMs": 5_400_000.0,
             "recoveryAttempted": False},
            {"id": "s1", "resolutionMethod": "MANUAL", "timeToResolutionMs": 3_600_000.0,
             "recoveryAttempted": False},
        ],
        "insights": [
            {"insightType": "RESPONSE", "confidence": 0.7,
             "description": "Resolution method 'MANUAL' was used in 3 similar incidents"},
            {"insightType": "PREVENTION", "confidence": 0.76,
             "description": "Recovery actions were attempted in 2 similar incidents; consider "
                            "an automated recovery policy"},
            {"insightType": "DETECTION", "confidence": 0.8,
             "description": "Similar incidents took 1.4 hours on average to resolve "
                            "(4 incidents)"},
        ],
    }  # fmt: skip


async def test_learnings_of_an_open_incident_and_of_foreign_ids(client, engine):
    await _seed_learnings(engine)
    body = await gql(client, LEARNINGS, {"id": "open"})
    got = body["data"]["incidentLearnings"]
    assert got["summary"]["resolutionMethod"] is None
    assert got["summary"]["timeToResolutionMs"] is None
    assert [s["id"] for s in got["similarIncidents"]] == ["s3", "s2", "s1", "x"]
    # no method of its own: no RESPONSE; recovery in 2 (x, s3); 4 known times
    assert [i["insightType"] for i in got["insights"]] == ["PREVENTION", "DETECTION"]
    for missing in ("foreign", "nope"):
        body = await gql(client, LEARNINGS, {"id": missing})
        assert error_codes(body) == ["NOT_FOUND"], body
        assert body["data"] is None


async def test_similar_incidents_are_at_most_five(client, engine):
    now = utc_now()
    await seed(
        engine,
        [inc(now - k * H, id=f"m-{k}", category="MANUAL", resolved_after=MIN) for k in range(1, 9)],
    )
    body = await gql(client, LEARNINGS, {"id": "m-8"})
    ids = [s["id"] for s in body["data"]["incidentLearnings"]["similarIncidents"]]
    assert ids == ["m-1", "m-2", "m-3", "m-4", "m-5"]


async def test_category_learnings(client, engine):
    await _seed_learnings(engine)
    body = await gql(client, CATEGORY, {"c": "EXECUTION_FAILURE", "b": 30})
    assert "errors" not in body, body
    assert body["data"]["categoryLearnings"] == {
        "category": "EXECUTION_FAILURE",
        "baselineDays": 30,
        "totalIncidents": 5,
        "resolvedCount": 4,
        "resolutionRate": 0.8,
        "averageResolutionMs": 4_950_000.0,
        "recurrenceRate": 1.0,
        "topResolutionMethods": [
            {"resolutionMethod": "MANUAL", "count": 3},
            {"resolutionMethod": "AUTO", "count": 1},
        ],
        "recurrence": {"category": "EXECUTION_FAILURE", "resolutionMethod": "MANUAL",
                       "total": 3, "distinctDays": 3},
        "insights": [
            {"insightType": "RESPONSE", "confidence": 0.86,
             "description": "EXECUTION_FAILURE incidents are resolved reliably (80% resolved)"},
            {"insightType": "RESPONSE", "confidence": 0.75,
             "description": "Resolution method 'MANUAL' resolved 3 EXECUTION_FAILURE incidents; "
                            "make it the standard runbook"},
        ],
    }  # fmt: skip
    body = await gql(client, CATEGORY, {"c": "RESOURCE_EXHAUSTION", "b": 30})
    got = body["data"]["categoryLearnings"]
    assert (got["totalIncidents"], got["resolvedCount"], got["resolutionRate"]) == (6, 1, 0.17)
    assert got["averageResolutionMs"] == 180_000_000.0
    assert got["recurrenceRate"] == 6.0
    assert [(i["insightType"], i["confidence"]) for i in got["insights"]] == [
        ("RESPONSE", 0.77),
        ("RESPONSE", 0.85),
        ("PREVENTION", 0.9),
    ]
    assert got["recurrence"] == {"category": "RESOURCE_EXHAUSTION", "resolutionMethod": None,
                                 "total": 5, "distinctDays": 1}  # fmt: skip


async def test_category_learnings_of_an_unknown_or_null_category(client, engine):
    now = utc_now()
    await seed(engine, [inc(now - H, category=None), inc(now - 2 * H, category=None)])
    unknown = (await gql(client, CATEGORY, {"c": "NOPE"}))["data"]["categoryLearnings"]
    assert unknown == {
        "category": "NOPE",
        "baselineDays": 30,
        "totalIncidents": 0,
        "resolvedCount": 0,
        "resolutionRate": 0.0,
        "averageResolutionMs": None,
        "recurrenceRate": 0.0,
        "topResolutionMethods": [],
        "recurrence": None,
        "insights": [],
    }
    null = (await gql(client, CATEGORY, {"c": "UNCATEGORIZED"}))["data"]["categoryLearnings"]
    assert null["totalIncidents"] == 2
    # another tenant sees none of them
    other = await gql(client, CATEGORY, {"c": "UNCATEGORIZED"}, tenant="t2")
    assert other["data"]["categoryLearnings"]["totalIncidents"] == 0


async def test_learnings_statement_counts_do_not_grow(client, engine, count_statements):
    now = utc_now()
    for tenant, n in (("small", 2), ("large", 40)):
        await seed(
            engine,
            [
                inc(now - k * H, id=f"{tenant}-{k}", tenant=tenant, category="MANUAL",
                    resolved_after=MIN, source_run_id=None)
                for k in range(n)
            ],
            evidence_rows=[evidence(f"{tenant}-{k}", tenant=tenant, recovery=True)
                           for k in range(n)],
        )  # fmt: skip
    counts = {}
    for tenant in ("small", "large"):
        count_statements.reset()
        one = await gql(client, LEARNINGS, {"id": f"{tenant}-0"}, tenant=tenant)
        assert "errors" not in one, one
        learn = count_statements.count
        count_statements.reset()
        cat = await gql(client, CATEGORY, {"c": "MANUAL"}, tenant=tenant)
        assert "errors" not in cat, cat
        patterns = await gql(client, PATTERNS, {"h": 24, "l": 10}, tenant=tenant)
        assert "errors" not in patterns, patterns
        counts[tenant] = (learn, count_statements.count)
    # summary + similar; category stats + methods + largest group, then one for patterns
    assert counts == {"small": (2, 4), "large": (2, 4)}
