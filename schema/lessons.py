"""Lesson types, inputs, queries and mutations (DOMAIN.md §1.9-1.10, §3.16; API.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from drivers.mapping import LESSON, POLICY_PROPOSAL
from drivers.records import LessonRecord, PolicyProposalRecord
from resolvers import lessons as uc
from resolvers.lists import root_list
from schema.base import Info, from_record
from schema.enums import (
    LessonSeverity,
    LessonSourceType,
    LessonStatus,
    LessonType,
)
from schema.filters import PAGE_SIZES, FilterInput
from schema.mapped import mapped_type
from schema.pagination import After, Connection, First, connection

if TYPE_CHECKING:
    from schema.incidents import Incident

__all__ = [
    "CreateLessonInput",
    "CreateLessonResult",
    "Lesson",
    "LessonFilter",
    "LessonMutations",
    "LessonQueries",
    "LessonStats",
    "PolicyProposal",
    "lesson",
]

_Incident = Annotated["Incident", strawberry.lazy("schema.incidents")]


@mapped_type(POLICY_PROPOSAL, description="A draft policy, created when a lesson is converted.")
class PolicyProposal:
    record: strawberry.Private[PolicyProposalRecord]


@mapped_type(LESSON, description="Something learned from a run or an incident.")
class Lesson:
    record: strawberry.Private[LessonRecord]

    @strawberry.field
    async def source_incident(self, info: Info) -> _Incident | None:
        from schema.incidents import incident  # noqa: PLC0415 - cycle between the two modules

        record = await uc.lesson_source_incident(info.context, self.record)
        return None if record is None else incident(record)


def lesson(record: LessonRecord) -> Lesson:
    """Convert a lesson record."""
    return from_record(Lesson, record)


@strawberry.input(description="Every given field narrows the list (AND); lists match any value.")
class LessonFilter(FilterInput, root="lessons"):
    pass


@strawberry.input(
    description=(
        "A lesson to record. FAILURE uses severity and errorCode; NEAR_THRESHOLD needs "
        "thresholdType and utilizationPercent; CRITICAL_SUCCESS needs successType."
    )
)
class CreateLessonInput:
    lesson_type: LessonType = strawberry.field(description="Kind of lesson.")
    source_event_id: str = strawberry.field(
        description="Id of the run or incident that produced it (idempotency key with the type)."
    )
    source_event_type: LessonSourceType = strawberry.field(description="RUN or INCIDENT.")
    source_run_id: str | None = strawberry.field(default=None, description="The run, if any.")
    description: str | None = strawberry.field(
        default=None, description="Free text; a generated sentence when omitted."
    )
    severity: LessonSeverity | None = strawberry.field(
        default=None, description="FAILURE only: CRITICAL/HIGH suggest a blocking policy."
    )
    error_code: str | None = strawberry.field(
        default=None, description="FAILURE only: the error code ('Unknown Error' when omitted)."
    )
    threshold_type: str | None = strawberry.field(
        default=None, description="NEAR_THRESHOLD only: what was near its threshold."
    )
    utilization_percent: float | None = strawberry.field(
        default=None, description="NEAR_THRESHOLD only: percent of the threshold used (>= 0)."
    )
    current_value: Decimal | None = strawberry.field(
        default=None, description="NEAR_THRESHOLD only: the measured value."
    )
    threshold_value: Decimal | None = strawberry.field(
        default=None, description="NEAR_THRESHOLD only: the threshold."
    )
    success_type: str | None = strawberry.field(
        default=None, description="CRITICAL_SUCCESS only: what succeeded."
    )

    def to_spec(self) -> uc.CreateLessonInput:
        return uc.CreateLessonInput(
            lesson_type=str(self.lesson_type),
            source_event_id=self.source_event_id,
            source_event_type=str(self.source_event_type),
            source_run_id=self.source_run_id,
            description=self.description,
            severity=None if self.severity is None else str(self.severity),
            error_code=self.error_code,
            threshold_type=self.threshold_type,
            utilization_percent=self.utilization_percent,
            current_value=self.current_value,
            threshold_value=self.threshold_value,
            success_type=self.success_type,
        )


@strawberry.enum(description="Why createLesson wrote nothing")
class LessonSkipReason(Enum):
    ALREADY_EXISTS = "ALREADY_EXISTS"
    BELOW_THRESHOLD = "BELOW_THRESHOLD"
    DEBOUNCED = "DEBOUNCED"


@strawberry.type(description="What createLesson did.")
class CreateLessonResult:
    lesson: Lesson | None = strawberry.field(
        description="The new lesson, or the existing one for the same source event and type; "
        "null when nothing was created for another reason."
    )
    created: bool = strawberry.field(description="True when a new lesson was written.")
    debounced: bool = strawberry.field(
        description="True when a near-threshold lesson of the same type and band was created "
        "in the last 24 h, so this one was not."
    )
    skipped_reason: LessonSkipReason | None = strawberry.field(
        description="Why nothing was written (null when created)."
    )


@strawberry.type(description="How many lessons have one type.")
class LessonTypeCount:
    lesson_type: LessonType = strawberry.field(description="The lesson type.")
    count: int = strawberry.field(description="Lessons of that type.")


@strawberry.type(description="How many lessons are in one status.")
class LessonStatusCount:
    status: LessonStatus = strawberry.field(description="The status.")
    count: int = strawberry.field(description="Lessons in that status.")


@strawberry.type(description="Totals of the tenant's lessons.")
class LessonStats:
    total: int = strawberry.field(description="All lessons.")
    by_type: list[LessonTypeCount] = strawberry.field(
        description="Per lesson type, every type listed (zeros too)."
    )
    by_status: list[LessonStatusCount] = strawberry.field(
        description="Per status, every status listed (zeros too)."
    )


@strawberry.type
class LessonQueries:
    @strawberry.field(description="The tenant's lessons, newest first (50 per page by default).")
    async def lessons(
        self,
        info: Info,
        first: First = PAGE_SIZES["lessons"],
        after: After = None,
        filter: Annotated[
            LessonFilter | None,
            strawberry.argument(description="Narrow the list; every given field must match."),
        ] = None,
    ) -> Connection[Lesson]:
        page = await root_list(
            info.context,
            "lessons",
            first=first,
            after=after,
            filter=filter.values() if filter else None,
        )
        return connection(page, lesson)

    @strawberry.field(description="One lesson, or null if there is none with this id.")
    async def lesson(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="Lesson id; another tenant's id reads as null."),
        ],
    ) -> Lesson | None:
        record = await uc.get_lesson(info.context, str(id))
        return None if record is None else lesson(record)

    @strawberry.field(description="Totals of the tenant's lessons by type and by status.")
    async def lesson_stats(self, info: Info) -> LessonStats:
        stats = await uc.lesson_stats(info.context)
        return LessonStats(
            total=stats.total,
            by_type=[LessonTypeCount(lesson_type=LessonType(v), count=n) for v, n in stats.by_type],
            by_status=[
                LessonStatusCount(status=LessonStatus(v), count=n) for v, n in stats.by_status
            ],
        )


@strawberry.type
class LessonMutations:
    @strawberry.mutation(
        description="Record a lesson; idempotent per source event and type. [INGEST]"
    )
    async def create_lesson(
        self,
        info: Info,
        input: Annotated[
            CreateLessonInput,
            strawberry.argument(
                description="The lesson to record (idempotent per source and type)."
            ),
        ],
    ) -> CreateLessonResult:
        out = await uc.create_lesson(info.context, input.to_spec())
        return CreateLessonResult(
            lesson=None if out.lesson is None else lesson(out.lesson),
            created=out.created,
            debounced=out.debounced,
            skipped_reason=None
            if out.skipped_reason is None
            else LessonSkipReason(out.skipped_reason),
        )

    @strawberry.mutation(
        description="PENDING -> CONVERTED_TO_DRAFT, creating a DRAFT policy proposal. [OPERATOR]"
    )
    async def convert_lesson_to_draft(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The PENDING lesson to convert.")
        ],
    ) -> Lesson:
        return lesson(await uc.convert_lesson_to_draft(info.context, str(id)))

    @strawberry.mutation(description="PENDING -> DEFERRED until a future time. [OPERATOR]")
    async def defer_lesson(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The PENDING lesson to defer.")
        ],
        until: Annotated[datetime, strawberry.argument(description="When it comes back.")],
    ) -> Lesson:
        return lesson(await uc.defer_lesson(info.context, str(id), until))

    @strawberry.mutation(description="PENDING -> DISMISSED (terminal). [OPERATOR]")
    async def dismiss_lesson(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The PENDING lesson to dismiss.")
        ],
        reason: Annotated[str, strawberry.argument(description="Why (1..2000 characters).")],
    ) -> Lesson:
        return lesson(await uc.dismiss_lesson(info.context, str(id), reason))

    @strawberry.mutation(description="DEFERRED -> PENDING. [OPERATOR]")
    async def reactivate_lesson(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The DEFERRED lesson to reactivate.")
        ],
    ) -> Lesson:
        return lesson(await uc.reactivate_lesson(info.context, str(id)))
