"""Run.thresholdEvaluation (§3.4) and Run.policyEvaluation (§3.13) on read, batched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from drivers import tables as t
from tests.factories import NOW, insert_limits, insert_rows, limit_row
from tests.factories_incwrites import run_row
from tests.gateway.test_thresholds import _threshold
from tests.helpers import gql, token

THRESHOLDS = """query($id: ID!) { run(id: $id) { thresholdEvaluation {
  runId state signals
  params { maxExecutionTimeMs maxTokens maxCostUsd failureSignal appliedLimitIds }
  opsEvents { eventType severity entityType entityId metadata }
} } }"""
POLICY = """query($id: ID!) { run(id: $id) {
  policyEvaluation { evaluationId runId outcome confidence }
} }"""


async def _evaluation(client: Any, run_id: str) -> dict[str, Any]:
    body = await gql(client, THRESHOLDS, {"id": run_id}, role="VIEWER")
    assert "errors" not in body, body
    got: dict[str, Any] = body["data"]["run"]["thresholdEvaluation"]
    return got


async def test_running_run_is_measured_to_now_against_its_agent_params(client, engine):
    # given: an AGENT limit for agent-7 lowers the tokens; a TENANT limit lowers the time
    agent = _threshold("AGENT", {"max_tokens": 256}, 5, scope_id="agent-7")
    tenant = _threshold("TENANT", {"max_execution_time_ms": 60000}, 10)
    other = _threshold("AGENT", {"max_tokens": 100000}, 1, scope_id="agent-8")
    await insert_limits(engine, [agent, tenant, other])
    now = datetime.now(UTC)  # RUNNING runs are measured to the present, not to import time
    slow = run_row(started_at=now - timedelta(minutes=2), input_tokens=200, output_tokens=57)
    fine = run_row(started_at=now - timedelta(seconds=1), input_tokens=200, output_tokens=56)
    queued = run_row(status="QUEUED", started_at=None, input_tokens=999, output_tokens=0)
    await insert_rows(engine, t.runs, [slow, fine, queued])
    # when
    got = await _evaluation(client, slow["id"])
    # then: 2 min > 60 s and 257 > 256 tokens; cost and failure are for finished runs only
    assert got["signals"] == ["EXECUTION_TIME_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"]
    assert got["state"] == "RUNNING" and got["runId"] == slow["id"]
    assert got["params"] == {
        "maxExecutionTimeMs": 60000,
        "maxTokens": 256,
        "maxCostUsd": 1.0,
        "failureSignal": True,
        "appliedLimitIds": [tenant["id"], agent["id"]],
    }
    params_used = {
        "max_execution_time_ms": 60000,
        "max_tokens": 256,
        "max_cost_usd": 1.0,
        "failure_signal": True,
    }
    assert got["opsEvents"] == [
        {
            "eventType": "INFRA_LIMIT_HIT",
            "severity": 2,
            "entityType": "LLM_CALL",
            "entityId": slow["id"],
            "metadata": {
                "signal": signal,
                "state": "RUNNING",
                "params_used": params_used,
                "domain": "llm_runs",
            },
        }
        for signal in ("EXECUTION_TIME_EXCEEDED", "TOKEN_LIMIT_EXCEEDED")
    ]
    assert (await _evaluation(client, fine["id"]))["signals"] == []
    assert (await _evaluation(client, queued["id"]))["signals"] == []


async def test_completed_runs_are_measured_to_completion_with_cost_and_failure(client, engine):
    await insert_limits(engine, [_threshold("PROJECT", {"max_cost_usd": 0.5}, 5, scope_id="p9")])
    started = NOW - timedelta(hours=3)
    failed = run_row(
        status="FAILED",
        project_id="p9",
        started_at=started,
        completed_at=started + timedelta(seconds=61),
        estimated_cost_usd=Decimal("0.500001"),
        input_tokens=8000,
        output_tokens=192,
    )
    ok = run_row(
        status="SUCCEEDED",
        project_id="p9",
        started_at=started,
        completed_at=started + timedelta(seconds=60),
        estimated_cost_usd=Decimal("0.500000"),
    )
    cheap_fail = run_row(status="FAILED", started_at=started, completed_at=started)
    await insert_rows(engine, t.runs, [failed, ok, cheap_fail])
    got = await _evaluation(client, failed["id"])
    assert got["signals"] == ["EXECUTION_TIME_EXCEEDED", "COST_LIMIT_EXCEEDED", "RUN_FAILED"]
    assert [(e["eventType"], e["severity"]) for e in got["opsEvents"]] == [
        ("INFRA_LIMIT_HIT", 2),
        ("INFRA_LIMIT_HIT", 2),
        ("LLM_CALL_FAILED", 3),
    ]
    assert got["opsEvents"][2]["metadata"]["state"] == "FAILED"
    # exactly at the limits (60 s, $0.50, 8192 tokens) nothing is exceeded
    assert (await _evaluation(client, ok["id"]))["signals"] == []
    # failure_signal false silences RUN_FAILED (a tenant-wide limit)
    assert (await _evaluation(client, cheap_fail["id"]))["signals"] == ["RUN_FAILED"]
    await insert_limits(engine, [_threshold("TENANT", {"failure_signal": False}, 1)])
    assert (await _evaluation(client, cheap_fail["id"]))["signals"] == []


async def test_policy_evaluation_outcomes(client, engine):
    runs = {
        s: run_row(id=f"{s.lower()}-run-0001", status=s)
        for s in ("SUCCEEDED", "FAILED", "HALTED", "CANCELLED", "RUNNING")
    }
    violated = run_row(id="abcdefgh-violated", status="SUCCEEDED")
    await insert_rows(engine, t.runs, [*runs.values(), violated])
    await insert_rows(
        engine,
        t.policy_violations,
        [
            {
                "id": "v1",
                "tenant_id": "t1",
                "run_id": violated["id"],
                "policy_id": "pol",
                "violated_rule": "no pii",
            },
            # another tenant's violation on a same-id run does not count
            {
                "id": "v2",
                "tenant_id": "t2",
                "run_id": runs["FAILED"]["id"],
                "policy_id": "pol",
                "violated_rule": "no pii",
            },
        ],
    )
    got = {}
    for run in [*runs.values(), violated]:
        body = await gql(client, POLICY, {"id": run["id"]}, role="VIEWER")
        got[run["id"]] = body["data"]["run"]["policyEvaluation"]
    assert {k: (v["outcome"], v["confidence"]) for k, v in got.items()} == {
        "succeeded-run-0001": ("NO_VIOLATION", 1.0),
        "failed-run-0001": ("NOT_APPLICABLE", 0.0),
        "halted-run-0001": ("ADVISORY", 0.0),
        "cancelled-run-0001": ("NOT_APPLICABLE", 0.0),
        "running-run-0001": ("NOT_APPLICABLE", 0.0),
        "abcdefgh-violated": ("VIOLATION_INCIDENT", 1.0),
    }
    assert got["abcdefgh-violated"]["evaluationId"] == "policy_eval_abcdefgh"
    assert got["abcdefgh-violated"]["runId"] == "abcdefgh-violated"


async def test_evaluations_of_a_run_list_cost_two_statements_and_fall_back_from_compiled(
    client, compiled_client, engine, count_statements
):
    await insert_limits(engine, [_threshold("TENANT", {"max_tokens": 256}, 5)])
    for tenant, n in (("small", 2), ("large", 40)):
        await insert_rows(engine, t.runs, [run_row(tenant, output_tokens=500) for _ in range(n)])
        await insert_rows(
            engine,
            t.limits,
            [limit_row(tenant, limit_category="THRESHOLD", reset_period=None, status="DISABLED")],
        )
    query = """{ runs(first: 50) { nodes { id thresholdEvaluation { signals }
      policyEvaluation { outcome } } } }"""
    counts = {}
    for tenant, n in (("small", 2), ("large", 40)):
        count_statements.reset()
        body = await gql(client, query, tenant=tenant)
        nodes = body["data"]["runs"]["nodes"]
        assert len(nodes) == n
        # started 10 minutes ago (> 60 s by default); 550 tokens < 8192
        assert all(
            x["thresholdEvaluation"]["signals"] == ["EXECUTION_TIME_EXCEEDED"] for x in nodes
        )
        counts[tenant] = count_statements.count
    # the page, the threshold limits once, the violation counts once
    assert counts == {"small": 3, "large": 3}
    headers = {"authorization": f"Bearer {token('large')}"}
    answer = await compiled_client.post("/graphql", json={"query": query}, headers=headers)
    assert answer.headers["x-gateway-read-path"] == "resolver"
    assert answer.json()["data"]["runs"]["nodes"][0]["policyEvaluation"] == {
        "outcome": "NOT_APPLICABLE"
    }
