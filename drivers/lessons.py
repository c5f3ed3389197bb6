"""Lesson reads and writes (DOMAIN.md §1.9, §3.16, §4 "lessons")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import NotFound, StaleState, map_db_errors
from drivers.mapping import LESSON
from drivers.records import LessonRecord

__all__ = [
    "DueLesson",
    "count_recent_near_threshold",
    "fetch_lesson_by_source",
    "fetch_lesson_for_update",
    "insert_lesson",
    "lesson_stats",
    "lock_near_threshold_key",
    "reactivate_due_deferred",
    "update_lesson_status",
]

_les = t.lessons_learned
DEBOUNCE = timedelta(hours=24)


async def fetch_lesson_for_update(
    conn: AsyncConnection, *, tenant_id: str, lesson_id: str
) -> LessonRecord:
    """Lock one lesson of the tenant for a state change, or raise NotFound."""
    stmt = (
        select(*LESSON.columns)
        .where(_les.c.tenant_id == tenant_id, _les.c.id == lesson_id)
        .with_for_update()
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("Lesson", lesson_id)
    return LESSON.record(*row)


async def fetch_lesson_by_source(
    conn: AsyncConnection, *, tenant_id: str, source_event_id: str, lesson_type: str
) -> LessonRecord | None:
    """The tenant's lesson for (source event, type), the idempotency key of creation."""
    stmt = select(*LESSON.columns).where(
        _les.c.tenant_id == tenant_id,
        _les.c.source_event_id == source_event_id,
        _les.c.lesson_type == lesson_type,
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else LESSON.record(*row)


async def lock_near_threshold_key(
    conn: AsyncConnection, *, tenant_id: str, threshold_type: str, band: str
) -> None:
    """Serialize near-threshold creation per (tenant, type, band) until the transaction ends.

    Two concurrent reports for different source events would otherwise both pass the 24 h
    debounce check and both insert.
    """
    key = f"lesson-near-threshold:{tenant_id}:{threshold_type}:{band}"
    with map_db_errors():
        await conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


async def count_recent_near_threshold(
    conn: AsyncConnection, *, tenant_id: str, threshold_type: str, band: str, now: datetime
) -> int:
    """NEAR_THRESHOLD lessons of the tenant for this type and band created in the last 24 h."""
    pattern = _les.c.detected_pattern
    stmt = (
        select(func.count())
        .select_from(_les)
        .where(
            _les.c.tenant_id == tenant_id,
            _les.c.lesson_type == "NEAR_THRESHOLD",
            pattern["threshold_type"].astext == threshold_type,
            pattern["threshold_band"].astext == band,
            _les.c.created_at > now - DEBOUNCE,
        )
    )
    with map_db_errors():
        return int((await conn.execute(stmt)).scalar_one())


async def insert_lesson(
    conn: AsyncConnection, *, tenant_id: str, values: dict[str, Any]
) -> LessonRecord | None:
    """Insert a lesson, or return None if (tenant, source event, type) already has one."""
    stmt = (
        pg_insert(_les)
        .values(tenant_id=tenant_id, **values)
        .on_conflict_do_nothing(index_elements=["tenant_id", "source_event_id", "lesson_type"])
        .returning(*LESSON.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    return None if row is None else LESSON.record(*row)


async def update_lesson_status(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    lesson_id: str,
    expected: str,
    values: dict[str, Any],
) -> LessonRecord:
    """Move a lesson on, guarded by its expected status (concurrent transitions: one wins)."""
    stmt = (
        update(_les)
        .where(_les.c.tenant_id == tenant_id, _les.c.id == lesson_id, _les.c.status == expected)
        .values(**values)
        .returning(*LESSON.columns)
    )
    with map_db_errors():
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise StaleState(f"lesson {lesson_id} is no longer {expected}")
    return LESSON.record(*row)


async def lesson_stats(conn: AsyncConnection, *, tenant_id: str) -> dict[tuple[str, str], int]:
    """Count the tenant's lessons per (lesson_type, status) in one statement."""
    stmt = (
        select(_les.c.lesson_type, _les.c.status, func.count())
        .where(_les.c.tenant_id == tenant_id)
        .group_by(_les.c.lesson_type, _les.c.status)
    )
    with map_db_errors():
        rows = (await conn.execute(stmt)).all()
    return {(row[0], row[1]): int(row[2]) for row in rows}


@dataclass(frozen=True, slots=True)
class DueLesson:
    """A lesson the reactivation job moved back to PENDING, with its tenant for the audit."""

    tenant_id: str
    before: LessonRecord
    after: LessonRecord


async def reactivate_due_deferred(
    conn: AsyncConnection, *, now: datetime, limit: int = 100
) -> list[DueLesson]:
    """Claim up to `limit` due DEFERRED lessons (all tenants, oldest deferral first) → PENDING.

    FOR UPDATE SKIP LOCKED lets several replicas run the job at once without double work.
    """
    claim = (
        select(_les.c.tenant_id, *LESSON.columns)
        .where(_les.c.status == "DEFERRED", _les.c.deferred_until <= now)
        .order_by(_les.c.deferred_until, _les.c.created_at, _les.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with map_db_errors():
        claimed = (await conn.execute(claim)).all()
    if not claimed:
        return []
    ids = [row[1] for row in claimed]
    stmt = (
        update(_les)
        .where(_les.c.id.in_(ids), _les.c.status == "DEFERRED")
        .values(status="PENDING", deferred_until=None)
        .returning(*LESSON.columns)
    )
    with map_db_errors():
        updated = {row[0]: LESSON.record(*row) for row in await conn.execute(stmt)}
    return [
        DueLesson(row[0], LESSON.record(*row[1:]), updated[row[1]])
        for row in claimed
        if row[1] in updated
    ]
