"""Lessons over HTTP (DOMAIN.md §3.16): creation rules, debounce, state machine, reads, stats."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.factories_lessons import lesson_row
from tests.factories_refs import RUN_IDS, seed_incident, seed_runs
from tests.gateway.test_incident_mutations import _failing_audit_inserts
from tests.helpers import error_codes, gql

CREATE = """mutation($input: CreateLessonInput!) { createLesson(input: $input) {
    created debounced skippedReason
    lesson { id lessonType severity sourceEventId sourceEventType sourceRunId title description
             proposedAction detectedPattern status }
} }"""


@pytest.fixture(autouse=True)
async def _known_runs(engine):
    """The runs these tests' inputs name (an unknown run is NOT_FOUND)."""
    await seed_runs(engine, *RUN_IDS)
    await seed_runs(engine, "run-t2", tenant="t2")


async def _lessons(engine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(t.lessons_learned))).all())


async def _audits(engine) -> list[Any]:
    async with engine.connect() as conn:
        query = select(t.audit_log).order_by(t.audit_log.c.id)
        return list((await conn.execute(query)).all())


async def _proposals(engine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(t.policy_proposals))).all())


async def _create(client, tenant: str = "t1", **fields: Any) -> dict[str, Any]:
    body = await gql(client, CREATE, {"input": fields}, role="INGEST", tenant=tenant, sub="probe")
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["createLesson"]
    return result


def _near(source: str, utilization: float, kind: str = "TOKEN_USAGE") -> dict[str, Any]:
    return {
        "lessonType": "NEAR_THRESHOLD",
        "sourceEventId": source,
        "sourceEventType": "RUN",
        "thresholdType": kind,
        "utilizationPercent": utilization,
        "currentValue": "8700",
        "thresholdValue": "10000",
    }


# --- createLesson -------------------------------------------------------------------------------


async def test_failure_lesson_is_created_once_and_then_returned(client, engine):
    data = {
        "lessonType": "FAILURE",
        "sourceEventId": "run-1",
        "sourceEventType": "RUN",
        "sourceRunId": "run-1",
        "severity": "HIGH",
        "errorCode": "EXECUTION_TIMEOUT",
    }
    first = await _create(client, **data)
    assert (first["created"], first["debounced"], first["skippedReason"]) == (True, False, None)
    got = first["lesson"]
    assert {k: v for k, v in got.items() if k not in ("id", "description")} == {
        "lessonType": "FAILURE",
        "severity": "HIGH",
        "sourceEventId": "run-1",
        "sourceEventType": "RUN",
        "sourceRunId": "run-1",
        "title": "Failure: EXECUTION_TIMEOUT",
        "proposedAction": "Consider creating a blocking policy to prevent similar failures. "
        "Error code: EXECUTION_TIMEOUT.",
        "detectedPattern": {"error_code": "EXECUTION_TIMEOUT", "severity": "HIGH"},
        "status": "PENDING",
    }
    # the same source event and type again: the existing lesson, nothing new written
    again = await _create(client, **{**data, "severity": "LOW", "errorCode": "OTHER"})
    assert (again["created"], again["debounced"], again["skippedReason"]) == (
        False,
        False,
        "ALREADY_EXISTS",
    )
    assert again["lesson"] == got
    [row] = await _lessons(engine)
    assert (row.id, row.tenant_id, row.title) == (got["id"], "t1", "Failure: EXECUTION_TIMEOUT")
    audits = await _audits(engine)
    assert [(a.operation, a.entity_type, a.entity_id, a.actor, a.actor_role) for a in audits] == [
        ("createLesson", "lessons_learned", got["id"], "probe", "INGEST")
    ] * 2
    assert [(a.after["created"], a.after["skipped_reason"]) for a in audits] == [
        (True, None),
        (False, "ALREADY_EXISTS"),
    ]


async def test_failure_lesson_without_code_suggests_a_warning_policy(client, engine):
    await seed_incident(engine, "inc-9")
    got = await _create(
        client,
        lessonType="FAILURE",
        sourceEventId="inc-9",
        sourceEventType="INCIDENT",
        severity="MEDIUM",
    )
    lesson = got["lesson"]
    assert lesson["title"] == "Failure: Unknown Error"
    assert lesson["proposedAction"] == (
        "Consider creating a warning policy to flag similar patterns. Error code: unknown."
    )
    assert lesson["detectedPattern"] == {"error_code": None, "severity": "MEDIUM"}


