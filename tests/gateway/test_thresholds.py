"""Threshold params, signals and budget halts over HTTP (DOMAIN.md §3.4-3.5)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from drivers import tables as t
from tests.factories import NOW, insert_limits, insert_rows, limit_row
from tests.factories_controls import audits, rows, run_row, signal_row
from tests.factories_refs import RUN_IDS, seed_runs
from tests.helpers import error_codes, gql

EFFECTIVE = """query($agent: String, $project: String) {
  effectiveThresholds(agentId: $agent, projectId: $project) {
    maxExecutionTimeMs maxTokens maxCostUsd failureSignal appliedLimitIds
} }"""
RECORD = """mutation($input: RecordThresholdSignalInput!) { recordThresholdSignal(input: $input) {
  id signalId runId policyId signalType metric currentValue thresholdValue percentage actionTaken
  acknowledged
} }"""
ACK = """mutation($id: ID!) { acknowledgeThresholdSignal(id: $id) {
  id acknowledged acknowledgedBy acknowledgedAt currentValue
} }"""
DEFAULTS = {
    "maxExecutionTimeMs": 60000,
    "maxTokens": 8192,
    "maxCostUsd": 1.0,
    "failureSignal": True,
    "appliedLimitIds": [],
}


@pytest.fixture(autouse=True)
async def _known_runs(engine):
    """The runs these tests' inputs name (an unknown run is NOT_FOUND)."""
    await seed_runs(engine, *RUN_IDS)


def _threshold(scope: str, params: dict[str, Any], minutes_ago: int, **over: Any) -> dict[str, Any]:
    return limit_row(
        limit_category="THRESHOLD",
        reset_period=None,
        scope=scope,
        params=params,
        created_at=NOW - timedelta(minutes=minutes_ago),
        **over,
    )


async def _effective(client, **variables: Any) -> dict[str, Any]:
    body = await gql(client, EFFECTIVE, variables)
    assert "errors" not in body, body
    got: dict[str, Any] = body["data"]["effectiveThresholds"]
    return got


async def test_defaults_when_nothing_applies(client, engine):
    await insert_limits(engine, [_threshold("GLOBAL", {"max_tokens": 1000}, 5, tenant_id="t2")])
    assert await _effective(client) == DEFAULTS


async def test_precedence_agent_project_tenant_global_newest_wins(client, engine):
    g = _threshold("GLOBAL", {"max_tokens": 1000, "max_cost_usd": 2.0, "failure_signal": False}, 50)
    t_old = _threshold("TENANT", {"max_tokens": 2000, "max_cost_usd": 3.0}, 40)
    t_new = _threshold("TENANT", {"max_tokens": 2500}, 30)
    p = _threshold("PROJECT", {"max_tokens": 3000}, 60, scope_id="p1")
    p_other = _threshold("PROJECT", {"max_tokens": 9999}, 1, scope_id="p2")
    a = _threshold("AGENT", {"max_tokens": 4000, "max_execution_time_ms": 5000}, 70, scope_id="a1")
    disabled = _threshold("AGENT", {"max_tokens": 7777}, 1, scope_id="a1", status="DISABLED")
    budget = limit_row(scope="AGENT", scope_id="a1", params={"max_tokens": 8888})
    await insert_limits(engine, [g, t_old, t_new, p, p_other, a, disabled, budget])
    assert await _effective(client) == {
        "maxExecutionTimeMs": 60000,
        "maxTokens": 2500,  # newest TENANT beats the older TENANT and GLOBAL
        "maxCostUsd": 3.0,
        "failureSignal": False,
        "appliedLimitIds": [g["id"], t_old["id"], t_new["id"]],
    }
    got = await _effective(client, project="p1")
    assert got["maxTokens"] == 3000  # PROJECT beats TENANT though it is older
    got = await _effective(client, project="p1", agent="a1")
    assert (got["maxTokens"], got["maxExecutionTimeMs"], got["maxCostUsd"]) == (4000, 5000, 3.0)
    assert got["appliedLimitIds"] == [g["id"], t_old["id"], t_new["id"], p["id"], a["id"]]
    assert (await _effective(client, agent="a2"))["maxTokens"] == 2500


