"""AOS_VERIFICATION_MODE (DOMAIN.md §3.14, §3.15): mandatory evidence, no contaminated runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from drivers import tables as t
from gateway.settings import Settings
from tests.factories import incident_row, insert_rows
from tests.factories_incwrites import all_rows, audit_rows, run_row
from tests.factories_refs import RUN_IDS, seed_runs
from tests.helpers import error_codes, gql, serve

VIOLATION = """mutation($input: PolicyViolationInput!) { recordPolicyViolation(input: $input) {
    created violation { id } incident { id }
} }"""
FAILURE = """mutation($input: LlmFailureInput!) { recordLlmFailure(input: $input) { id runId } }"""


@pytest.fixture(autouse=True)
async def _known_runs(engine):
    """The runs these tests' inputs name (an unknown run is NOT_FOUND)."""
    await seed_runs(engine, *RUN_IDS)


@pytest.fixture
async def strict(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings.model_copy(update={"aos_verification_mode": True})) as http:
        yield http


def _violation(**over: Any) -> dict[str, Any]:
    return {"runId": "run-1", "policyId": "pol-1", "violatedRule": "max_tokens", **over}


async def test_a_violation_without_evidence_is_refused_only_in_verification_mode(
    strict, client, engine
):
    # when evidence is missing or empty under verification mode
    for data in (_violation(), _violation(evidence={})):
        body = await gql(strict, VIOLATION, {"input": data}, role="INGEST")
        # then it is refused, naming the field, and nothing is written
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert body["errors"][0]["extensions"]["field"] == "evidence"
    assert await all_rows(engine, t.policy_violations) == []
    assert await audit_rows(engine) == []

    # with evidence it is recorded; without verification mode evidence stays optional
    body = await gql(strict, VIOLATION, {"input": _violation(evidence={"k": 1})}, role="INGEST")
    assert body["data"]["recordPolicyViolation"]["created"] is True
    body = await gql(client, VIOLATION, {"input": _violation(policyId="p2")}, role="INGEST")
    assert body["data"]["recordPolicyViolation"]["created"] is True


async def test_a_failure_for_a_run_named_by_another_trigger_type_is_refused(strict, client, engine):
    # given a run that a policy-violation incident already names
    run = run_row()
    await insert_rows(engine, t.runs, [run])
    named = f"run_id={run['id']}|policy_id=p|rule=r|reason="
    await insert_rows(
        engine,
        t.incidents,
        [incident_row(trigger_type="POLICY_VIOLATION", trigger_value=named)],
    )
    data = {"runId": run["id"], "failureType": "TIMEOUT", "evidence": {"k": 1}}

    # when the failure is recorded under verification mode
    body = await gql(strict, FAILURE, {"input": data}, role="INGEST")

    # then CONFLICT with the reason, and the run, failures and audit log are untouched
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["reason"] == "FAILURE_CONTAMINATION_VIOLATION"
    assert await all_rows(engine, t.run_failures) == []
    [stored] = [r for r in await all_rows(engine, t.runs) if r.id == run["id"]]
    assert stored.status == "RUNNING"
    assert await audit_rows(engine) == []

    # outside verification mode the same failure is recorded
    body = await gql(client, FAILURE, {"input": data}, role="INGEST")
    assert body["data"]["recordLlmFailure"]["runId"] == run["id"]


async def test_llm_failure_incidents_and_other_runs_do_not_contaminate(strict, engine):
    run, other = run_row(), run_row()
    await insert_rows(engine, t.runs, [run, other])
    await insert_rows(
        engine,
        t.incidents,
        [
            incident_row(trigger_type="LLM_FAILURE", trigger_value=f"run_id={run['id']}"),
            incident_row(trigger_type="POLICY_VIOLATION", trigger_value=f"run_id={other['id']}"),
            # another tenant's incident never counts
            incident_row(
                "t2", trigger_type="POLICY_VIOLATION", trigger_value=f"run_id={run['id']}"
            ),
        ],
    )

    body = await gql(
        strict,
        FAILURE,
        {"input": {"runId": run["id"], "failureType": "TIMEOUT", "evidence": {"k": 1}}},
        role="INGEST",
    )

    assert "errors" not in body, body
    assert len(await all_rows(engine, t.run_failures)) == 1
