"""Governance paths over HTTP: cost anomalies, policy violations, LLM failures (§3.12-3.15)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.factories_incwrites import (
    all_rows,
    audit_rows,
    away_from_window_edge,
    refusing,
    run_row,
)
from tests.factories_refs import RUN_IDS, seed_runs
from tests.helpers import error_codes, gql

ANOMALY = """mutation($input: CostAnomalyInput!) { createIncidentFromCostAnomaly(input: $input) {
    created reason
    incident { id title severity status triggerType triggerValue category sourceType causeType
               costDeltaCents costImpact description impactScope affectedAgentId affectedCount
               startedAt createdAt updatedAt }
} }"""

VIOLATION = """mutation($input: PolicyViolationInput!) { recordPolicyViolation(input: $input) {
    created overflow
    violation { id runId policyId violatedRule severity reason evidence incidentId }
    incident { id title severity triggerType triggerValue sourceType causeType category
               relatedCallIds callsAffected evidence { evidenceType payload } }
    truthCheck { violationPersisted incidentExists incidentSeverity evidenceExists
                 singleIncident passed }
} }"""

FAILURE = """mutation($input: LlmFailureInput!) { recordLlmFailure(input: $input) {
    id runId failureType errorCode errorMessage model requestId durationMs metadata
    evidence { evidenceType evidenceData isImmutable }
} }"""


@pytest.fixture(autouse=True)
async def _known_runs(engine):
    """The runs these tests' inputs name (an unknown run is NOT_FOUND)."""
    await seed_runs(engine, *RUN_IDS)


def anomaly(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "anomalyId": "anom-1",
        "anomalyType": "USER_SPIKE",
        "severity": "HIGH",
        "currentValueCents": "1500",
        "expectedValueCents": "265",
    }
    data.update(over)
    return data


def _anomaly_metric() -> float:
    labels = {"domain": "Analytics", "source": "cost_anomaly"}
    return REGISTRY.get_sample_value("gateway_governance_events_total", labels) or 0.0


async def test_high_cost_anomaly_opens_an_incident_with_the_exact_fields(client, engine):
    counted = _anomaly_metric()
    body = await gql(
        client,
        ANOMALY,
        {"input": anomaly(entityType="AGENT", entityId="agent-9")},
        role="INGEST",
        sub="detector",
    )
    assert "errors" not in body, body
    res = body["data"]["createIncidentFromCostAnomaly"]
    assert (res["created"], res["reason"]) == (True, None)
    assert _anomaly_metric() == counted + 1
    inc = res["incident"]
    assert inc["startedAt"] == inc["createdAt"] == inc["updatedAt"]
    assert {k: inc[k] for k in inc if k not in ("id", "startedAt", "createdAt", "updatedAt")} == {
        "title": "Cost anomaly: USER_SPIKE (+$12.35)",
        "severity": "HIGH",
        "status": "OPEN",
        "triggerType": "COST_SPIKE",
        "triggerValue": "1235",
        "category": "COST_ANOMALY",
        "sourceType": "COST_ANOMALY",
        "causeType": "SYSTEM",
        "costDeltaCents": "1235.0000",
        "costImpact": "12.35",
        "description": "Detected USER_SPIKE anomaly. Current: $15.00, Expected: $2.65. "
        "Entity: AGENT/agent-9",
        "impactScope": "AGENT",
        "affectedAgentId": "agent-9",
        "affectedCount": 1,
    }
    [event] = await all_rows(engine, t.incident_events)
    assert (event.event_type, event.description, event.data) == (
        "INCIDENT_CREATED",
        "Incident created: Cost anomaly: USER_SPIKE (+$12.35)",
        {"anomaly_id": "anom-1", "anomaly_type": "USER_SPIKE"},
    )
    [audit] = await audit_rows(engine)
    assert (audit.operation, audit.entity_type, audit.entity_id, audit.actor) == (
        "createIncidentFromCostAnomaly",
        "incidents",
        inc["id"],
        "detector",
    )


async def test_anomaly_without_entity_uses_tenant_scope_and_plain_description(client, engine):
    body = await gql(
        client,
        ANOMALY,
        {"input": anomaly(severity="CRITICAL", currentValueCents="100.5", expectedValueCents="0")},
        role="INGEST",
    )
    inc = body["data"]["createIncidentFromCostAnomaly"]["incident"]
    assert (inc["impactScope"], inc["affectedAgentId"], inc["severity"]) == (
        "TENANT",
        None,
        "CRITICAL",
    )
    assert inc["description"] == "Detected USER_SPIKE anomaly. Current: $1.00, Expected: $0.00."
    assert (inc["title"], inc["triggerValue"]) == ("Cost anomaly: USER_SPIKE (+$1.00)", "100.5")
    # a project entity is the impact scope but not an affected agent; a description wins
    body = await gql(
        client,
        ANOMALY,
        {"input": anomaly(entityType="PROJECT", entityId="p1", description="custom")},
        role="INGEST",
    )
    inc = body["data"]["createIncidentFromCostAnomaly"]["incident"]
    assert (inc["impactScope"], inc["affectedAgentId"], inc["description"]) == (
        "PROJECT",
        None,
        "custom",
    )


