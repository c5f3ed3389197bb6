"""The pure incident rules (DOMAIN.md §3.9-3.10): severity, titles, escalation, windows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drivers.rules import incidents as rules


@pytest.mark.parametrize(
    ("trigger", "severity"),
    [
        ("BUDGET_BREACH", "CRITICAL"),
        ("FAILURE_SPIKE", "HIGH"),
        ("RATE_LIMIT", "MEDIUM"),
        ("CONTENT_POLICY", "HIGH"),
        ("FREEZE", "CRITICAL"),
        ("POLICY_VIOLATION", "MEDIUM"),
        ("COST_SPIKE", "MEDIUM"),
        ("LLM_FAILURE", "MEDIUM"),
    ],
)
def test_initial_severity(trigger: str, severity: str) -> None:
    assert rules.initial_severity(trigger) == severity


@pytest.mark.parametrize(
    ("calls", "severity"),
    [
        (0, "LOW"),
        (9, "LOW"),
        (10, "MEDIUM"),
        (49, "MEDIUM"),
        (50, "HIGH"),
        (199, "HIGH"),
        (200, "CRITICAL"),
        (1000, "CRITICAL"),
    ],
)
def test_severity_for_calls_thresholds(calls: int, severity: str) -> None:
    assert rules.severity_for_calls(calls) == severity


@pytest.mark.parametrize(
    ("current", "calls", "expected"),
    [
        ("LOW", 9, None),
        ("LOW", 10, "MEDIUM"),
        ("MEDIUM", 10, None),
        ("MEDIUM", 49, None),
        ("MEDIUM", 50, "HIGH"),
        ("LOW", 50, "HIGH"),
        ("HIGH", 199, None),
        ("HIGH", 200, "CRITICAL"),
        ("CRITICAL", 1000, None),
        ("CRITICAL", 1, None),  # never downwards
        ("HIGH", 10, None),
    ],
)
def test_escalation_only_goes_up(current: str, calls: int, expected: str | None) -> None:
    assert rules.escalation(current, calls) == expected


@pytest.mark.parametrize(
    ("trigger", "value", "title"),
    [
        ("BUDGET_BREACH", "120%", "Budget limit exceeded: 120%"),
        ("FAILURE_SPIKE", "35%", "Failure rate spike detected: 35%"),
        ("RATE_LIMIT", "openai", "Rate limit triggered: openai"),
        ("CONTENT_POLICY", "pii", "Content policy violation: pii"),
        ("FREEZE", "all", "Traffic stopped: all"),
        ("COST_SPIKE", "x", "COST_SPIKE: x"),
        ("POLICY_VIOLATION", None, "POLICY_VIOLATION: "),
    ],
)
def test_titles(trigger: str, value: str | None, title: str) -> None:
    assert rules.title_for(trigger, value) == title


def test_titles_are_cut_to_255_characters() -> None:
    title = rules.title_for("BUDGET_BREACH", "x" * 500)
    assert len(title) == 255
    assert title.startswith("Budget limit exceeded: xxx")


def test_window_start_floors_to_300_seconds() -> None:
    assert rules.window_start(datetime(2026, 1, 1, 12, 4, 59, 999, UTC)) == datetime(
        2026, 1, 1, 12, 0, tzinfo=UTC
    )
    assert rules.window_start(datetime(2026, 1, 1, 12, 5, tzinfo=UTC)) == datetime(
        2026, 1, 1, 12, 5, tzinfo=UTC
    )
    assert rules.OVERFLOW_TRIGGER_VALUE == ">20 incidents/hour"


def test_recurrence_signature_v1_is_recomputable_and_groups_by_trigger_category_and_code():
    import hashlib  # noqa: PLC0415

    sig = rules.recurrence_signature("RUN_FAILURE", "EXECUTION_FAILURE", "AGENT_CRASH")
    text = "v1|RUN_FAILURE|EXECUTION_FAILURE|AGENT_CRASH"
    assert sig == hashlib.sha256(text.encode()).hexdigest()[:32]
    assert rules.SIGNATURE_VERSION == "v1"
    assert rules.recurrence_signature("BUDGET_BREACH", None, None) == rules.recurrence_signature(
        "BUDGET_BREACH", "UNCATEGORIZED", "-"
    )
    assert sig != rules.recurrence_signature("RUN_FAILURE", "EXECUTION_FAILURE", "STEP_FAILURE")
