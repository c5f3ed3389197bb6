"""Run outcome → incident rules (DOMAIN.md §3.13)."""

from __future__ import annotations

import pytest

from drivers.rules import runs as rules


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("SUCCEEDED", "SUCCESS"),
        ("FAILED", "FAILURE"),
        ("HALTED", "BLOCKED"),
        ("CANCELLED", "ABORTED"),
        ("QUEUED", None),
        ("RUNNING", None),
    ],
)
def test_outcome(status: str, outcome: str | None) -> None:
    assert rules.outcome_for(status) == outcome


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (None, "UNKNOWN"),
        ("", "UNKNOWN"),
        ("boom", "UNKNOWN"),
        ("execution_timeout after 60s", "EXECUTION_TIMEOUT"),
        # match order, not position: AGENT_CRASH comes before BUDGET_EXCEEDED in §2
        ("budget_exceeded then agent_crash", "AGENT_CRASH"),
        ("Rate_Limit_Exceeded by provider", "RATE_LIMIT_EXCEEDED"),
        ("RETRY_EXHAUSTED", "RETRY_EXHAUSTED"),
    ],
)
def test_error_code_first_match_in_declared_order(message: str | None, code: str) -> None:
    assert rules.error_code_for(message) == code


@pytest.mark.parametrize(
    ("message", "severity", "category", "title"),
    [
        ("AGENT_CRASH", "CRITICAL", "EXECUTION_FAILURE", "Agent Crash: Run abcdefgh..."),
        ("EXECUTION_TIMEOUT", "HIGH", "EXECUTION_FAILURE", "Execution Timeout: Run abcdefgh..."),
        ("STEP_FAILURE", "HIGH", "EXECUTION_FAILURE", "Step Failure: Run abcdefgh..."),
        ("SKILL_ERROR", "HIGH", "EXECUTION_FAILURE", "Skill Error: Run abcdefgh..."),
        ("BUDGET_EXCEEDED", "MEDIUM", "BUDGET_EXCEEDED", "Budget Exceeded: Run abcdefgh..."),
        ("RATE_LIMIT_EXCEEDED", "MEDIUM", "RATE_LIMIT", "Rate Limit Hit: Run abcdefgh..."),
        ("RESOURCE_EXHAUSTION", "MEDIUM", "RESOURCE_EXHAUSTION", "Run Failed: abcdefgh..."),
        ("RETRY_EXHAUSTED", "MEDIUM", "EXECUTION_FAILURE", "Run Failed: abcdefgh..."),
        ("CANCELLED", "LOW", "MANUAL", "Run Failed: abcdefgh..."),
        ("MANUAL_STOP", "LOW", "MANUAL", "Run Failed: abcdefgh..."),
        (None, "MEDIUM", "EXECUTION_FAILURE", "Run Failed: abcdefgh..."),
    ],
)
def test_run_incident_rule(message: str | None, severity: str, category: str, title: str) -> None:
    rule = rules.run_incident_rule("abcdefgh-1234", message)
    assert (rule.severity, rule.category, rule.title) == (severity, category, title)
    assert rule.description == f"Run abcdefgh-1234 failed with error: {rule.error_code}"


def test_proposal_titles_and_actions() -> None:
    code = rules.error_code_for("EXECUTION_TIMEOUT")
    assert rules.proposal_for(code, "HIGH", "inc_0123456789abcdef") == (
        "TIMEOUT_POLICY",
        "Auto: Timeout Policy (inc_01234567)",
        "ALERT",
    )
    crash = rules.error_code_for("AGENT_CRASH")
    assert rules.proposal_for(crash, "CRITICAL", "inc_x") == (
        "CRASH_RECOVERY_POLICY",
        "Auto: Crash Recovery Policy (inc_x)",
        "BLOCK",
    )
    assert rules.proposal_for(rules.error_code_for("SKILL_ERROR"), "HIGH", "i")[0] == (
        "FAILURE_PATTERN_POLICY"
    )
