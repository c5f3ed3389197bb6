"""The deferred-lesson reactivation job (DOMAIN.md §7): batches of 100, oldest first, SKIP LOCKED."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import lessons as db
from drivers import tables as t
from resolvers.lessons import reactivate_deferred_lessons
from tests.factories import insert_rows
from tests.factories_lessons import lesson_row

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _deferred(tenant: str, minutes_overdue: int):
    return lesson_row(
        tenant, status="DEFERRED", deferred_until=NOW - timedelta(minutes=minutes_overdue)
    )


async def _rows(engine: AsyncEngine) -> tuple[dict[str, Any], list[Any]]:
    async with engine.connect() as conn:
        lessons = {r.id: r for r in await conn.execute(select(t.lessons_learned))}
        audits = list(await conn.execute(select(t.audit_log).order_by(t.audit_log.c.id)))
    return lessons, audits


async def test_job_reactivates_every_due_lesson_in_full_batches(engine):
    # given 150 due lessons in two tenants, one due exactly now, one not yet due, one pending
    due = [_deferred("t1", m + 1) for m in range(100)] + [_deferred("t2", m + 1) for m in range(49)]
    due.append(lesson_row("t1", status="DEFERRED", deferred_until=NOW))
    later = lesson_row("t1", status="DEFERRED", deferred_until=NOW + timedelta(seconds=1))
    pending = lesson_row("t1")
    await insert_rows(engine, t.lessons_learned, [*due, later, pending])
    # when
    changed = await reactivate_deferred_lessons(engine, now=NOW)
    # then
    assert changed == 150
    lessons, audits = await _rows(engine)
    assert all(
        (lessons[r["id"]].status, lessons[r["id"]].deferred_until) == ("PENDING", None) for r in due
    )
    assert lessons[later["id"]].status == "DEFERRED"
    assert len(audits) == 150
    assert {(a.actor, a.actor_role, a.operation, a.entity_type, a.request_id) for a in audits} == {
        (
            "reactivate_deferred_lessons",
            "SYSTEM",
            "reactivate_deferred_lessons",
            "lessons_learned",
            None,
        )
    }
    assert {a.entity_id: a.tenant_id for a in audits} == {r["id"]: r["tenant_id"] for r in due}
    assert all((a.before["status"], a.after["status"]) == ("DEFERRED", "PENDING") for a in audits)
    # and a second run finds nothing
    assert await reactivate_deferred_lessons(engine, now=NOW) == 0


async def test_batches_take_the_oldest_deferral_first(engine):
    rows = [_deferred("t1", m) for m in (5, 30, 10, 20)]
    await insert_rows(engine, t.lessons_learned, rows)
    async with engine.begin() as conn:
        done = await db.reactivate_due_deferred(conn, now=NOW, limit=2)
    assert [d.after.id for d in done] == [rows[1]["id"], rows[3]["id"]]


async def test_locked_lessons_are_skipped_not_waited_for(engine):
    locked, free = _deferred("t1", 10), _deferred("t1", 5)
    await insert_rows(engine, t.lessons_learned, [locked, free])
    async with engine.connect() as holder:
        await holder.execute(
            text("SELECT 1 FROM lessons_learned WHERE id = :id FOR UPDATE"), {"id": locked["id"]}
        )
        changed = await reactivate_deferred_lessons(engine, now=NOW)
        await holder.rollback()
    assert changed == 1
    lessons, _ = await _rows(engine)
    assert (lessons[locked["id"]].status, lessons[free["id"]].status) == ("DEFERRED", "PENDING")
