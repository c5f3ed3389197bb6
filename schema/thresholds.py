"""Threshold params and signals, and budget halts (API.md; DOMAIN.md §3.4-3.5)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from drivers.mapping import THRESHOLD_SIGNAL
from drivers.records import ThresholdSignalRecord
from resolvers import thresholds as uc
from resolvers.lists import root_list
from schema.base import Info, from_record
from schema.enums import (
    OpsEventType,
    RunStatus,
    RunThresholdSignal,
    SignalType,
    ThresholdAction,
    ThresholdMetric,
)
from schema.filters import PAGE_SIZES, filter_argument
from schema.mapped import mapped_type
from schema.pagination import Connection, connection

__all__ = [
    "BudgetHalt",
    "OpsEvent",
    "RecordThresholdSignalInput",
    "RunThresholdEvaluation",
    "ThresholdMutations",
    "ThresholdParams",
    "ThresholdQueries",
    "ThresholdSignal",
    "run_threshold_evaluation",
]


@strawberry.type(description="Threshold params in force for an agent/project (§3.4).")
class ThresholdParams:
    max_execution_time_ms: int = strawberry.field(description="Run time limit in ms.")
    max_tokens: int = strawberry.field(description="Input + output token limit.")
    max_cost_usd: float = strawberry.field(description="Cost limit in USD.")
    failure_signal: bool = strawberry.field(description="Whether failed runs signal.")
    applied_limit_ids: list[strawberry.ID] = strawberry.field(
        description="THRESHOLD limits overlaid, in application order (last wins)."
    )


def threshold_params(got: uc.EffectiveThresholds) -> ThresholdParams:
    """Convert resolved params and the limits that were overlaid."""
    p = got.params
    return ThresholdParams(
        max_execution_time_ms=p.max_execution_time_ms,
        max_tokens=p.max_tokens,
        max_cost_usd=p.max_cost_usd,
        failure_signal=p.failure_signal,
        applied_limit_ids=[strawberry.ID(i) for i in got.applied_limit_ids],
    )


@strawberry.type(description="The ops-event form of one run threshold signal (§3.4).")
class OpsEvent:
    event_type: OpsEventType = strawberry.field(
        description="LLM_CALL_FAILED for RUN_FAILED, else INFRA_LIMIT_HIT."
    )
    severity: int = strawberry.field(description="3 for LLM_CALL_FAILED, 2 for INFRA_LIMIT_HIT.")
    entity_type: str = strawberry.field(description="Always LLM_CALL.")
    entity_id: strawberry.ID = strawberry.field(description="The run id.")
    metadata: JSON = strawberry.field(
        description='{signal, state (the run status), params_used, domain: "llm_runs"}.'
    )


@strawberry.type(
    description="A run measured against its threshold params (§3.4) at the time of the read."
)
class RunThresholdEvaluation:
    run_id: strawberry.ID = strawberry.field(description="The evaluated run.")
    state: RunStatus = strawberry.field(description="The run's status when evaluated.")
    params: ThresholdParams = strawberry.field(
        description="The params resolved for the run's agent and project."
    )
    signals: list[RunThresholdSignal] = strawberry.field(
        description="Signals raised, in EXECUTION_TIME, TOKEN, COST, RUN_FAILED order."
    )
    ops_events: list[OpsEvent] = strawberry.field(
        description="The ops-event form of each signal, in the same order (returned, not sent)."
    )


def run_threshold_evaluation(got: uc.RunThresholdEvaluation) -> RunThresholdEvaluation:
    """Convert a run's threshold evaluation."""
    return RunThresholdEvaluation(
        run_id=strawberry.ID(got.run_id),
        state=RunStatus(got.state),
        params=threshold_params(got.params),
        signals=[RunThresholdSignal(s) for s in got.signals],
        ops_events=[
            OpsEvent(
                event_type=OpsEventType(e.event_type),
                severity=e.severity,
                entity_type=e.entity_type,
                entity_id=strawberry.ID(e.entity_id),
                metadata=JSON(e.metadata),
            )
            for e in got.ops_events
        ],
    )


@mapped_type(
    THRESHOLD_SIGNAL,
    description="Immutable near/breach evidence; only ack and alert fields change.",
)
class ThresholdSignal:
    record: strawberry.Private[ThresholdSignalRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.record.signal_id)


def signal(record: ThresholdSignalRecord) -> ThresholdSignal:
    """Convert a signal record (its numeric row id stays private; `id` is the signal id)."""
    return from_record(ThresholdSignal, record)


