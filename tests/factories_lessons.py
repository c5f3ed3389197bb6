"""Row builders for lessons, proposals, runs, steps and violations (branch `lessons`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

NOW = datetime.now(UTC)


def _id() -> str:
    return str(uuid.uuid4())


def lesson_row(tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "lesson_type": "FAILURE",
        "severity": "HIGH",
        "source_event_id": _id(),
        "source_event_type": "RUN",
        "title": "Failure: TIMEOUT",
        "description": "Run timed out",
        "status": "PENDING",
        "deferred_until": None,
        "created_at": NOW - timedelta(hours=1),
    }
    row.update(over)
    return row


def proposal_row(tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "title": "Policy from Lesson: Failure: TIMEOUT",
        "status": "DRAFT",
        "source_type": "LESSON",
        "source_id": _id(),
        "created_by": "bob",
    }
    row.update(over)
    return row


def run_row(tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "agent_id": "agent-7",
        "project_id": "proj-1",
        "status": "HALTED",
        "error_message": "Policy violation: max spend per step",
        "started_at": datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC),
        "completed_at": datetime(2026, 11, 20, 10, 2, 5, 500000, tzinfo=UTC),
        "estimated_cost_usd": Decimal("1.234567"),
    }
    row.update(over)
    return row


def step_row(run_id: str, index: int, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "step_index": index,
        "tenant_id": tenant,
        "step_type": "LLM_CALL",
        "tokens": 100 * (index + 1),
        "cost_cents": Decimal("1.2500") * (index + 1),
        "duration_ms": 250 * (index + 1),
        "status": "OK",
        "content_hash": f"{index:064x}",
        "created_at": datetime(2026, 11, 20, 10, 0, index, tzinfo=UTC),
    }
    row.update(over)
    return row


def violation_row(run_id: str, incident_id: str, tenant: str = "t1", **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _id(),
        "tenant_id": tenant,
        "run_id": run_id,
        "policy_id": "pol-spend-cap",
        "violated_rule": "max_step_cost",
        "severity": "HIGH",
        "incident_id": incident_id,
    }
    row.update(over)
    return row
