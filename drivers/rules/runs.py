"""Run outcome → incident rules (DOMAIN.md §3.13): outcome, error code, severity, titles."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.enums import PolicyEvaluationOutcome, RunErrorCode, RunOutcome

__all__ = [
    "PolicyEvaluation",
    "RunIncidentRule",
    "error_code_for",
    "outcome_for",
    "policy_evaluation",
    "proposal_for",
    "run_incident_rule",
]

_E = RunErrorCode

_OUTCOMES = {
    "SUCCEEDED": RunOutcome.SUCCESS,
    "FAILED": RunOutcome.FAILURE,
    "HALTED": RunOutcome.BLOCKED,
    "CANCELLED": RunOutcome.ABORTED,
}

_SEVERITY = {
    _E.AGENT_CRASH: "CRITICAL",
    _E.EXECUTION_TIMEOUT: "HIGH",
    _E.STEP_FAILURE: "HIGH",
    _E.SKILL_ERROR: "HIGH",
    _E.CANCELLED: "LOW",
    _E.MANUAL_STOP: "LOW",
}  # every other code: MEDIUM

_CATEGORY = {
    _E.BUDGET_EXCEEDED: "BUDGET_EXCEEDED",
    _E.RATE_LIMIT_EXCEEDED: "RATE_LIMIT",
    _E.RESOURCE_EXHAUSTION: "RESOURCE_EXHAUSTION",
    _E.CANCELLED: "MANUAL",
    _E.MANUAL_STOP: "MANUAL",
}  # every other code: EXECUTION_FAILURE

_TITLE = {
    _E.EXECUTION_TIMEOUT: "Execution Timeout",
    _E.AGENT_CRASH: "Agent Crash",
    _E.BUDGET_EXCEEDED: "Budget Exceeded",
    _E.RATE_LIMIT_EXCEEDED: "Rate Limit Hit",
    _E.STEP_FAILURE: "Step Failure",
    _E.SKILL_ERROR: "Skill Error",
}

_PROPOSAL = {
    _E.EXECUTION_TIMEOUT: "TIMEOUT_POLICY",
    _E.AGENT_CRASH: "CRASH_RECOVERY_POLICY",
    _E.BUDGET_EXCEEDED: "COST_CAP_POLICY",
    _E.RATE_LIMIT_EXCEEDED: "RATE_LIMIT_POLICY",
    _E.STEP_FAILURE: "RETRY_POLICY",
}  # every other code: FAILURE_PATTERN_POLICY


def outcome_for(status: str) -> RunOutcome | None:
    """The outcome of a terminal run; None while it is QUEUED or RUNNING."""
    return _OUTCOMES.get(status)


def error_code_for(error_message: str | None) -> RunErrorCode:
    """The first code (in declaration order) found in the upper-cased message, else UNKNOWN."""
    upper = (error_message or "").upper()
    return next((code for code in RunErrorCode if code in upper), RunErrorCode.UNKNOWN)


@dataclass(frozen=True, slots=True)
class RunIncidentRule:
    error_code: RunErrorCode
    severity: str
    category: str
    title: str
    description: str


def run_incident_rule(run_id: str, error_message: str | None) -> RunIncidentRule:
    """Severity, category, title and description of a failed run's incident."""
    code = error_code_for(error_message)
    r8 = run_id[:8]
    prefix = _TITLE.get(code)
    title = f"{prefix}: Run {r8}..." if prefix else f"Run Failed: {r8}..."
    return RunIncidentRule(
        error_code=code,
        severity=_SEVERITY.get(code, "MEDIUM"),
        category=_CATEGORY.get(code, "EXECUTION_FAILURE"),
        title=title,
        description=f"Run {run_id} failed with error: {code}",
    )


def proposal_for(code: RunErrorCode, severity: str, incident_id: str) -> tuple[str, str, str]:
    """(proposal type, title, suggested action) for a HIGH/CRITICAL run incident."""
    kind = _PROPOSAL.get(code, "FAILURE_PATTERN_POLICY")
    type_title = kind.replace("_", " ").title()
    action = "BLOCK" if severity == "CRITICAL" else "ALERT"
    return kind, f"Auto: {type_title} ({incident_id[:12]})", action


@dataclass(frozen=True, slots=True)
class PolicyEvaluation:
    evaluation_id: str
    outcome: PolicyEvaluationOutcome
    confidence: float


_P = PolicyEvaluationOutcome
_BY_STATUS = {"SUCCEEDED": _P.NO_VIOLATION, "FAILED": _P.NOT_APPLICABLE, "HALTED": _P.ADVISORY}


def policy_evaluation(run_id: str, status: str, *, has_violation: bool) -> PolicyEvaluation:
    """§3.13: VIOLATION_INCIDENT with a violation row, else by status; confidence 1.0 or 0.0."""
    outcome = _P.VIOLATION_INCIDENT if has_violation else _BY_STATUS.get(status, _P.NOT_APPLICABLE)
    confident = outcome in (_P.NO_VIOLATION, _P.VIOLATION_INCIDENT)
    return PolicyEvaluation(f"policy_eval_{run_id[:8]}", outcome, 1.0 if confident else 0.0)
