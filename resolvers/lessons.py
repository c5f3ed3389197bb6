"""Lesson use cases (DOMAIN.md §3.16): create, list, stats, the state machine and its job."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import audit, proposals
from drivers import lessons as db
from drivers.enums import LessonSeverity, LessonStatus, LessonType
from drivers.mapping import (
    LESSON_SOURCE_INCIDENT,
    QUERY_LESSON,
)
from drivers.records import IncidentRecord, LessonRecord
from drivers.rules import lessons as rules
from resolvers.auth import Role, require_role
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, translate_errors
from resolvers.lists import nested_one, root_one
from resolvers.references import ensure_found
from resolvers.unit_of_work import UnitOfWork, as_json, unit_of_work
from resolvers.validation import check_length

__all__ = [
    "JOB_ACTOR",
    "CreateLessonInput",
    "CreateLessonOutcome",
    "LessonStatsResult",
    "convert_lesson_to_draft",
    "create_lesson",
    "defer_lesson",
    "dismiss_lesson",
    "get_lesson",
    "lesson_source_incident",
    "lesson_stats",
    "reactivate_deferred_lessons",
    "reactivate_lesson",
]

JOB_ACTOR = "reactivate_deferred_lessons"
BATCH = 100


def _now() -> datetime:
    return datetime.now(UTC)


# --- reads --------------------------------------------------------------------------------------


async def get_lesson(ctx: Context, lesson_id: str) -> LessonRecord | None:
    """One lesson of the tenant, or None (also for another tenant's id)."""
    return await root_one(ctx, QUERY_LESSON, lesson_id)


async def lesson_source_incident(ctx: Context, lesson: LessonRecord) -> IncidentRecord | None:
    """The incident a lesson came from (None for lessons from runs)."""
    if lesson.source_event_type != "INCIDENT":
        return None
    return await nested_one(ctx, LESSON_SOURCE_INCIDENT, lesson.source_event_id)


@dataclass(frozen=True, slots=True)
class LessonStatsResult:
    total: int
    by_type: list[tuple[str, int]]
    by_status: list[tuple[str, int]]


async def lesson_stats(ctx: Context) -> LessonStatsResult:
    """Totals of the tenant's lessons by type and by status (every value listed, zeros too)."""
    principal = require_role(ctx)
    with translate_errors():
        async with ctx.db.reads.connect() as conn:
            cells = await db.lesson_stats(conn, tenant_id=principal.tenant_id)
    by_type = [(k.value, sum(n for (lt, _), n in cells.items() if lt == k)) for k in LessonType]
    by_status = [(k.value, sum(n for (_, st), n in cells.items() if st == k)) for k in LessonStatus]
    return LessonStatsResult(sum(cells.values()), by_type, by_status)


# --- create -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateLessonInput:
    lesson_type: str
    source_event_id: str
    source_event_type: str
    source_run_id: str | None = None
    description: str | None = None
    severity: str | None = None
    error_code: str | None = None
    threshold_type: str | None = None
    utilization_percent: float | None = None
    current_value: Decimal | None = None
    threshold_value: Decimal | None = None
    success_type: str | None = None


@dataclass(frozen=True, slots=True)
class CreateLessonOutcome:
    """What createLesson did. `skipped_reason` says why nothing was written when created=False."""

    lesson: LessonRecord | None
    created: bool
    debounced: bool
    skipped_reason: str | None


def _required(field: str, value: str | None) -> str:
    if value is None or not value.strip():
        raise BadUserInput(f"{field} is required for this lesson type", field=field)
    return value


def _draft(data: CreateLessonInput) -> rules.LessonDraft | None:
    """Validate the type-specific input and compute the lesson; None = below 85 %."""
    if data.lesson_type != LessonType.FAILURE and data.severity is not None:
        raise BadUserInput("severity is given only for FAILURE lessons", field="severity")
    if data.lesson_type == LessonType.FAILURE:
        return rules.failure_draft(
            error_code=data.error_code, severity=data.severity, description=data.description
        )
    if data.lesson_type == LessonType.NEAR_THRESHOLD:
        threshold_type = _required("thresholdType", data.threshold_type)
        u = data.utilization_percent
        if u is None or not math.isfinite(u) or u < 0:
            raise BadUserInput(
                "utilizationPercent must be a finite number >= 0", field="utilizationPercent"
            )
        return rules.near_threshold_draft(
            threshold_type=threshold_type,
            utilization=Decimal(str(u)),
            current_value=data.current_value,
            threshold_value=data.threshold_value,
            description=data.description,
        )
    return rules.critical_success_draft(
        success_type=_required("successType", data.success_type), description=data.description
    )


def _check_create(data: CreateLessonInput) -> None:
    check_length("sourceEventId", data.source_event_id, 255, minimum=1)
    check_length("sourceRunId", data.source_run_id, 255)
    check_length("description", data.description, 10_000)
    check_length("errorCode", data.error_code, 64)
    check_length("thresholdType", data.threshold_type, 100)
    check_length("successType", data.success_type, 200)
    if data.severity is not None and data.severity not in {s.value for s in LessonSeverity}:
        raise BadUserInput("unknown severity", field="severity")


async def create_lesson(ctx: Context, data: CreateLessonInput) -> CreateLessonOutcome:
    """Create a lesson; idempotent on (tenant, source event, type), near-threshold debounced."""
    _check_create(data)
    draft = _draft(data)
    async with unit_of_work(ctx, "createLesson") as uow:
        await ensure_found(
            uow.conn,
            "Incident" if data.source_event_type == "INCIDENT" else "Run",
            tenant_id=uow.tenant_id,
            entity_id=data.source_event_id,
            field="sourceEventId",
        )
        outcome = await _create(uow, data, draft)
        lesson = outcome.lesson
        uow.audit(
            "lessons_learned",
            lesson.id if lesson else data.source_event_id,
            before=None,
            after={
                "created": outcome.created,
                "debounced": outcome.debounced,
                "skipped_reason": outcome.skipped_reason,
                "lesson": as_json(lesson),
            },
        )
    return outcome


async def _create(
    uow: UnitOfWork, data: CreateLessonInput, draft: rules.LessonDraft | None
) -> CreateLessonOutcome:
    conn, tenant = uow.conn, uow.tenant_id
    if draft is None:
        return CreateLessonOutcome(None, False, False, "BELOW_THRESHOLD")
    existing = await db.fetch_lesson_by_source(
        conn, tenant_id=tenant, source_event_id=data.source_event_id, lesson_type=data.lesson_type
    )
    if existing is not None:
        return CreateLessonOutcome(existing, False, False, "ALREADY_EXISTS")
    if data.lesson_type == LessonType.NEAR_THRESHOLD:
        kind, band = (
            draft.detected_pattern["threshold_type"],
            draft.detected_pattern["threshold_band"],
        )
        await db.lock_near_threshold_key(conn, tenant_id=tenant, threshold_type=kind, band=band)
        recent = await db.count_recent_near_threshold(
            conn, tenant_id=tenant, threshold_type=kind, band=band, now=_now()
        )
        if recent:
            return CreateLessonOutcome(None, False, True, "DEBOUNCED")
    values: dict[str, Any] = {
        "lesson_type": data.lesson_type,
        "severity": draft.severity,
        "source_event_id": data.source_event_id,
        "source_event_type": data.source_event_type,
        "source_run_id": data.source_run_id,
        "title": draft.title,
        "description": draft.description,
        "proposed_action": draft.proposed_action,
        "detected_pattern": draft.detected_pattern,
    }
    lesson = await db.insert_lesson(conn, tenant_id=tenant, values=values)
    if lesson is None:  # a concurrent request inserted the same key first
        lesson = await db.fetch_lesson_by_source(
            conn,
            tenant_id=tenant,
            source_event_id=data.source_event_id,
            lesson_type=data.lesson_type,
        )
        return CreateLessonOutcome(lesson, False, False, "ALREADY_EXISTS")
    return CreateLessonOutcome(lesson, True, False, None)


# --- transitions --------------------------------------------------------------------------------


async def _transition(
    ctx: Context,
    operation: str,
    action: str,
    lesson_id: str,
    values: dict[str, Any],
    *,
    proposal: bool = False,
) -> LessonRecord:
    """Lock, check the state machine, update with a status guard, audit; one transaction."""
    required = rules.allowed_from(action)
    async with unit_of_work(ctx, operation) as uow:
        before = await db.fetch_lesson_for_update(
            uow.conn, tenant_id=uow.tenant_id, lesson_id=lesson_id
        )
        if before.status != required:
            raise Conflict(
                f"cannot {action} a lesson in status {before.status}",
                reason="ILLEGAL_TRANSITION",
                status=before.status,
            )
        changes = dict(values)
        if proposal:
            draft = await proposals.insert_proposal(
                uow.conn,
                tenant_id=uow.tenant_id,
                title=f"Policy from Lesson: {before.title}",
                source_type="LESSON",
                source_id=before.id,
                created_by=uow.principal.subject,
            )
            changes["draft_proposal_id"] = draft.id
        after = await db.update_lesson_status(
            uow.conn,
            tenant_id=uow.tenant_id,
            lesson_id=lesson_id,
            expected=required,
            values=changes,
        )
        uow.audit("lessons_learned", lesson_id, before=as_json(before), after=as_json(after))
    ctx.loaders.one(QUERY_LESSON).clear(lesson_id).prime(lesson_id, after)
    return after


async def convert_lesson_to_draft(ctx: Context, lesson_id: str) -> LessonRecord:
    """PENDING → CONVERTED_TO_DRAFT, creating its DRAFT policy proposal in the same transaction."""
    values = {"status": "CONVERTED_TO_DRAFT", "converted_at": _now()}
    return await _transition(
        ctx, "convertLessonToDraft", "convert", lesson_id, values, proposal=True
    )


async def defer_lesson(ctx: Context, lesson_id: str, until: datetime) -> LessonRecord:
    """PENDING → DEFERRED until a future time (the job brings it back)."""
    if until.tzinfo is None or until <= _now():
        raise BadUserInput("until must be a future time with a time zone", field="until")
    values = {"status": "DEFERRED", "deferred_until": until}
    return await _transition(ctx, "deferLesson", "defer", lesson_id, values)


async def dismiss_lesson(ctx: Context, lesson_id: str, reason: str) -> LessonRecord:
    """PENDING → DISMISSED (terminal), recording who and why."""
    if not reason.strip():
        raise BadUserInput("reason must not be blank", field="reason")
    check_length("reason", reason, 2000, minimum=1)
    principal = require_role(ctx, Role.OPERATOR)
    values = {
        "status": "DISMISSED",
        "dismissed_at": _now(),
        "dismissed_by": principal.subject[:255],
        "dismissed_reason": reason,
    }
    return await _transition(ctx, "dismissLesson", "dismiss", lesson_id, values)


async def reactivate_lesson(ctx: Context, lesson_id: str) -> LessonRecord:
    """DEFERRED → PENDING by hand, clearing deferred_until."""
    values = {"status": "PENDING", "deferred_until": None}
    return await _transition(ctx, "reactivateLesson", "reactivate", lesson_id, values)


# --- job ----------------------------------------------------------------------------------------


async def reactivate_deferred_lessons(engine: AsyncEngine, *, now: datetime | None = None) -> int:
    """Move due DEFERRED lessons back to PENDING, ≤ 100 per transaction, until none are due.

    Each batch claims rows with FOR UPDATE SKIP LOCKED (replica-safe) and writes one audit row
    per lesson (actor and operation = the job name, role SYSTEM, no request id). Returns how many
    lessons it reactivated.
    """
    moment = now or _now()
    total = 0
    while True:
        async with engine.begin() as conn:
            done = await db.reactivate_due_deferred(conn, now=moment, limit=BATCH)
            for item in done:
                await audit.insert_audit(
                    conn,
                    tenant_id=item.tenant_id,
                    actor=JOB_ACTOR,
                    actor_role="SYSTEM",
                    operation=JOB_ACTOR,
                    entity_type="lessons_learned",
                    entity_id=item.after.id,
                    before=as_json(item.before),
                    after=as_json(item.after),
                    request_id=None,
                )
        total += len(done)
        if len(done) < BATCH:
            return total