@strawberry.type(description="A run halted by the hard budget limit (§3.5).")
class BudgetHalt:
    run_id: strawberry.ID = strawberry.field(description="The halted run.")
    consumed_cents: int = strawberry.field(description="X of `<X>c consumed`.")
    limit_cents: int = strawberry.field(description="Y of `>= <Y>c limit`.")
    total_steps: int | None = strawberry.field(description="The run's planned steps.")
    completed_steps: int = strawberry.field(description="Steps completed before the halt.")
    step_cost_cents: int = strawberry.field(description="Always 0 (not tracked per step).")
    completed_at: datetime | None = strawberry.field(description="When the run stopped.")
    error_message: str | None = strawberry.field(description="The halt message.")


@strawberry.input(description="A NEAR or BREACH threshold signal reported by a machine client.")
class RecordThresholdSignalInput:
    run_id: str = strawberry.field(description="The run, 1..64 characters.")
    policy_id: str = strawberry.field(description="The policy, 1..64 characters.")
    signal_type: SignalType = strawberry.field(description="NEAR or BREACH.")
    metric: ThresholdMetric = strawberry.field(description="What was measured.")
    current_value: float = strawberry.field(description="Measured value.")
    threshold_value: float = strawberry.field(description="Threshold compared with.")
    step_index: int | None = strawberry.field(default=None, description="Step of the run.")
    action_taken: ThresholdAction | None = strawberry.field(
        default=None, description="Required for BREACH, refused for NEAR."
    )


@strawberry.type
class ThresholdQueries:
    @strawberry.field(description="Threshold params resolved AGENT > PROJECT > TENANT > GLOBAL.")
    async def effective_thresholds(
        self,
        info: Info,
        agent_id: Annotated[str | None, strawberry.argument(description="Agent id.")] = None,
        project_id: Annotated[str | None, strawberry.argument(description="Project id.")] = None,
    ) -> ThresholdParams:
        got = await uc.effective_thresholds(info.context, agent_id=agent_id, project_id=project_id)
        return threshold_params(got)

    @strawberry.field(description="The tenant's threshold signals, newest first.")
    async def threshold_signals(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size, 1..100.")] = PAGE_SIZES[
            "thresholdSignals"
        ],
        after: Annotated[str | None, strawberry.argument(description="Cursor.")] = None,
        run_id: Annotated[str | None, filter_argument("thresholdSignals", "run_id")] = None,
        signal_type: Annotated[
            SignalType | None, filter_argument("thresholdSignals", "signal_type")
        ] = None,
    ) -> Connection[ThresholdSignal]:
        page = await root_list(
            info.context,
            "thresholdSignals",
            first=first,
            after=after,
            args={"run_id": run_id, "signal_type": signal_type},
        )
        return connection(page, signal)

    @strawberry.field(description="Runs halted by the hard budget limit, newest first.")
    async def budget_halts(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="At most this many runs.")] = 100,
    ) -> list[BudgetHalt]:
        halts = await uc.budget_halts(info.context, first=first)
        return [
            BudgetHalt(
                run_id=strawberry.ID(h.run_id),
                consumed_cents=h.consumed_cents,
                limit_cents=h.limit_cents,
                total_steps=h.total_steps,
                completed_steps=h.completed_steps,
                step_cost_cents=h.step_cost_cents,
                completed_at=h.completed_at,
                error_message=h.error_message,
            )
            for h in halts
        ]


@strawberry.type
class ThresholdMutations:
    @strawberry.mutation(description="Record a NEAR or BREACH threshold signal. [INGEST]")
    async def record_threshold_signal(
        self,
        info: Info,
        input: Annotated[
            RecordThresholdSignalInput, strawberry.argument(description="The signal to record.")
        ],
    ) -> ThresholdSignal:
        data = uc.SignalInput(
            run_id=input.run_id,
            policy_id=input.policy_id,
            signal_type=str(input.signal_type),
            metric=str(input.metric),
            current_value=input.current_value,
            threshold_value=input.threshold_value,
            step_index=input.step_index,
            action_taken=None if input.action_taken is None else str(input.action_taken),
        )
        return signal(await uc.record_threshold_signal(info.context, data))

    @strawberry.mutation(description="Acknowledge a signal (once). [OPERATOR]")
    async def acknowledge_threshold_signal(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The signal id (SIG-...).")],
    ) -> ThresholdSignal:
        return signal(await uc.acknowledge_threshold_signal(info.context, str(id)))
