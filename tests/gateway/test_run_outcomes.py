"""recordRunOutcome over HTTP (DOMAIN.md §3.13): one RUN incident per failed run."""

from __future__ import annotations

import asyncio
import re

from drivers import tables as t
from tests.factories import insert_rows
from tests.factories_incwrites import all_rows, audit_rows, run_row
from tests.helpers import error_codes, gql

OUTCOME = """mutation($id: ID!) { recordRunOutcome(runId: $id) {
    outcome errorCode proposalId proposalType suggestedAction
    run { id incidentCount incidents { nodes { id } } }
    incident { id title severity status triggerType triggerValue category sourceType causeType
               sourceRunId description errorCode errorMessage impactScope affectedAgentId
               affectedCount sourceRun { id status } }
} }"""


async def test_failed_run_opens_its_incident_and_a_draft_proposal(client, engine):
    run = run_row(status="FAILED", error_message="agent_crash: worker segfault")
    await insert_rows(engine, t.runs, [run])
    body = await gql(client, OUTCOME, {"id": run["id"]}, role="INGEST", sub="runtime")
    assert "errors" not in body, body
    res = body["data"]["recordRunOutcome"]
    inc = res["incident"]
    assert re.fullmatch(r"inc_[0-9a-f]{16}", inc["id"])
    r8 = run["id"][:8]
    assert {k: inc[k] for k in inc if k != "id"} == {
        "title": f"Agent Crash: Run {r8}...",
        "severity": "CRITICAL",
        "status": "OPEN",
        "triggerType": "RUN_FAILURE",
        "triggerValue": "AGENT_CRASH",
        "category": "EXECUTION_FAILURE",
        "sourceType": "RUN",
        "causeType": "LLM_RUN",
        "sourceRunId": run["id"],
        "description": f"Run {run['id']} failed with error: AGENT_CRASH",
        "errorCode": "AGENT_CRASH",
        "errorMessage": "agent_crash: worker segfault",
        "impactScope": "SINGLE_RUN",
        "affectedAgentId": "agent-7",
        "affectedCount": 1,
        "sourceRun": {"id": run["id"], "status": "FAILED"},
    }
    assert (res["outcome"], res["errorCode"]) == ("FAILURE", "AGENT_CRASH")
    assert (res["proposalType"], res["suggestedAction"]) == ("CRASH_RECOVERY_POLICY", "BLOCK")
    assert res["run"]["incidentCount"] == 1
    assert res["run"]["incidents"]["nodes"] == [{"id": inc["id"]}]
    [proposal] = await all_rows(engine, t.policy_proposals)
    assert (proposal.id, proposal.title, proposal.status, proposal.source_type) == (
        res["proposalId"],
        f"Auto: Crash Recovery Policy ({inc['id'][:12]})",
        "DRAFT",
        "INCIDENT",
    )
    assert (proposal.source_id, proposal.created_by) == (inc["id"], "system")
    [event] = await all_rows(engine, t.incident_events)
    assert (event.event_type, event.description) == (
        "INCIDENT_CREATED",
        f"Incident created: Agent Crash: Run {r8}...",
    )
    [audit] = await audit_rows(engine)
    assert (audit.operation, audit.entity_type, audit.entity_id) == (
        "recordRunOutcome",
        "incidents",
        inc["id"],
    )
    # a second outcome for the same run is a conflict and writes nothing
    again = await gql(client, OUTCOME, {"id": run["id"]}, role="INGEST")
    assert error_codes(again) == ["CONFLICT"]
    assert len(await all_rows(engine, t.incidents)) == 1
    assert len(await audit_rows(engine)) == 1


async def test_outcomes_by_status(client, engine):
    ok = run_row(status="SUCCEEDED")
    halted = run_row(status="HALTED", error_message="Hard budget limit: BUDGET_EXCEEDED")
    cancelled = run_row(status="CANCELLED", error_message=None)
    running = run_row(status="RUNNING")
    theirs = run_row("t2", status="FAILED")
    for row in (ok, halted, cancelled, running, theirs):  # column sets differ: one insert each
        await insert_rows(engine, t.runs, [row])
    body = await gql(client, OUTCOME, {"id": ok["id"]}, role="INGEST")
    res = body["data"]["recordRunOutcome"]
    assert (res["outcome"], res["incident"], res["run"]["incidentCount"]) == ("SUCCESS", None, 0)
    body = await gql(client, OUTCOME, {"id": halted["id"]}, role="INGEST")
    res = body["data"]["recordRunOutcome"]
    assert (res["outcome"], res["incident"]["severity"], res["incident"]["category"]) == (
        "BLOCKED",
        "MEDIUM",
        "BUDGET_EXCEEDED",
    )
    assert (res["proposalId"], res["suggestedAction"]) == (None, None)
    body = await gql(client, OUTCOME, {"id": cancelled["id"]}, role="INGEST")
    res = body["data"]["recordRunOutcome"]
    assert (res["outcome"], res["errorCode"], res["incident"]["title"]) == (
        "ABORTED",
        "UNKNOWN",
        f"Run Failed: {cancelled['id'][:8]}...",
    )
    body = await gql(client, OUTCOME, {"id": running["id"]}, role="INGEST")
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["reason"] == "RUN_NOT_TERMINAL"
    body = await gql(client, OUTCOME, {"id": theirs["id"]}, role="INGEST")
    assert error_codes(body) == ["NOT_FOUND"]
    body = await gql(client, OUTCOME, {"id": halted["id"]}, role="OPERATOR")
    assert error_codes(body) == ["FORBIDDEN"]
    assert len(await all_rows(engine, t.policy_proposals)) == 0
    assert [a.entity_type for a in await audit_rows(engine)] == ["runs", "incidents", "incidents"]


async def test_concurrent_outcomes_for_one_run_make_one_incident(client, engine):
    run = run_row(status="FAILED", error_message="STEP_FAILURE at step 3")
    await insert_rows(engine, t.runs, [run])
    bodies = await asyncio.gather(
        *(gql(client, OUTCOME, {"id": run["id"]}, role="INGEST") for _ in range(4))
    )
    assert sorted(error_codes(b) for b in bodies) == [[], ["CONFLICT"], ["CONFLICT"], ["CONFLICT"]]
    assert len(await all_rows(engine, t.incidents)) == 1
    [stored] = await all_rows(engine, t.runs)
    assert stored.incident_count == 1
