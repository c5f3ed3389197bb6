"""Lesson types (DOMAIN.md §1.9)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from drivers.records import LessonRecord
from schema.enums import LessonSeverity, LessonSourceType, LessonStatus, LessonType

__all__ = ["Lesson"]


@strawberry.type(description="Something learned from a run or an incident.")
class Lesson:
    record: strawberry.Private[LessonRecord]
    id: strawberry.ID
    lesson_type: LessonType
    severity: LessonSeverity | None
    source_event_id: str
    source_event_type: LessonSourceType
    source_run_id: str | None
    title: str
    description: str
    proposed_action: str | None
    detected_pattern: JSON | None
    status: LessonStatus
    draft_proposal_id: str | None
    converted_at: datetime | None
    deferred_until: datetime | None
    dismissed_at: datetime | None
    dismissed_by: str | None
    dismissed_reason: str | None
    created_at: datetime
