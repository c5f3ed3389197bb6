"""Threshold params, signals and budget halts (DOMAIN.md §3.4-3.5)."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from drivers import halts as halts_db
from drivers import thresholds as db
from drivers.errors import NotFound as DbNotFound
from drivers.records import RunRecord, ThresholdSignalRecord
from drivers.rules.budget import parse_halt
from drivers.rules.thresholds import (
    OpsEvent,
    ThresholdParams,
    applicable_layers,
    evaluate_run,
    merge_params,
    ops_event,
    signal_percentage,
)
from resolvers.auth import require_role
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, NotFound, QueryTooComplex, translate_errors
from resolvers.pagination import MAX_PAGE
from resolvers.references import ensure_found
from resolvers.unit_of_work import as_json, unit_of_work
from resolvers.validation import check_length

__all__ = [
    "BudgetHalt",
    "EffectiveThresholds",
    "RunThresholdEvaluation",
    "SignalInput",
    "acknowledge_threshold_signal",
    "budget_halts",
    "effective_thresholds",
    "record_threshold_signal",
    "run_threshold_evaluation",
]

_ENTITY = "threshold_signals"


@dataclass(frozen=True, slots=True)
class EffectiveThresholds:
    params: ThresholdParams
    applied_limit_ids: list[str]


async def _resolve(
    ctx: Context, agent_id: str | None, project_id: str | None
) -> EffectiveThresholds:
    """Params for (agent, project) from the request's one read of the tenant's layers."""
    principal = require_role(ctx)
    layers = await ctx.loaders.threshold_layers().load(principal.tenant_id)
    applied = applicable_layers(layers, agent_id, project_id)
    params = merge_params(layer.params for layer in applied)
    return EffectiveThresholds(params, [layer.limit_id for layer in applied])


async def effective_thresholds(
    ctx: Context, *, agent_id: str | None, project_id: str | None
) -> EffectiveThresholds:
    """AGENT > PROJECT > TENANT > GLOBAL > defaults; invalid merged params → defaults."""
    return await _resolve(ctx, agent_id, project_id)


@dataclass(frozen=True, slots=True)
class RunThresholdEvaluation:
    run_id: str
    state: str
    params: EffectiveThresholds
    signals: list[str]
    ops_events: list[OpsEvent]


async def run_threshold_evaluation(ctx: Context, run: RunRecord) -> RunThresholdEvaluation:
    """§3.4 run evaluation with the params resolved for the run's agent and project.

    A read: the ops events are returned in their ops-event form, never published (see
    docs/decisions.md). Every run of a request shares one read of the threshold limits.
    """
    resolved = await _resolve(ctx, run.agent_id, run.project_id)
    now = datetime.now(UTC)
    signals = evaluate_run(run, resolved.params, now)
    events = [
        ops_event(s, run_id=run.id, state=run.status, params=resolved.params) for s in signals
    ]
    names = [str(s) for s in signals]
    return RunThresholdEvaluation(run.id, run.status, resolved, names, events)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalInput:
    run_id: str
    policy_id: str
    signal_type: str
    metric: str
    current_value: float
    threshold_value: float
    step_index: int | None = None
    action_taken: str | None = None


def _check_signal(data: SignalInput) -> None:
    check_length("runId", data.run_id, 64, 1)
    check_length("policyId", data.policy_id, 64, 1)
    for field, value in (
        ("currentValue", data.current_value),
        ("thresholdValue", data.threshold_value),
    ):
        if not math.isfinite(value):
            raise BadUserInput(f"{field} must be a finite number", field=field)
    if data.step_index is not None and data.step_index < 0:
        raise BadUserInput("stepIndex must be >= 0", field="stepIndex")
    if data.signal_type == "BREACH" and data.action_taken is None:
        raise BadUserInput("a BREACH signal needs actionTaken", field="actionTaken")
    if data.signal_type == "NEAR" and data.action_taken is not None:
        raise BadUserInput("actionTaken is only for BREACH signals", field="actionTaken")


async def record_threshold_signal(ctx: Context, data: SignalInput) -> ThresholdSignalRecord:
    """Append a NEAR or BREACH signal with its percentage (§3.4)."""
    _check_signal(data)
    async with unit_of_work(ctx, "recordThresholdSignal") as uow:
        await ensure_found(
            uow.conn, "Run", tenant_id=uow.tenant_id, entity_id=data.run_id, field="runId"
        )
        signal = await db.insert_signal(
            uow.conn,
            tenant_id=uow.tenant_id,
            values={
                "signal_id": "SIG-" + secrets.token_hex(6),
                "run_id": data.run_id,
                "policy_id": data.policy_id,
                "step_index": data.step_index,
                "signal_type": data.signal_type,
                "metric": data.metric,
                "current_value": data.current_value,
                "threshold_value": data.threshold_value,
                "percentage": signal_percentage(
                    data.signal_type, data.current_value, data.threshold_value
                ),
                "action_taken": data.action_taken,
                "timestamp": datetime.now(UTC),
            },
        )
        uow.audit(_ENTITY, signal.signal_id, before=None, after=as_json(signal))
    return signal


async def acknowledge_threshold_signal(ctx: Context, signal_id: str) -> ThresholdSignalRecord:
    """Acknowledge a signal once; a second acknowledgement is CONFLICT."""
    async with unit_of_work(ctx, "acknowledgeThresholdSignal") as uow:
        try:
            before = await db.fetch_signal(
                uow.conn, tenant_id=uow.tenant_id, signal_id=signal_id, lock=True
            )
        except DbNotFound as exc:
            raise NotFound(f"threshold signal {signal_id} not found") from exc
        if before.acknowledged:
            raise Conflict(
                f"signal {signal_id} was already acknowledged by {before.acknowledged_by}",
                reason="ALREADY_ACKNOWLEDGED",
            )
        after = await db.acknowledge_signal(
            uow.conn,
            tenant_id=uow.tenant_id,
            signal_id=signal_id,
            actor=uow.principal.subject[:64],  # the column is vc(64)
            now=datetime.now(UTC),
        )
        uow.audit(_ENTITY, signal_id, before=as_json(before), after=as_json(after))
    return after


@dataclass(frozen=True, slots=True)
class BudgetHalt:
    run_id: str
    consumed_cents: int
    limit_cents: int
    total_steps: int | None
    completed_steps: int
    step_cost_cents: int
    completed_at: datetime | None
    error_message: str | None


async def budget_halts(ctx: Context, *, first: int) -> list[BudgetHalt]:
    """HALTED runs stopped by the hard budget limit; unparsable messages are skipped."""
    principal = require_role(ctx)
    if not 1 <= first <= MAX_PAGE:
        raise QueryTooComplex(f"first must be between 1 and {MAX_PAGE}", field="first")
    with translate_errors():
        async with ctx.db.reads.connect() as conn:
            runs = await halts_db.fetch_budget_halts(
                conn, tenant_id=principal.tenant_id, limit=first
            )
    halts: list[BudgetHalt] = []
    for run in runs:
        parsed = parse_halt(run.error_message)
        if parsed is None:
            continue
        halts.append(
            BudgetHalt(
                run_id=run.run_id,
                consumed_cents=parsed[0],
                limit_cents=parsed[1],
                total_steps=run.plan_step_count,
                completed_steps=run.completed_step_count,
                step_cost_cents=0,
                completed_at=run.completed_at,
                error_message=run.error_message,
            )
        )
    return halts