@pytest.mark.parametrize(
    ("anomaly_type", "trigger"),
    [
        ("BUDGET_EXCEEDED", "BUDGET_BREACH"),
        ("USER_SPIKE", "COST_SPIKE"),
        ("TENANT_SPIKE", "COST_SPIKE"),
        ("ABSOLUTE_SPIKE", "COST_SPIKE"),
        ("DRIFT", "COST_DRIFT"),
        ("SUSTAINED_DRIFT", "COST_DRIFT"),
        ("BUDGET_WARNING", "BUDGET_WARNING"),
        ("SOMETHING_NEW", "COST_ANOMALY"),
    ],
)
async def test_anomaly_trigger_map(client, engine, anomaly_type: str, trigger: str):
    body = await gql(client, ANOMALY, {"input": anomaly(anomalyType=anomaly_type)}, role="INGEST")
    assert body["data"]["createIncidentFromCostAnomaly"]["incident"]["triggerType"] == trigger


async def test_low_and_medium_anomalies_only_write_the_audit_row(client, engine):
    for severity in ("LOW", "MEDIUM"):
        body = await gql(client, ANOMALY, {"input": anomaly(severity=severity)}, role="INGEST")
        assert body["data"]["createIncidentFromCostAnomaly"] == {
            "created": False,
            "reason": f"severity {severity} below HIGH: no incident recorded",
            "incident": None,
        }
    assert await all_rows(engine, t.incidents) == []
    assert await all_rows(engine, t.incident_events) == []
    audits = await audit_rows(engine)
    assert [(a.operation, a.entity_type, a.entity_id, a.after["created"]) for a in audits] == [
        ("createIncidentFromCostAnomaly", "cost_anomalies", "anom-1", False)
    ] * 2


async def test_a_failed_anomaly_write_is_a_governance_error_and_rolls_everything_back(
    client, engine
):
    # given the timeline refuses writes: the incident insert succeeds, its event fails
    counted = _anomaly_metric()
    async with refusing(engine, "incident_events"):
        body = await gql(client, ANOMALY, {"input": anomaly()}, role="INGEST")
    # then
    assert error_codes(body) == ["GOVERNANCE_ERROR"], body
    ext = body["errors"][0]["extensions"]
    assert (ext["domain"], ext["operation"], ext["entityId"]) == (
        "Analytics",
        "createIncidentFromCostAnomaly",
        "anom-1",
    )
    assert "refusing" not in str(body)
    assert await all_rows(engine, t.incidents) == []
    assert await audit_rows(engine) == []
    assert _anomaly_metric() == counted  # a rolled-back write is not counted
    # and it works again afterwards
    body = await gql(client, ANOMALY, {"input": anomaly()}, role="INGEST")
    assert body["data"]["createIncidentFromCostAnomaly"]["created"] is True


async def test_bad_anomaly_input_is_refused_before_any_write(client, engine):
    cases: list[tuple[dict[str, Any], str]] = [
        (anomaly(anomalyId=" "), "anomalyId"),
        (anomaly(anomalyType=""), "anomalyType"),
        (anomaly(currentValueCents="-1"), "currentValueCents"),
        (anomaly(expectedValueCents="1000000"), "expectedValueCents"),
        (anomaly(entityId="e" * 257), "entityId"),
    ]
    for data, field in cases:
        body = await gql(client, ANOMALY, {"input": data}, role="INGEST")
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["extensions"]["field"] == field
    body = await gql(client, ANOMALY, {"input": anomaly()}, role="OPERATOR")
    assert error_codes(body) == ["FORBIDDEN"]
    assert await audit_rows(engine) == []


def violation(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "runId": "run-1",
        "policyId": "pol-1",
        "violatedRule": "max_tokens",
        "policyType": "TOKEN",
        "severity": "CRITICAL",
        "reason": "used 9000 tokens",
        "evidence": {"tokens": 9000, "prompt": "p" * 150, "a": 1, "b": 2, "c": 3, "d": 4},
    }
    data.update(over)
    return data


