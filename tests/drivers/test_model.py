"""The database itself enforces the model's rules, whoever writes (DOMAIN.md §1)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables as t
from drivers.enums import IncidentSeverity, LimitCategory
from drivers.errors import CheckViolation, UniqueViolation, map_db_errors
from tests.factories import incident_row, integrity_row, limit_row, override_row

NOW = datetime.now(UTC)


def _id() -> str:
    return str(uuid.uuid4())


async def _insert(engine: AsyncEngine, table: sa.Table, *rows: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.insert(table), list(rows))


async def _execute(engine: AsyncEngine, *statements: sa.Executable) -> None:
    """Run statements in one transaction, translating database errors like the drivers do."""
    with map_db_errors():
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(statement)


async def _count(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


# --- enum and state CHECKs ----------------------------------------------------------------------


async def test_enum_check_rejects_an_unknown_string(engine):
    with pytest.raises(CheckViolation) as caught:
        await _execute(engine, sa.insert(t.incidents).values(**incident_row(severity="SEVERE")))
    assert caught.value.constraint == "ck_incidents_severity"


async def test_enum_check_accepts_every_member(engine):
    rows = [incident_row(severity=s) for s in IncidentSeverity]
    await _execute(engine, sa.insert(t.incidents).values(rows))
    assert await _count(engine, t.incidents) == len(IncidentSeverity)


async def test_nullable_enum_column_accepts_null_but_not_junk(engine):
    await _execute(engine, sa.insert(t.incidents).values(**incident_row(resolution_method=None)))
    with pytest.raises(CheckViolation) as caught:
        await _execute(engine, sa.insert(t.incidents).values(**incident_row(auto_action="PANIC")))
    assert caught.value.constraint == "ck_incidents_auto_action"


async def test_enum_checks_are_case_sensitive(engine):
    row = limit_row(limit_category=LimitCategory.BUDGET.lower())
    with pytest.raises(CheckViolation) as caught:
        await _execute(engine, sa.insert(t.limits).values(**row))
    assert caught.value.constraint == "ck_limits_limit_category"


@pytest.mark.parametrize(
    ("status", "fields", "constraint"),
    [
        ("ACKNOWLEDGED", {}, "ck_incidents_acknowledged_fields"),
        (
            "RESOLVED",
            {"resolved_at": NOW, "ended_at": NOW},
            "ck_incidents_resolved_fields",
        ),
        (
            "RESOLVED",
            {"resolved_at": NOW, "resolution_method": "MANUAL"},
            "ck_incidents_resolved_fields",
        ),
    ],
)
async def test_incident_status_requires_its_fields(engine, status, fields, constraint):
    with pytest.raises(CheckViolation) as caught:
        await _execute(
            engine, sa.insert(t.incidents).values(**incident_row(status=status, **fields))
        )
    assert caught.value.constraint == constraint


async def test_incident_status_with_its_fields_is_accepted(engine):
    await _execute(
        engine,
        sa.insert(t.incidents).values(**incident_row(status="ACKNOWLEDGED", acknowledged_at=NOW)),
        sa.insert(t.incidents).values(
            **incident_row(
                status="RESOLVED", resolved_at=NOW, ended_at=NOW, resolution_method="AUTO"
            )
        ),
    )


@pytest.mark.parametrize(
    ("over", "constraint"),
    [
        ({"max_value": Decimal(0)}, "ck_limits_max_value_positive"),
        ({"window_seconds": 0}, "ck_limits_window_seconds_positive"),
    ],
)
async def test_limit_value_checks(engine, over, constraint):
    row = limit_row(**over)
    with pytest.raises(CheckViolation) as caught:
        await _execute(
            engine,
            sa.insert(t.limits).values(**row),
            sa.insert(t.limit_integrity).values(**integrity_row(row["id"])),
        )
    assert caught.value.constraint == constraint


async def test_integrity_score_must_be_between_0_and_1(engine):
    row = limit_row()
    bad = {**integrity_row(row["id"]), "integrity_score": Decimal("1.0001")}
    with pytest.raises(CheckViolation) as caught:
        await _execute(
            engine, sa.insert(t.limits).values(**row), sa.insert(t.limit_integrity).values(**bad)
        )
    assert caught.value.constraint == "ck_limit_integrity_integrity_score_range"


async def test_override_value_must_be_positive(engine):
    limit = limit_row()
    await _execute(
        engine,
        sa.insert(t.limits).values(**limit),
        sa.insert(t.limit_integrity).values(**integrity_row(limit["id"])),
    )
    with pytest.raises(CheckViolation) as caught:
        await _execute(
            engine,
            sa.insert(t.limit_overrides).values(
                **override_row(limit["id"], override_value=Decimal(0))
            ),
        )
    assert caught.value.constraint == "ck_limit_overrides_override_value_positive"


def _scope_row(incident_id: str, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant_id": "t1",
        "incident_id": incident_id,
        "allowed_actions": ["RETRY"],
        "intent": f"Recovery action for incident {incident_id}",
        "created_by": "alice",
        "expires_at": NOW + timedelta(minutes=5),
    }
    row.update(over)
    return row


@pytest.mark.parametrize(
    ("over", "constraint"),
    [
        ({"attempts_used": 2, "max_attempts": 1}, "ck_execution_scopes_attempts_within_max"),
        ({"cost_used_usd": Decimal("0.51")}, "ck_execution_scopes_cost_within_max"),
    ],
)
async def test_execution_scope_budget_checks(engine, over, constraint):
    incident = incident_row()
    await _insert(engine, t.incidents, incident)
    with pytest.raises(CheckViolation) as caught:
        await _execute(
            engine, sa.insert(t.execution_scopes).values(**_scope_row(incident["id"], **over))
        )
    assert caught.value.constraint == constraint


# --- server defaults ----------------------------------------------------------------------------


async def test_server_defaults_fill_ids_and_domain_defaults(engine):
    incident = incident_row()
    del incident["id"]
    async with engine.begin() as conn:
        inserted = (
            await conn.execute(sa.insert(t.incidents).values(**incident).returning(t.incidents))
        ).one()
        scope = (
            await conn.execute(
                sa.insert(t.execution_scopes)
                .values(**_scope_row(inserted.id))
                .returning(t.execution_scopes)
            )
        ).one()
        breaker_incident = (
            await conn.execute(
                sa.insert(t.breaker_incidents)
                .values(
                    tenant_id="t1", circuit_breaker_name="costsim_v2", reason="r", severity="P1"
                )
                .returning(t.breaker_incidents.c.id)
            )
        ).scalar_one()
    assert str(uuid.UUID(inserted.id)) == inserted.id
    assert (inserted.related_call_ids, inserted.calls_affected, inserted.affected_count) == (
        [],
        0,
        1,
    )
    assert inserted.cost_delta_cents == Decimal(0)
    assert inserted.escalated is False
    assert re.fullmatch(r"scope_[0-9a-f]{24}", scope.id)
    assert (scope.max_cost_usd, scope.max_attempts, scope.status) == (Decimal("0.5"), 1, "ACTIVE")
    assert scope.executions == []
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{3}", breaker_incident)


# --- §1.2 limit integrity -----------------------------------------------------------------------

INTEGRITY_MESSAGE = "ACTIVE limit {} must have exactly one integrity row"


async def test_active_limit_without_integrity_row_fails_at_commit(engine):
    row = limit_row()
    with pytest.raises(
        CheckViolation, match=re.escape(INTEGRITY_MESSAGE.format(row["id"]))
    ) as caught:
        await _execute(engine, sa.insert(t.limits).values(**row))
    assert caught.value.constraint == "limit_integrity_required"
    assert await _count(engine, t.limits) == 0


async def test_active_limit_with_integrity_row_commits(engine):
    row = limit_row()
    await _execute(
        engine,
        sa.insert(t.limits).values(**row),
        sa.insert(t.limit_integrity).values(**integrity_row(row["id"])),
    )
    assert await _count(engine, t.limits) == 1


async def test_integrity_check_is_deferred_to_commit_not_statement(engine):
    # The row is checked at COMMIT, so a limit may be inserted before its integrity row.
    row = limit_row()
    async with engine.begin() as conn:
        await conn.execute(sa.insert(t.limits).values(**row))
        assert (await conn.execute(sa.select(sa.func.count()).select_from(t.limits))).scalar() == 1
        await conn.execute(sa.insert(t.limit_integrity).values(**integrity_row(row["id"])))


async def test_disabled_limit_needs_no_integrity_row(engine):
    await _execute(engine, sa.insert(t.limits).values(**limit_row(status="DISABLED")))


async def test_deleting_the_integrity_row_of_an_active_limit_fails_at_commit(engine):
    row = limit_row()
    await _execute(
        engine,
        sa.insert(t.limits).values(**row),
        sa.insert(t.limit_integrity).values(**integrity_row(row["id"])),
    )
    with pytest.raises(CheckViolation, match=re.escape(INTEGRITY_MESSAGE.format(row["id"]))):
        await _execute(
            engine, sa.delete(t.limit_integrity).where(t.limit_integrity.c.limit_id == row["id"])
        )
    assert await _count(engine, t.limit_integrity) == 1


async def test_reactivating_a_limit_without_integrity_row_fails(engine):
    row = limit_row(status="DISABLED")
    await _execute(engine, sa.insert(t.limits).values(**row))
    with pytest.raises(CheckViolation, match=re.escape(INTEGRITY_MESSAGE.format(row["id"]))):
        await _execute(
            engine, sa.update(t.limits).where(t.limits.c.id == row["id"]).values(status="ACTIVE")
        )


async def test_moving_the_integrity_row_to_another_limit_fails(engine):
    first, second = limit_row(), limit_row(status="DISABLED")
    await _execute(
        engine,
        sa.insert(t.limits).values([first, second]),
        sa.insert(t.limit_integrity).values(**integrity_row(first["id"])),
    )
    with pytest.raises(CheckViolation, match=re.escape(INTEGRITY_MESSAGE.format(first["id"]))):
        await _execute(
            engine,
            sa.update(t.limit_integrity)
            .where(t.limit_integrity.c.limit_id == first["id"])
            .values(limit_id=second["id"]),
        )


async def test_deleting_a_disabled_limits_integrity_row_or_the_limit_itself_is_allowed(engine):
    active, disabled = limit_row(), limit_row(status="DISABLED")
    await _execute(
        engine,
        sa.insert(t.limits).values([active, disabled]),
        sa.insert(t.limit_integrity).values(
            [integrity_row(active["id"]), integrity_row(disabled["id"])]
        ),
    )
    await _execute(
        engine,
        sa.delete(t.limit_integrity).where(t.limit_integrity.c.limit_id == disabled["id"]),
        # Deleting the limit cascades to its integrity row; nothing is left to check.
        sa.delete(t.limits).where(t.limits.c.id == active["id"]),
    )
    assert await _count(engine, t.limit_integrity) == 0


async def test_second_integrity_row_for_a_limit_is_rejected(engine):
    row = limit_row()
    with pytest.raises(UniqueViolation) as caught:
        await _execute(
            engine,
            sa.insert(t.limits).values(**row),
            sa.insert(t.limit_integrity).values(
                [integrity_row(row["id"]), integrity_row(row["id"])]
            ),
        )
    assert caught.value.constraint == "uq_limit_integrity_limit_id"


# --- append-only and immutable tables -----------------------------------------------------------


def _audit_row(**over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant_id": "t1",
        "actor": "alice",
        "actor_role": "ADMIN",
        "operation": "acknowledgeIncident",
        "entity_type": "incidents",
        "entity_id": _id(),
        "after": {"status": "ACKNOWLEDGED"},
        "request_id": "req-1",
    }
    row.update(over)
    return row


async def test_audit_log_rejects_update_and_delete_but_truncates(engine):
    await _insert(engine, t.audit_log, _audit_row(), _audit_row())
    with pytest.raises(CheckViolation, match="audit_log is append-only: UPDATE rejected") as caught:
        await _execute(engine, sa.update(t.audit_log).values(actor="mallory"))
    assert caught.value.constraint == "audit_log_append_only"
    with pytest.raises(CheckViolation, match="audit_log is append-only: DELETE rejected"):
        await _execute(engine, sa.delete(t.audit_log))
    assert await _count(engine, t.audit_log) == 2
    await _execute(engine, sa.text("TRUNCATE audit_log"))
    assert await _count(engine, t.audit_log) == 0


async def test_audit_log_actor_role_includes_system(engine):
    await _insert(engine, t.audit_log, _audit_row(actor="override_expiry", actor_role="SYSTEM"))
    with pytest.raises(CheckViolation):
        await _execute(engine, sa.insert(t.audit_log).values(**_audit_row(actor_role="ROOT")))


async def _failure_evidence(engine: AsyncEngine) -> tuple[str, str]:
    run_id, failure_id, evidence_id = _id(), _id(), _id()
    async with engine.begin() as conn:
        await conn.execute(sa.insert(t.runs).values(id=run_id, tenant_id="t1", status="FAILED"))
        await conn.execute(
            sa.insert(t.run_failures).values(
                id=failure_id, tenant_id="t1", run_id=run_id, failure_type="TIMEOUT"
            )
        )
        await conn.execute(
            sa.insert(t.failure_evidence).values(
                id=evidence_id,
                tenant_id="t1",
                failure_id=failure_id,
                evidence_type="LLM_FAILURE_CAPTURE",
                evidence_data={"prompt_tokens": 10},
            )
        )
    return run_id, evidence_id


async def test_failure_evidence_rejects_update(engine):
    _, evidence_id = await _failure_evidence(engine)
    with pytest.raises(CheckViolation, match="failure_evidence is append-only: UPDATE rejected"):
        await _execute(
            engine,
            sa.update(t.failure_evidence)
            .where(t.failure_evidence.c.id == evidence_id)
            .values(evidence_data={}),
        )


async def test_failure_evidence_is_deleted_with_its_run(engine):
    run_id, _ = await _failure_evidence(engine)
    await _execute(engine, sa.delete(t.runs).where(t.runs.c.id == run_id))
    assert await _count(engine, t.failure_evidence) == 0


def _signal_row(**over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant_id": "t1",
        "signal_id": "SIG-" + uuid.uuid4().hex[:12],
        "run_id": "run-1",
        "policy_id": "pol-1",
        "signal_type": "BREACH",
        "metric": "COST",
        "current_value": 12.5,
        "threshold_value": 12.0,
        "percentage": 104.17,
        "action_taken": "STOP",
    }
    row.update(over)
    return row


@pytest.mark.parametrize(
    "change",
    [
        {"current_value": 1.0},
        {"threshold_value": 99.0},
        {"signal_type": "NEAR"},
        {"metric": "LATENCY"},
        {"run_id": "run-2"},
        {"policy_id": "pol-2"},
        {"tenant_id": "t2"},
        {"signal_id": "SIG-000000000000"},
        {"percentage": 1.0},
    ],
)
async def test_threshold_signal_evidence_is_immutable(engine, change):
    row = _signal_row()
    await _insert(engine, t.threshold_signals, row)
    with pytest.raises(
        CheckViolation, match="is immutable except acknowledgement and alert"
    ) as caught:
        await _execute(engine, sa.update(t.threshold_signals).values(**change))
    assert caught.value.constraint == "threshold_signals_immutable"


async def test_threshold_signal_acknowledgement_and_alert_fields_may_change(engine):
    await _insert(engine, t.threshold_signals, _signal_row())
    await _execute(
        engine,
        sa.update(t.threshold_signals).values(
            acknowledged=True,
            acknowledged_by="alice",
            acknowledged_at=sa.func.now(),
            alert_sent=True,
            alert_sent_at=sa.func.now(),
            alert_channels=["UI"],
        ),
    )
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(t.threshold_signals))).one()
    assert (row.acknowledged, row.acknowledged_by, row.alert_channels) == (True, "alice", ["UI"])


# --- unique rules -------------------------------------------------------------------------------


async def _limit(engine: AsyncEngine) -> str:
    row = limit_row()
    await _execute(
        engine,
        sa.insert(t.limits).values(**row),
        sa.insert(t.limit_integrity).values(**integrity_row(row["id"])),
    )
    return str(row["id"])


@pytest.mark.parametrize(
    ("first", "second"),
    [("PENDING", "PENDING"), ("ACTIVE", "PENDING"), ("APPROVED", "ACTIVE"), ("ACTIVE", "ACTIVE")],
)
async def test_override_no_stacking(engine, first, second):
    limit_id = await _limit(engine)
    await _insert(engine, t.limit_overrides, override_row(limit_id, status=first))
    with pytest.raises(UniqueViolation) as caught:
        await _execute(
            engine, sa.insert(t.limit_overrides).values(**override_row(limit_id, status=second))
        )
    assert caught.value.constraint == "limit_overrides_no_stacking"


async def test_finished_overrides_do_not_stack(engine):
    limit_id = await _limit(engine)
    other_limit = await _limit(engine)
    await _insert(
        engine,
        t.limit_overrides,
        *(
            override_row(limit_id, status=s)
            for s in ("EXPIRED", "REJECTED", "CANCELLED", "EXPIRED")
        ),
        override_row(limit_id, status="ACTIVE"),
        override_row(other_limit, status="PENDING"),
    )
    assert await _count(engine, t.limit_overrides) == 6


async def test_one_run_incident_per_run(engine):
    run_id = _id()
    await _insert(engine, t.runs, {"id": run_id, "tenant_id": "t1", "status": "FAILED"})
    run_incident = incident_row(source_type="RUN", source_run_id=run_id, trigger_type="RUN_FAILURE")
    await _insert(engine, t.incidents, run_incident)
    # Other sources may point at the same run.
    await _insert(engine, t.incidents, incident_row(source_type="POLICY", source_run_id=run_id))
    with pytest.raises(UniqueViolation) as caught:
        await _execute(
            engine,
            sa.insert(t.incidents).values(
                **incident_row(source_type="RUN", source_run_id=run_id, trigger_type="RUN_FAILURE")
            ),
        )
    assert caught.value.constraint == "uq_incidents_run_source_run_id"


async def test_deleting_a_run_keeps_its_incident(engine):
    run_id = _id()
    await _insert(engine, t.runs, {"id": run_id, "tenant_id": "t1", "status": "FAILED"})
    await _insert(engine, t.incidents, incident_row(source_type="RUN", source_run_id=run_id))
    await _execute(engine, sa.delete(t.runs).where(t.runs.c.id == run_id))
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(t.incidents.c.source_run_id))).scalar_one() is None


@pytest.mark.parametrize(
    ("table", "row", "constraint"),
    [
        (
            t.lessons_learned,
            {
                "tenant_id": "t1",
                "lesson_type": "FAILURE",
                "source_event_id": "run-1",
                "source_event_type": "RUN",
                "title": "Failure: TIMEOUT",
                "description": "d",
            },
            "uq_lessons_learned_tenant_id_source_event_id_lesson_type",
        ),
        (
            t.policy_violations,
            {"tenant_id": "t1", "run_id": "run-1", "policy_id": "pol-1", "violated_rule": "r"},
            "uq_policy_violations_tenant_id_run_id_policy_id",
        ),
        (
            t.circuit_breakers,
            {"tenant_id": "t1", "name": "costsim_v2"},
            "uq_circuit_breakers_tenant_id_name",
        ),
    ],
)
async def test_idempotency_keys_are_unique_per_tenant(engine, table, row, constraint):
    await _insert(engine, table, row)
    await _insert(engine, table, {**row, "tenant_id": "t2"})  # another tenant: fine
    with pytest.raises(UniqueViolation) as caught:
        await _execute(engine, sa.insert(table).values(**row))
    assert caught.value.constraint == constraint