async def test_critical_success_lesson(client):
    got = await _create(
        client,
        lessonType="CRITICAL_SUCCESS",
        sourceEventId="run-5",
        sourceEventType="RUN",
        successType="BUDGET_RECOVERY",
        description="Recovered within budget",
    )
    lesson = got["lesson"]
    assert (lesson["title"], lesson["severity"], lesson["description"]) == (
        "Critical Success: BUDGET_RECOVERY",
        "NONE",
        "Recovered within budget",
    )
    assert lesson["proposedAction"] is None


async def test_near_threshold_starts_at_exactly_85_percent(client, engine):
    below = await _create(client, **_near("run-a", 84.99))
    assert below == {
        "created": False,
        "debounced": False,
        "skippedReason": "BELOW_THRESHOLD",
        "lesson": None,
    }
    assert await _lessons(engine) == []
    at = await _create(client, **_near("run-b", 85))
    assert (at["created"], at["debounced"]) == (True, False)
    lesson = at["lesson"]
    assert lesson["title"] == "Near-Threshold: TOKEN_USAGE at 85.0%"
    assert lesson["severity"] is None
    assert lesson["proposedAction"] == (
        "Consider creating a warning policy for TOKEN_USAGE at 77% threshold to provide "
        "earlier alerts."
    )
    assert lesson["detectedPattern"] == {
        "threshold_type": "TOKEN_USAGE",
        "threshold_band": "85-90",
        "utilization_percent": 85.0,
        "current_value": "8700",
        "threshold_value": "10000",
    }
    # the below-threshold call still wrote its one audit row (and nothing else)
    audits = await _audits(engine)
    assert [(a.entity_id, a.after["skipped_reason"]) for a in audits] == [
        ("run-a", "BELOW_THRESHOLD"),
        (lesson["id"], None),
    ]


@pytest.mark.parametrize(
    ("_case", "utilization", "band", "title"),
    [
        ("top of the first band", 89.99, "85-90", "Near-Threshold: COST at 90.0%"),
        ("exactly 90", 90, "90-95", "Near-Threshold: COST at 90.0%"),
        ("just below 95", 94.94, "90-95", "Near-Threshold: COST at 94.9%"),
        ("exactly 95", 95, "95-100", "Near-Threshold: COST at 95.0%"),
        ("over 100", 112.45, "95-100", "Near-Threshold: COST at 112.5%"),
    ],
)
async def test_near_threshold_bands(client, _case, utilization, band, title):
    got = await _create(client, **_near("run-x", utilization, "COST"))
    assert got["lesson"]["detectedPattern"]["threshold_band"] == band
    assert got["lesson"]["title"] == title


async def test_near_threshold_is_debounced_for_24_hours_per_type_and_band(client, engine):
    # given a COST lesson in band 85-90 a moment ago
    first = await _create(client, **_near("run-1", 86, "COST"))
    assert first["created"]
    # when another COST report in the same band arrives for another run
    second = await _create(client, **_near("run-2", 89.5, "COST"))
    # then nothing is written and the result says why
    assert second == {
        "created": False,
        "debounced": True,
        "skippedReason": "DEBOUNCED",
        "lesson": None,
    }
    # another band, another type, another tenant are not debounced
    assert (await _create(client, **_near("run-3", 91, "COST")))["created"]
    assert (await _create(client, **_near("run-4", 87, "TOKEN_USAGE")))["created"]
    assert (await _create(client, tenant="t2", **_near("run-t2", 87, "COST")))["created"]
    assert len(await _lessons(engine)) == 4
    audits = await _audits(engine)
    assert [a.after["debounced"] for a in audits] == [False, True, False, False, False]
    assert audits[1].entity_id == "run-2"


async def test_debounce_window_edges(client, engine):
    now = datetime.now(UTC)
    pattern = {"threshold_type": "LATENCY", "threshold_band": "90-95"}
    # a lesson 24 h and one minute old does not debounce ...
    await insert_rows(
        engine,
        t.lessons_learned,
        [
            lesson_row(
                lesson_type="NEAR_THRESHOLD",
                severity=None,
                detected_pattern=pattern,
                created_at=now - timedelta(hours=24, minutes=1),
            )
        ],
    )
    assert (await _create(client, **_near("run-a", 92, "LATENCY")))["created"]
    # ... one 23 h 59 min old does (band 95-100 this time)
    await insert_rows(
        engine,
        t.lessons_learned,
        [
            lesson_row(
                lesson_type="NEAR_THRESHOLD",
                severity=None,
                detected_pattern={"threshold_type": "LATENCY", "threshold_band": "95-100"},
                created_at=now - timedelta(hours=23, minutes=59),
            )
        ],
    )
    assert (await _create(client, **_near("run-b", 99, "LATENCY")))["debounced"]