async def test_invalid_merged_params_fall_back_to_defaults(client, engine):
    # written directly (the API refuses it): an out-of-range value poisons the merge
    bad = _threshold("TENANT", {"max_tokens": 10}, 5)
    await insert_limits(engine, [bad, _threshold("GLOBAL", {"max_cost_usd": 5.0}, 10)])
    got = await _effective(client)
    assert {k: v for k, v in got.items() if k != "appliedLimitIds"} == {
        k: v for k, v in DEFAULTS.items() if k != "appliedLimitIds"
    }


async def test_record_near_and_breach_signals_with_percentages(client, engine):
    near = await gql(
        client,
        RECORD,
        {
            "input": {
                "runId": "run-1",
                "policyId": "pol-1",
                "signalType": "NEAR",
                "metric": "COST",
                "currentValue": 85,
                "thresholdValue": 100,
            }
        },
        role="INGEST",
    )
    assert "errors" not in near, near
    got = near["data"]["recordThresholdSignal"]
    assert got["id"] == got["signalId"] and got["signalId"].startswith("SIG-")
    assert len(got["signalId"]) == 16
    assert (got["percentage"], got["actionTaken"], got["acknowledged"]) == (85.0, None, False)
    zero_near = await gql(
        client,
        RECORD,
        {
            "input": {
                "runId": "run-1",
                "policyId": "pol-1",
                "signalType": "NEAR",
                "metric": "TOKEN_USAGE",
                "currentValue": 5,
                "thresholdValue": 0,
            }
        },
        role="INGEST",
    )
    assert zero_near["data"]["recordThresholdSignal"]["percentage"] == 0.0
    breach_input = {
        "runId": "run-1",
        "policyId": "pol-1",
        "signalType": "BREACH",
        "metric": "LATENCY",
        "currentValue": 150,
        "thresholdValue": 120,
        "actionTaken": "STOP",
    }
    breach = await gql(client, RECORD, {"input": breach_input}, role="INGEST")
    assert breach["data"]["recordThresholdSignal"]["percentage"] == 125.0
    zero = await gql(client, RECORD, {"input": breach_input | {"thresholdValue": 0}}, role="INGEST")
    assert zero["data"]["recordThresholdSignal"]["percentage"] == 100.0
    assert len(await audits(engine, "recordThresholdSignal")) == 4


@pytest.mark.parametrize(
    ("_case", "over", "field"),
    [
        ("breach_without_action", {"signalType": "BREACH"}, "actionTaken"),
        ("near_with_action", {"actionTaken": "PAUSE"}, "actionTaken"),
        ("long_run", {"runId": "r" * 65}, "runId"),
        ("empty_policy", {"policyId": ""}, "policyId"),
    ],
)
async def test_record_signal_validation(client, engine, _case, over, field):
    data = {
        "runId": "run-1",
        "policyId": "pol-1",
        "signalType": "NEAR",
        "metric": "COST",
        "currentValue": 1,
        "thresholdValue": 2,
    } | over
    body = await gql(client, RECORD, {"input": data}, role="INGEST")
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert await rows(engine, t.threshold_signals) == []


async def test_acknowledge_once_then_conflict_and_foreign_is_not_found(client, engine):
    mine, theirs = signal_row(), signal_row("t2")
    await insert_rows(engine, t.threshold_signals, [mine, theirs])
    got = (await gql(client, ACK, {"id": mine["signal_id"]}, role="OPERATOR", sub="op"))["data"][
        "acknowledgeThresholdSignal"
    ]
    assert (got["acknowledged"], got["acknowledgedBy"]) == (True, "op")
    again = await gql(client, ACK, {"id": mine["signal_id"]})
    assert error_codes(again) == ["CONFLICT"]
    assert error_codes(await gql(client, ACK, {"id": theirs["signal_id"]})) == ["NOT_FOUND"]
    assert error_codes(await gql(client, ACK, {"id": mine["signal_id"]}, role="VIEWER")) == [
        "FORBIDDEN"
    ]
    [audit] = await audits(engine)
    assert (audit.operation, audit.entity_type, audit.entity_id) == (
        "acknowledgeThresholdSignal",
        "threshold_signals",
        mine["signal_id"],
    )