async def test_policy_violation_creates_violation_incident_and_evidence(client, engine):
    await away_from_window_edge()
    body = await gql(client, VIOLATION, {"input": violation()}, role="INGEST", sub="policy-engine")
    assert "errors" not in body, body
    res = body["data"]["recordPolicyViolation"]
    assert (res["created"], res["overflow"]) == (True, False)
    v, inc = res["violation"], res["incident"]
    assert v["incidentId"] == inc["id"]
    assert (v["severity"], v["runId"], v["policyId"]) == ("CRITICAL", "run-1", "pol-1")
    evidence = violation()["evidence"]
    assert {k: inc[k] for k in inc if k != "id"} == {
        "title": "POLICY_VIOLATION: run_id=run-1|policy_id=pol-1|rule=max_tokens"
        "|reason=used 9000 tokens",
        "severity": "MEDIUM",  # §3.9 for POLICY_VIOLATION; the violation keeps its own
        "triggerType": "POLICY_VIOLATION",
        "triggerValue": "run_id=run-1|policy_id=pol-1|rule=max_tokens|reason=used 9000 tokens",
        "sourceType": "POLICY",
        "causeType": "SYSTEM",
        "category": "POLICY_VIOLATION",
        "relatedCallIds": ["run-1"],
        "callsAffected": 1,
        "evidence": [{"evidenceType": "POLICY_VIOLATION", "payload": evidence}],
    }
    assert res["truthCheck"] == {
        "violationPersisted": True,
        "incidentExists": True,
        "incidentSeverity": "MEDIUM",
        "evidenceExists": True,
        "singleIncident": True,
        "passed": True,
    }
    events = await all_rows(engine, t.incident_events)
    assert [e.event_type for e in events] == ["INCIDENT_CREATED", "EVIDENCE_CAPTURED"]
    assert events[0].data == {
        "trigger_value": inc["triggerValue"],
        "violation_id": v["id"],
        "policy_type": "TOKEN",
        "violated_rule": "max_tokens",
        "severity": "CRITICAL",
        "evidence_snapshot": {
            "tokens": "9000",
            "prompt": "p" * 100,
            "a": "1",
            "b": "2",
            "c": "3",
        },
    }
    assert events[1].data == {"violation_id": v["id"], "evidence": evidence, "immutable": True}
    [audit] = await audit_rows(engine)
    assert (audit.operation, audit.entity_type, audit.entity_id) == (
        "recordPolicyViolation",
        "policy_violations",
        v["id"],
    )
    assert audit.after["incident_id"] == inc["id"]


async def test_policy_violation_is_idempotent_per_run_and_policy(client, engine):
    await away_from_window_edge()
    first = await gql(client, VIOLATION, {"input": violation()}, role="INGEST")
    again = await gql(client, VIOLATION, {"input": violation(reason="other")}, role="INGEST")
    a, b = (x["data"]["recordPolicyViolation"] for x in (first, again))
    assert (a["created"], b["created"]) == (True, False)
    assert b["violation"] == a["violation"]
    assert b["incident"]["id"] == a["incident"]["id"]
    assert b["truthCheck"]["passed"] is True
    assert len(await all_rows(engine, t.policy_violations)) == 1
    assert len(await all_rows(engine, t.incident_events)) == 2
    assert len(await all_rows(engine, t.incident_evidence)) == 1
    assert [a.operation for a in await audit_rows(engine)] == ["recordPolicyViolation"] * 2
    # another policy of the same run aggregates into the same incident
    other = await gql(client, VIOLATION, {"input": violation(policyId="pol-2")}, role="INGEST")
    c = other["data"]["recordPolicyViolation"]
    assert (c["created"], c["incident"]["id"]) == (True, a["incident"]["id"])
    assert c["incident"]["relatedCallIds"] == ["run-1"]
    assert len(c["incident"]["evidence"]) == 2


async def test_concurrent_duplicate_violations_record_one(client, engine):
    await away_from_window_edge()
    bodies = await asyncio.gather(
        *(gql(client, VIOLATION, {"input": violation()}, role="INGEST") for _ in range(5))
    )
    assert all("errors" not in b for b in bodies), bodies
    results = [b["data"]["recordPolicyViolation"] for b in bodies]
    assert sorted(r["created"] for r in results) == [False] * 4 + [True]
    assert len({r["violation"]["id"] for r in results}) == 1
    assert len(await all_rows(engine, t.incidents)) == 1
    assert len(await all_rows(engine, t.incident_evidence)) == 1


async def test_bad_violation_input_and_roles(client, engine):
    cases: list[tuple[dict[str, Any], str]] = [
        (violation(runId=""), "runId"),
        (violation(policyId=" "), "policyId"),
        (violation(violatedRule="r" * 501), "violatedRule"),
        (violation(evidence=[1]), "evidence"),
    ]
    for data, field in cases:
        body = await gql(client, VIOLATION, {"input": data}, role="INGEST")
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["extensions"]["field"] == field
    body = await gql(client, VIOLATION, {"input": violation()}, role="VIEWER")
    assert error_codes(body) == ["FORBIDDEN"]
    assert await all_rows(engine, t.policy_violations) == []
    assert await audit_rows(engine) == []