async def test_repeated_near_threshold_for_the_same_run_returns_it_not_debounced(client):
    first = await _create(client, **_near("run-1", 88))
    again = await _create(client, **_near("run-1", 88))
    assert (again["created"], again["debounced"], again["skippedReason"]) == (
        False,
        False,
        "ALREADY_EXISTS",
    )
    assert again["lesson"]["id"] == first["lesson"]["id"]


@pytest.mark.parametrize(
    ("_case", "fields", "field"),
    [
        ("near without type", {**_near("r", 90), "thresholdType": None}, "thresholdType"),
        ("near blank type", {**_near("r", 90), "thresholdType": "  "}, "thresholdType"),
        (
            "near without utilization",
            {**_near("r", 90), "utilizationPercent": None},
            "utilizationPercent",
        ),
        ("near negative", _near("r", -1), "utilizationPercent"),
        ("near with severity", {**_near("r", 90), "severity": "HIGH"}, "severity"),
        (
            "success without type",
            {"lessonType": "CRITICAL_SUCCESS", "sourceEventId": "r", "sourceEventType": "RUN"},
            "successType",
        ),
        (
            "empty source",
            {"lessonType": "FAILURE", "sourceEventId": "", "sourceEventType": "RUN"},
            "sourceEventId",
        ),
        (
            "long error code",
            {
                "lessonType": "FAILURE",
                "sourceEventId": "r",
                "sourceEventType": "RUN",
                "errorCode": "E" * 65,
            },
            "errorCode",
        ),
    ],
)
async def test_bad_create_input_names_the_field_and_writes_nothing(
    client, engine, _case, fields, field
):
    body = await gql(client, CREATE, {"input": fields}, role="INGEST")
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == field
    assert (await _lessons(engine), await _audits(engine)) == ([], [])


@pytest.mark.parametrize("role", ["VIEWER", "OPERATOR"])
async def test_create_needs_ingest(client, engine, role):
    body = await gql(client, CREATE, {"input": _near("r", 90)}, role=role)
    assert error_codes(body) == ["FORBIDDEN"]
    assert (await _lessons(engine), await _audits(engine)) == ([], [])


# --- concurrency --------------------------------------------------------------------------------


async def test_concurrent_near_threshold_reports_create_one_lesson(client, engine):
    results = await asyncio.gather(
        *(_create(client, **_near(f"run-{i}", 96, "COST")) for i in range(5))
    )
    assert sorted((r["created"], r["debounced"]) for r in results) == [
        (False, True),
        (False, True),
        (False, True),
        (False, True),
        (True, False),
    ]
    assert len(await _lessons(engine)) == 1


async def test_concurrent_creates_of_one_key_return_the_same_lesson(client, engine):
    data = {"lessonType": "FAILURE", "sourceEventId": "run-1", "sourceEventType": "RUN"}
    results = await asyncio.gather(*(_create(client, **data) for _ in range(4)))
    assert sorted(r["created"] for r in results) == [False, False, False, True]
    assert len({r["lesson"]["id"] for r in results}) == 1
    assert {r["skippedReason"] for r in results} == {None, "ALREADY_EXISTS"}
    assert len(await _lessons(engine)) == 1


async def test_incident_lessons_show_created_lessons(client, engine):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    made = await _create(
        client,
        lessonType="FAILURE",
        sourceEventId=inc["id"],
        sourceEventType="INCIDENT",
        severity="CRITICAL",
        errorCode="AGENT_CRASH",
    )
    query = (
        """query($id: ID!) { incident(id: $id) { lessons { id title sourceIncident { id } } } }"""
    )
    body = await gql(client, query, {"id": inc["id"]})
    assert body["data"]["incident"]["lessons"] == [
        {
            "id": made["lesson"]["id"],
            "title": "Failure: AGENT_CRASH",
            "sourceIncident": {"id": inc["id"]},
        }
    ]


async def test_create_rolls_back_when_the_audit_fails(client, engine):
    async with _failing_audit_inserts(engine):
        body = await gql(client, CREATE, {"input": _near("run-1", 90)}, role="INGEST")
    assert error_codes(body) == ["INTERNAL"]
    assert await _lessons(engine) == []
    # and the debounce did not see the rolled-back lesson
    assert (await _create(client, **_near("run-2", 90)))["created"]
