"""Lesson state machine over HTTP (DOMAIN.md §3.16): every transition, fields, rollback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drivers import tables as t
from tests.factories import insert_rows
from tests.factories_lessons import lesson_row
from tests.gateway.test_incident_mutations import _failing_audit_inserts
from tests.gateway.test_lessons import _audits, _lessons, _proposals
from tests.helpers import error_codes, gql

LESSON_FIELDS = """id status draftProposalId convertedAt deferredUntil dismissedAt dismissedBy
    dismissedReason draftProposal { id title status sourceType sourceId createdBy }"""
CONVERT = f"mutation($id: ID!) {{ convertLessonToDraft(id: $id) {{ {LESSON_FIELDS} }} }}"
DEFER = f"""mutation($id: ID!, $until: DateTime!) {{ deferLesson(id: $id, until: $until) {{
    {LESSON_FIELDS} }} }}"""
DISMISS = f"""mutation($id: ID!, $reason: String!) {{ dismissLesson(id: $id, reason: $reason) {{
    {LESSON_FIELDS} }} }}"""
REACTIVATE = f"mutation($id: ID!) {{ reactivateLesson(id: $id) {{ {LESSON_FIELDS} }} }}"
FUTURE = (datetime.now(UTC) + timedelta(days=3)).isoformat()


# --- the state machine --------------------------------------------------------------------------

_ACTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "convert": (CONVERT, {}),
    "defer": (DEFER, {"until": FUTURE}),
    "dismiss": (DISMISS, {"reason": "not actionable"}),
    "reactivate": (REACTIVATE, {}),
}
_LEGAL = {
    ("PENDING", "convert"): "CONVERTED_TO_DRAFT",
    ("PENDING", "defer"): "DEFERRED",
    ("PENDING", "dismiss"): "DISMISSED",
    ("DEFERRED", "reactivate"): "PENDING",
}
_STATES = ["PENDING", "DEFERRED", "CONVERTED_TO_DRAFT", "DISMISSED"]


def _in_state(status: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if status == "DEFERRED":
        extra["deferred_until"] = datetime.now(UTC) + timedelta(days=1)
    return lesson_row(status=status, **extra)


@pytest.mark.parametrize("status", _STATES)
@pytest.mark.parametrize("action", list(_ACTIONS))
async def test_every_transition_of_the_state_machine(client, engine, status, action):
    # given
    row = _in_state(status)
    await insert_rows(engine, t.lessons_learned, [row])
    [before] = await _lessons(engine)
    query, extra = _ACTIONS[action]
    # when
    body = await gql(client, query, {"id": row["id"], **extra}, role="OPERATOR", sub="olga")
    # then
    target = _LEGAL.get((status, action))
    if target is None:
        assert error_codes(body) == ["CONFLICT"], body
        ext = body["errors"][0]["extensions"]
        assert (ext["reason"], ext["status"]) == ("ILLEGAL_TRANSITION", status)
        assert await _lessons(engine) == [before]
        assert (await _audits(engine), await _proposals(engine)) == ([], [])
        return
    assert "errors" not in body, body
    got = next(iter(body["data"].values()))
    assert got["status"] == target
    [after] = await _lessons(engine)
    assert after.status == target
    [audit] = await _audits(engine)
    assert (audit.entity_type, audit.entity_id, audit.actor, audit.actor_role) == (
        "lessons_learned",
        row["id"],
        "olga",
        "OPERATOR",
    )
    assert (audit.before["status"], audit.after["status"]) == (status, target)
    assert len(await _proposals(engine)) == (1 if action == "convert" else 0)


async def test_convert_creates_the_draft_proposal_and_links_it(client, engine):
    row = lesson_row(title="Failure: AGENT_CRASH")
    await insert_rows(engine, t.lessons_learned, [row])
    body = await gql(client, CONVERT, {"id": row["id"]}, role="OPERATOR", sub="olga")
    got = body["data"]["convertLessonToDraft"]
    [proposal] = await _proposals(engine)
    assert (proposal.tenant_id, proposal.title, proposal.status) == (
        "t1",
        "Policy from Lesson: Failure: AGENT_CRASH",
        "DRAFT",
    )
    assert (proposal.source_type, proposal.source_id, proposal.created_by) == (
        "LESSON",
        row["id"],
        "olga",
    )
    assert got["draftProposalId"] == proposal.id
    assert got["draftProposal"] == {
        "id": proposal.id,
        "title": "Policy from Lesson: Failure: AGENT_CRASH",
        "status": "DRAFT",
        "sourceType": "LESSON",
        "sourceId": row["id"],
        "createdBy": "olga",
    }
    [stored] = await _lessons(engine)
    assert stored.converted_at == datetime.fromisoformat(got["convertedAt"])
    assert stored.draft_proposal_id == proposal.id


async def test_convert_rolls_back_the_proposal_when_the_audit_fails(client, engine):
    row = lesson_row()
    await insert_rows(engine, t.lessons_learned, [row])
    async with _failing_audit_inserts(engine):
        body = await gql(client, CONVERT, {"id": row["id"]}, role="OPERATOR")
    assert error_codes(body) == ["INTERNAL"]
    [stored] = await _lessons(engine)
    assert (stored.status, stored.draft_proposal_id) == ("PENDING", None)
    assert await _proposals(engine) == []


async def test_defer_dismiss_and_reactivate_fields(client, engine):
    a, b = lesson_row(), lesson_row()
    await insert_rows(engine, t.lessons_learned, [a, b])
    until = "2031-01-02T03:04:05+00:00"
    deferred = (await gql(client, DEFER, {"id": a["id"], "until": until}, role="OPERATOR"))["data"][
        "deferLesson"
    ]
    assert (deferred["status"], deferred["deferredUntil"]) == ("DEFERRED", until)
    back = (await gql(client, REACTIVATE, {"id": a["id"]}, role="OPERATOR"))["data"][
        "reactivateLesson"
    ]
    assert (back["status"], back["deferredUntil"]) == ("PENDING", None)
    body = await gql(client, DISMISS, {"id": b["id"], "reason": "duplicate"}, sub="olga")
    dismissed = body["data"]["dismissLesson"]
    assert (dismissed["status"], dismissed["dismissedBy"], dismissed["dismissedReason"]) == (
        "DISMISSED",
        "olga",
        "duplicate",
    )
    assert dismissed["dismissedAt"] is not None
    assert [a.operation for a in await _audits(engine)] == [
        "deferLesson",
        "reactivateLesson",
        "dismissLesson",
    ]


@pytest.mark.parametrize(
    ("_case", "query", "variables", "field"),
    [
        ("defer into the past", DEFER, {"until": "2020-01-01T00:00:00+00:00"}, "until"),
        ("blank reason", DISMISS, {"reason": "   "}, "reason"),
        ("long reason", DISMISS, {"reason": "r" * 2001}, "reason"),
    ],
)
async def test_bad_transition_input(client, engine, _case, query, variables, field):
    row = lesson_row()
    await insert_rows(engine, t.lessons_learned, [row])
    body = await gql(client, query, {"id": row["id"], **variables}, role="OPERATOR")
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == field
    [stored] = await _lessons(engine)
    assert stored.status == "PENDING"
    assert await _audits(engine) == []


async def test_foreign_and_missing_lessons_are_not_found(client, engine):
    theirs = _in_state("DEFERRED")
    theirs["tenant_id"] = "t2"
    await insert_rows(engine, t.lessons_learned, [theirs])
    for query, extra in _ACTIONS.values():
        for lesson_id in (theirs["id"], "00000000-0000-4000-8000-000000000000"):
            body = await gql(client, query, {"id": lesson_id, **extra}, role="OPERATOR")
            assert error_codes(body) == ["NOT_FOUND"], body
    body = await gql(client, "query($id: ID!) { lesson(id: $id) { id } }", {"id": theirs["id"]})
    assert body == {"data": {"lesson": None}}
    assert await _audits(engine) == []


async def test_viewer_cannot_transition(client, engine):
    row = lesson_row()
    await insert_rows(engine, t.lessons_learned, [row])
    for query, extra in _ACTIONS.values():
        body = await gql(client, query, {"id": row["id"], **extra}, role="VIEWER")
        assert error_codes(body) == ["FORBIDDEN"]


async def test_concurrent_transitions_let_exactly_one_win(client, engine):
    row = lesson_row()
    await insert_rows(engine, t.lessons_learned, [row])
    bodies = await asyncio.gather(
        gql(client, CONVERT, {"id": row["id"]}, role="OPERATOR", sub="x"),
        gql(client, DISMISS, {"id": row["id"], "reason": "no"}, role="OPERATOR", sub="y"),
        gql(client, DEFER, {"id": row["id"], "until": FUTURE}, role="OPERATOR", sub="z"),
    )
    assert sorted(error_codes(b) for b in bodies) == [[], ["CONFLICT"], ["CONFLICT"]]
    [stored] = await _lessons(engine)
    [audit] = await _audits(engine)
    assert audit.after["status"] == stored.status
    assert len(await _proposals(engine)) == (1 if stored.status == "CONVERTED_TO_DRAFT" else 0)