async def test_llm_failure_records_failure_evidence_and_fails_the_run(client, engine):
    run = run_row()
    await insert_rows(engine, t.runs, [run])
    data = {
        "runId": run["id"],
        "failureType": "TIMEOUT",
        "errorCode": "E42",
        "errorMessage": "model timed out",
        "model": "gpt-x",
        "requestId": "req-9",
        "durationMs": 30000,
        "metadata": {"attempt": 2},
        "evidence": {"prompt_hash": "abc", "latency_ms": 30000},
    }
    body = await gql(client, FAILURE, {"input": data}, role="INGEST", sub="runtime")
    assert "errors" not in body, body
    got = body["data"]["recordLlmFailure"]
    assert {k: got[k] for k in got if k != "id"} == {
        "runId": run["id"],
        "failureType": "TIMEOUT",
        "errorCode": "E42",
        "errorMessage": "model timed out",
        "model": "gpt-x",
        "requestId": "req-9",
        "durationMs": 30000,
        "metadata": {"attempt": 2},
        "evidence": [
            {
                "evidenceType": "LLM_FAILURE_CAPTURE",
                "evidenceData": {"prompt_hash": "abc", "latency_ms": 30000},
                "isImmutable": True,
            }
        ],
    }
    [stored_run] = [r for r in await all_rows(engine, t.runs) if r.id == run["id"]]
    assert (stored_run.status, stored_run.error_message) == ("FAILED", "E42: model timed out")
    assert isinstance(stored_run.completed_at, datetime)
    [audit] = await audit_rows(engine)
    assert (audit.operation, audit.entity_type, audit.entity_id) == (
        "recordLlmFailure",
        "run_failures",
        got["id"],
    )
    assert (audit.before["run"]["status"], audit.after["run"]["status"]) == ("RUNNING", "FAILED")
    # the evidence cannot be changed afterwards
    async with engine.connect() as conn:
        with pytest.raises(Exception, match="failure_evidence"):
            await conn.execute(text("UPDATE failure_evidence SET evidence_data = '{}'"))
    # without a code or message the failure type stands in
    body = await gql(
        client,
        FAILURE,
        {"input": {"runId": run["id"], "failureType": "EXCEPTION", "evidence": {}}},
        role="INGEST",
    )
    assert "errors" not in body, body
    [stored_run] = [r for r in await all_rows(engine, t.runs) if r.id == run["id"]]
    assert stored_run.error_message == "EXCEPTION"


async def test_llm_failure_for_a_foreign_run_or_bad_input_writes_nothing(client, engine):
    theirs = run_row("t2")
    await insert_rows(engine, t.runs, [theirs])
    body = await gql(
        client,
        FAILURE,
        {"input": {"runId": theirs["id"], "failureType": "TIMEOUT", "evidence": {}}},
        role="INGEST",
    )
    assert error_codes(body) == ["NOT_FOUND"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"evidence": "text"}, "evidence"),
        ({"evidence": {}, "durationMs": -1}, "durationMs"),
        ({"evidence": {}, "errorCode": "c" * 65}, "errorCode"),
    ]
    for extra, field in cases:
        data = {"runId": theirs["id"], "failureType": "TIMEOUT", **extra}
        body = await gql(client, FAILURE, {"input": data}, role="INGEST")
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["extensions"]["field"] == field
    assert await all_rows(engine, t.run_failures) == []
    [stored] = [r for r in await all_rows(engine, t.runs) if r.id == theirs["id"]]
    assert stored.status == "RUNNING"
    assert await audit_rows(engine) == []


async def test_policy_violation_over_the_hourly_cap_links_the_overflow_incident(client, engine):
    await away_from_window_edge()
    recent = datetime.now(UTC) - timedelta(minutes=10)
    await insert_rows(engine, t.incidents, [incident_row(created_at=recent) for _ in range(20)])
    body = await gql(client, VIOLATION, {"input": violation()}, role="INGEST")
    res = body["data"]["recordPolicyViolation"]
    assert (res["created"], res["overflow"]) == (True, True)
    assert res["incident"]["triggerType"] == "RATE_LIMIT_OVERFLOW"
    assert res["violation"]["incidentId"] == res["incident"]["id"]
    assert res["truthCheck"]["passed"] is True
    events = await all_rows(engine, t.incident_events)
    assert [e.event_type for e in events] == ["INCIDENT_CREATED", "EVIDENCE_CAPTURED"]


async def test_a_failed_violation_write_leaves_nothing_behind(client, engine):
    async with refusing(engine, "incident_evidence"):
        body = await gql(client, VIOLATION, {"input": violation()}, role="INGEST")
    assert error_codes(body) == ["INTERNAL"]
    for table in (t.policy_violations, t.incidents, t.incident_events, t.audit_log):
        assert await all_rows(engine, table) == []
