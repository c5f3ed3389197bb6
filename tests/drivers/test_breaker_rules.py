"""The pure breaker rules (drivers/rules/breaker.py): transitions, texts, payloads, backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drivers.rules import breaker as rules

S = rules.BreakerSettings()
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("_case", "disabled", "failures", "score", "expected"),
    [
        ("first failure", False, 0, 0.21, (1, True, True, False, False)),
        ("third failure trips", False, 2, 0.9, (3, True, True, True, False)),
        ("threshold itself is good", False, 2, 0.2, (0, False, True, False, True)),
        ("good report resets", False, 2, 0.0, (0, False, True, False, False)),
        ("good report with no count", False, 0, 0.1, (0, False, False, False, False)),
        ("warning level", False, 0, 0.16, (0, False, False, False, True)),
        ("open never re-trips", True, 5, 0.9, (6, True, True, False, False)),
    ],
)
def test_drift_outcome(_case, disabled, failures, score, expected):
    out = rules.drift_outcome(
        disabled=disabled, consecutive_failures=failures, score=score, settings=S
    )
    assert (
        out.consecutive_failures,
        out.failed,
        out.counter_changed,
        out.trip,
        out.warning,
    ) == expected


def test_auto_disable_off_only_counts():
    s = rules.BreakerSettings(auto_disable=False)
    out = rules.drift_outcome(disabled=False, consecutive_failures=9, score=1.0, settings=s)
    assert (out.consecutive_failures, out.trip) == (10, False)


@pytest.mark.parametrize("score", [-0.01, 1.01, float("nan"), float("inf")])
def test_scores_outside_0_1_are_refused(score):
    assert not rules.check_score(score)


def test_reason_texts():
    assert rules.drift_reason(0.31234, 0.2) == "Drift exceeded threshold: 0.3123 > 0.2"
    assert rules.schema_error_reason(7, 5) == "Schema error threshold exceeded: 7 >= 5"


def test_schema_errors_trip_only_closed_at_threshold():
    assert rules.schema_errors_trip(disabled=False, count=5, settings=S)
    assert not rules.schema_errors_trip(disabled=False, count=4, settings=S)
    assert not rules.schema_errors_trip(disabled=True, count=50, settings=S)


def test_manual_disable_actions():
    assert rules.manual_disable_action(disabled=False, current_reason=None, reason="x") == "trip"
    assert rules.manual_disable_action(disabled=True, current_reason="x", reason="x") == "noop"
    assert rules.manual_disable_action(disabled=True, current_reason="y", reason="x") == "supersede"


def test_disabled_until_and_recovery():
    given = NOW + timedelta(hours=1)
    assert rules.disabled_until(NOW, given, S) == given
    assert rules.disabled_until(NOW, None, S) == NOW + timedelta(hours=24)
    assert rules.disabled_until(NOW, None, rules.BreakerSettings(disable_ttl_hours=0)) is None
    assert rules.recovery_due(disabled=True, until=NOW, now=NOW, settings=S)
    assert not rules.recovery_due(disabled=True, until=None, now=NOW, settings=S)
    assert not rules.recovery_due(disabled=True, until=given, now=NOW, settings=S)
    off = rules.BreakerSettings(auto_recover=False)
    assert not rules.recovery_due(disabled=True, until=NOW, now=NOW, settings=off)


def test_backoff_is_capped():
    assert [rules.backoff_seconds(a) for a in (1, 2, 3, 8, 9, 10, 50)] == [
        2,
        4,
        8,
        256,
        300,
        300,
        300,
    ]


def test_incident_id_is_12_chars_of_a_uuid():
    ids = {rules.new_incident_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 12 and i[8] == "-" for i in ids)


def test_payloads():
    s = rules.BreakerSettings(instance_id="gw-1", runbook_url="https://rb/x")
    [disable] = rules.disable_alert(
        tenant_id="t1",
        name="costsim_v2",
        incident_id="abc",
        severity="P1",
        reason="r",
        drift_score=0.5,
        sample_count=3,
        until=None,
        now=NOW,
        settings=s,
    )
    assert disable == {
        "labels": {
            "alertname": "CostSimV2Disabled",
            "severity": "p1",
            "component": "costsim",
            "circuit_breaker": "costsim_v2",
            "instance": "gw-1",
            "incident_id": "abc",
            "tenant_id": "t1",
        },
        "annotations": {
            "summary": "CostSim V2 circuit breaker tripped (P1)",
            "description": "Reason: r\nDrift score: 0.5000\nSample count: 3\n"
            "Disabled until: manual reset required",
            "runbook_url": "https://rb/x",
        },
        "startsAt": NOW.isoformat(),
    }
    [enable] = rules.enable_alert(
        tenant_id="t1", name="costsim_v2", enabled_by="bob", reason=None, now=NOW, settings=s
    )
    assert enable["labels"] == {
        "alertname": "CostSimV2Reenabled",
        "severity": "info",
        "component": "costsim",
        "circuit_breaker": "costsim_v2",
        "instance": "gw-1",
        "tenant_id": "t1",
    }
    assert enable["annotations"] == {
        "summary": "CostSim V2 circuit breaker re-enabled",
        "description": "Re-enabled by: bob\nReason: Not specified",
    }
    assert enable["startsAt"] == enable["endsAt"] == NOW.isoformat()
