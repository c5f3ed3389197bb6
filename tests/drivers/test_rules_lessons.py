"""The pure lesson rules of DOMAIN.md §3.16: band edges, titles, actions, state machine."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drivers.rules import lessons as rules


@pytest.mark.parametrize(
    ("_case", "utilization", "band"),
    [
        ("just below the floor", "84.99", None),
        ("zero", "0", None),
        ("exactly 85", "85", "85-90"),
        ("just below 90", "89.99", "85-90"),
        ("exactly 90", "90", "90-95"),
        ("just below 95", "94.999", "90-95"),
        ("exactly 95", "95", "95-100"),
        ("exactly 100", "100", "95-100"),
        ("over 100", "137.5", "95-100"),
    ],
)
def test_threshold_band(_case: str, utilization: str, band: str | None) -> None:
    assert rules.threshold_band(Decimal(utilization)) == band


def test_below_85_makes_no_near_threshold_lesson() -> None:
    draft = rules.near_threshold_draft(
        threshold_type="COST",
        utilization=Decimal("84.9"),
        current_value=None,
        threshold_value=None,
        description=None,
    )
    assert draft is None


@pytest.mark.parametrize(
    ("_case", "utilization", "title", "early"),
    [
        ("floor, 76.5 rounds half up", "85", "Near-Threshold: COST at 85.0%", "77"),
        ("1 dp rounds half up", "87.25", "Near-Threshold: COST at 87.3%", "79"),
        ("0.9 x 92.2 = 82.98", "92.2", "Near-Threshold: COST at 92.2%", "83"),
        ("over 100", "120", "Near-Threshold: COST at 120.0%", "108"),
    ],
)
def test_near_threshold_title_and_action(
    _case: str, utilization: str, title: str, early: str
) -> None:
    draft = rules.near_threshold_draft(
        threshold_type="COST",
        utilization=Decimal(utilization),
        current_value=Decimal("92.2"),
        threshold_value=Decimal("100"),
        description=None,
    )
    assert draft is not None
    assert draft.title == title
    assert draft.severity is None
    assert draft.proposed_action == (
        f"Consider creating a warning policy for COST at {early}% threshold to provide "
        "earlier alerts."
    )
    assert draft.detected_pattern == {
        "threshold_type": "COST",
        "threshold_band": rules.threshold_band(Decimal(utilization)),
        "utilization_percent": float(utilization),
        "current_value": "92.2",
        "threshold_value": "100",
    }


@pytest.mark.parametrize(
    ("_case", "severity", "policy"),
    [
        ("critical blocks", "CRITICAL", "blocking"),
        ("high blocks", "HIGH", "blocking"),
        ("medium warns", "MEDIUM", "warning"),
        ("low warns", "LOW", "warning"),
        ("none warns", "NONE", "warning"),
        ("missing warns", None, "warning"),
    ],
)
def test_failure_action_depends_on_severity(_case: str, severity: str | None, policy: str) -> None:
    draft = rules.failure_draft(error_code="E42", severity=severity, description=None)
    assert draft.title == "Failure: E42"
    assert draft.severity == severity
    assert draft.detected_pattern == {"error_code": "E42", "severity": severity}
    expected = {
        "blocking": "Consider creating a blocking policy to prevent similar failures. ",
        "warning": "Consider creating a warning policy to flag similar patterns. ",
    }[policy]
    assert draft.proposed_action == expected + "Error code: E42."


def test_failure_without_error_code() -> None:
    draft = rules.failure_draft(error_code=None, severity="HIGH", description="boom")
    assert draft.title == "Failure: Unknown Error"
    assert draft.description == "boom"
    assert draft.proposed_action is not None
    assert draft.proposed_action.endswith("Error code: unknown.")
    assert draft.detected_pattern == {"error_code": None, "severity": "HIGH"}


def test_critical_success() -> None:
    draft = rules.critical_success_draft(success_type="ZERO_DOWNTIME_ROLLBACK", description=None)
    assert draft.title == "Critical Success: ZERO_DOWNTIME_ROLLBACK"
    assert draft.severity == "NONE"
    assert draft.proposed_action is None
    assert draft.detected_pattern == {"success_type": "ZERO_DOWNTIME_ROLLBACK"}


def test_state_machine_sources() -> None:
    assert {
        a: rules.allowed_from(a).value for a in ("convert", "defer", "dismiss", "reactivate")
    } == {
        "convert": "PENDING",
        "defer": "PENDING",
        "dismiss": "PENDING",
        "reactivate": "DEFERRED",
    }