async def test_signals_are_immutable_except_ack_and_alert_fields(engine):
    row = signal_row()
    await insert_rows(engine, t.threshold_signals, [row])
    sig = t.threshold_signals
    async with engine.begin() as conn:
        await conn.execute(
            update(sig)
            .where(sig.c.signal_id == row["signal_id"])
            .values(alert_sent=True, alert_channels=["UI"], acknowledged=True)
        )
    for change in ({"current_value": 1.0}, {"signal_type": "BREACH"}, {"run_id": "other"}):
        with pytest.raises(Exception, match="immutable"):
            async with engine.begin() as conn:
                await conn.execute(
                    update(sig).where(sig.c.signal_id == row["signal_id"]).values(**change)
                )
    [stored] = await rows(engine, sig)
    assert (stored.current_value, stored.alert_sent, stored.alert_channels) == (85.0, True, ["UI"])


async def test_signal_list_filters_and_pages(client, engine):
    signals = [
        signal_row(
            run_id="r1" if i % 2 else "r2",
            signal_type="BREACH" if i < 3 else "NEAR",
            action_taken="STOP" if i < 3 else None,
            timestamp=NOW - timedelta(minutes=i),
        )
        for i in range(7)
    ]
    await insert_rows(engine, t.threshold_signals, [*signals, signal_row("t2", action_taken=None)])
    query = """query($after: String, $run: String, $type: SignalType) {
      thresholdSignals(first: 3, after: $after, runId: $run, signalType: $type) {
        totalCount nodes { id } pageInfo { hasNextPage endCursor }
    } }"""
    seen: list[str] = []
    after = None
    while True:
        page = (await gql(client, query, {"after": after}))["data"]["thresholdSignals"]
        assert page["totalCount"] == 7
        seen += [n["id"] for n in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert seen == [s["signal_id"] for s in signals]
    r1 = (await gql(client, query, {"run": "r1"}))["data"]["thresholdSignals"]
    assert r1["totalCount"] == 3
    breach = (await gql(client, query, {"type": "BREACH", "run": "r2"}))["data"]["thresholdSignals"]
    assert [n["id"] for n in breach["nodes"]] == [signals[0]["signal_id"], signals[2]["signal_id"]]


async def test_budget_halts(client, engine):
    msg = "Hard budget limit reached: {}c consumed >= {}c limit"
    runs = [
        run_row(
            status="HALTED",
            error_message=msg.format(120, 100),
            completed_at=NOW - timedelta(minutes=1),
            plan_step_count=10,
            completed_step_count=4,
        ),
        run_row(
            status="HALTED",
            error_message=msg.format(55, 50),
            completed_at=NOW - timedelta(minutes=5),
        ),
        run_row(status="HALTED", error_message="Hard budget limit (unparsable)", completed_at=NOW),
        run_row(status="HALTED", error_message="Killed by operator", completed_at=NOW),
        run_row(status="FAILED", error_message=msg.format(1, 1), completed_at=NOW),
        run_row("t2", status="HALTED", error_message=msg.format(9, 9), completed_at=NOW),
    ]
    for run in runs:
        await insert_rows(engine, t.runs, [run])
    query = """query($first: Int) { budgetHalts(first: $first) {
      runId consumedCents limitCents totalSteps completedSteps stepCostCents
    } }"""
    body = await gql(client, query, {})
    assert body["data"]["budgetHalts"] == [
        {
            "runId": runs[0]["id"],
            "consumedCents": 120,
            "limitCents": 100,
            "totalSteps": 10,
            "completedSteps": 4,
            "stepCostCents": 0,
        },
        {
            "runId": runs[1]["id"],
            "consumedCents": 55,
            "limitCents": 50,
            "totalSteps": None,
            "completedSteps": 0,
            "stepCostCents": 0,
        },
    ]
    # `first` counts runs before the unparsable ones are skipped (newest completed first)
    one = await gql(client, query, {"first": 1})
    assert one["data"]["budgetHalts"] == []
