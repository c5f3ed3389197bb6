"""Pure formulas of DOMAIN.md §3.18-3.20 (no database)."""

from __future__ import annotations

import pytest

from drivers.rules.patterns import (
    Insight,
    cascade_confidence,
    category_insights,
    cluster_confidence,
    format_duration,
    incident_insights,
    round2,
    spike_confidence,
)


@pytest.mark.parametrize(
    ("count", "expected"), [(3, 0.5), (4, 0.6), (7, 0.9), (8, 0.95), (12, 0.95), (100, 0.95)]
)
def test_cluster_confidence(count, expected):
    assert cluster_confidence(count) == expected


@pytest.mark.parametrize(
    ("severity", "count", "expected"),
    [
        ("CRITICAL", 3, 0.8),
        ("CRITICAL", 4, 0.85),
        ("CRITICAL", 6, 0.95),
        ("CRITICAL", 7, 0.98),
        ("CRITICAL", 50, 0.98),
        ("HIGH", 3, 0.7),
        ("HIGH", 4, 0.75),
        ("HIGH", 8, 0.95),
        ("HIGH", 9, 0.98),
    ],
)
def test_spike_confidence(severity, count, expected):
    assert spike_confidence(severity, count) == expected


@pytest.mark.parametrize(("count", "expected"), [(2, 0.75), (3, 0.85), (4, 0.95), (9, 0.95)])
def test_cascade_confidence(count, expected):
    assert cascade_confidence(count) == expected


def test_round2_is_half_up():
    assert round2(0.125) == 0.13
    assert round2(0.6 + 0.2 * (5 / 6)) == 0.77
    assert round2(0.7 + 0.2 * 0.8) == 0.86


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (150_000, "3 minutes"),
        (45 * 60_000, "45 minutes"),
        (59.4 * 60_000, "59 minutes"),
        (59.6 * 60_000, "1.0 hours"),
        (23.96 * 3_600_000, "1.0 days"),
        (60 * 60_000, "1.0 hours"),
        (82.5 * 60_000, "1.4 hours"),
        (23.94 * 3_600_000, "23.9 hours"),
        (24 * 3_600_000, "1.0 days"),
        (50 * 3_600_000, "2.1 days"),
    ],
)
def test_format_duration(ms, text):
    assert format_duration(ms) == text


def test_incident_insights_all_three():
    got = incident_insights(
        resolution_method="MANUAL",
        same_method_count=2,
        recovery_count=2,
        resolution_times_ms=[30 * 60_000, 60 * 60_000, 90 * 60_000, 150 * 60_000],
    )
    assert got == [
        Insight("RESPONSE", "Resolution method 'MANUAL' was used in 3 similar incidents", 0.7),
        Insight(
            "PREVENTION",
            "Recovery actions were attempted in 2 similar incidents; consider an automated "
            "recovery policy",
            0.76,
        ),
        Insight(
            "DETECTION", "Similar incidents took 1.4 hours on average to resolve (4 incidents)", 0.8
        ),
    ]


def test_incident_insights_caps_and_thresholds():
    capped = incident_insights(
        resolution_method="AUTO",
        same_method_count=5,
        recovery_count=6,
        resolution_times_ms=[60_000] * 6,
    )
    assert [(i.insight_type, i.confidence) for i in capped] == [
        ("RESPONSE", 0.9),
        ("PREVENTION", 0.85),
        ("DETECTION", 0.8),
    ]
    assert "1 minutes" in capped[2].description
    # below every threshold: no shared method, one recovery, one known time; unresolved
    assert (
        incident_insights(
            resolution_method="AUTO",
            same_method_count=0,
            recovery_count=1,
            resolution_times_ms=[1.0],
        )
        == []
    )
    assert (
        incident_insights(
            resolution_method=None, same_method_count=3, recovery_count=0, resolution_times_ms=[]
        )
        == []
    )


def test_category_insights_good_category():
    got = category_insights(
        category="EXECUTION_FAILURE",
        total=5,
        resolved=4,
        average_resolution_ms=4_950_000,
        recurrence_rate=1.0,
        top_method=("MANUAL", 3),
    )
    assert got == [
        Insight(
            "RESPONSE", "EXECUTION_FAILURE incidents are resolved reliably (80% resolved)", 0.86
        ),
        Insight(
            "RESPONSE",
            "Resolution method 'MANUAL' resolved 3 EXECUTION_FAILURE incidents; make it the "
            "standard runbook",
            0.75,
        ),
    ]


def test_category_insights_struggling_category():
    got = category_insights(
        category="RESOURCE_EXHAUSTION",
        total=6,
        resolved=1,
        average_resolution_ms=50 * 3_600_000,
        recurrence_rate=6.0,
        top_method=("MANUAL", 1),
    )
    assert [(i.insight_type, i.confidence) for i in got] == [
        ("RESPONSE", 0.77),
        ("RESPONSE", 0.85),
        ("PREVENTION", 0.9),
    ]
    assert got[0].description.startswith("Only 17% of RESOURCE_EXHAUSTION")
    assert "2.1 days" in got[1].description
    assert "recur 6.00 times a day" in got[2].description


@pytest.mark.parametrize(
    ("_case", "kwargs", "expected"),
    [
        ("fast", {"average_resolution_ms": 30 * 60_000}, [("RESPONSE", 0.75)]),
        ("slow_capped", {"average_resolution_ms": 40 * 3_600_000}, [("RESPONSE", 0.85)]),
        ("slow", {"average_resolution_ms": 25 * 3_600_000}, [("RESPONSE", 0.85)]),
        ("recurring", {"recurrence_rate": 3.0}, [("PREVENTION", 0.75)]),
        ("recurring_capped", {"recurrence_rate": 20.0}, [("PREVENTION", 0.9)]),
        ("exactly_two_a_day", {"recurrence_rate": 2.0}, []),
        ("method_8", {"top_method": ("AUTO", 8)}, [("RESPONSE", 0.9)]),
        ("method_2", {"top_method": ("AUTO", 2)}, []),
        ("half_resolved", {"total": 2, "resolved": 1}, []),
        ("none_resolved", {"total": 4, "resolved": 0}, [("RESPONSE", 0.8)]),
        ("all_resolved", {"total": 4, "resolved": 4}, [("RESPONSE", 0.9)]),
    ],
)
def test_category_insight_thresholds(_case, kwargs, expected):
    args = {
        "category": "X",
        "total": 0,
        "resolved": 0,
        "average_resolution_ms": None,
        "recurrence_rate": 0.0,
        "top_method": None,
    } | kwargs
    got = category_insights(**args)
    assert [(i.insight_type, i.confidence) for i in got] == expected
