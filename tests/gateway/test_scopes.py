"""Scoped execution of recovery actions over HTTP (DOMAIN.md §3.6) and the expiry job."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drivers import tables as t
from resolvers.scopes import expire_scopes
from tests.factories import incident_row, insert_rows
from tests.factories_controls import audits, rows, scope_row
from tests.factories_refs import seed_incident
from tests.helpers import error_codes, gql

CREATE = """mutation($input: RecoveryScopeInput!) { createRecoveryScope(input: $input) {
  id incidentId allowedActions intent maxCostUsd costUsedUsd maxAttempts attemptsUsed
  attemptsRemaining status createdBy createdAt expiresAt targetAgents executions
} }"""
EXECUTE = """mutation($input: ExecuteWithScopeInput!) { executeWithScope(input: $input) {
  attemptNumber scopeStatus attemptsRemaining costUsedUsd evidenceId
  scope { id status executions }
} }"""
REVOKE = """mutation($id: ID!) { revokeScope(id: $id) { id status revokedBy revokedAt } }"""


async def _incident(engine, tenant: str = "t1") -> str:
    row = incident_row(tenant)
    await insert_rows(engine, t.incidents, [row])
    return str(row["id"])


async def _scope(engine, incident_id: str, **over: Any) -> str:
    row = scope_row(incident_id, **over)
    async with engine.begin() as conn:
        inserted = await conn.execute(
            t.execution_scopes.insert().values(**row).returning(t.execution_scopes.c.id)
        )
        return str(inserted.scalar_one())


def _exec(scope_id: str | None, incident_id: str, **over: Any) -> dict[str, Any]:
    return {"input": {"scopeId": scope_id, "incidentId": incident_id, "action": "RETRY"} | over}


async def test_create_scope_defaults(client, engine):
    inc = await _incident(engine)
    before = datetime.now(UTC)
    body = await gql(
        client, CREATE, {"input": {"incidentId": inc, "action": "RETRY"}}, role="OPERATOR", sub="op"
    )
    assert "errors" not in body, body
    got = body["data"]["createRecoveryScope"]
    assert got["id"].startswith("scope_") and len(got["id"]) == 6 + 24
    assert {k: got[k] for k in got if k not in ("id", "createdAt", "expiresAt")} == {
        "incidentId": inc,
        "allowedActions": ["RETRY"],
        "intent": f"Recovery action for incident {inc}",
        "maxCostUsd": "0.5000",
        "costUsedUsd": "0.0000",
        "maxAttempts": 1,
        "attemptsUsed": 0,
        "attemptsRemaining": 1,
        "status": "ACTIVE",
        "createdBy": "op",
        "targetAgents": None,
        "executions": [],
    }
    ttl = datetime.fromisoformat(got["expiresAt"]) - datetime.fromisoformat(got["createdAt"])
    assert ttl == timedelta(seconds=300)
    assert datetime.fromisoformat(got["createdAt"]) >= before
    [audit] = await audits(engine, "createRecoveryScope")
    assert (audit.entity_type, audit.entity_id) == ("execution_scopes", got["id"])


async def test_create_for_foreign_or_missing_incident_is_not_found(client, engine):
    theirs = await _incident(engine, "t2")
    for inc in (theirs, "missing"):
        body = await gql(client, CREATE, {"input": {"incidentId": inc, "action": "RETRY"}})
        assert error_codes(body) == ["NOT_FOUND"]
    assert await rows(engine, t.execution_scopes) == []


@pytest.mark.parametrize(
    ("_case", "over", "field"),
    [
        ("no_action", {"action": ""}, "action"),
        ("negative_cost", {"maxCostUsd": "-1"}, "maxCostUsd"),
        ("zero_attempts", {"maxAttempts": 0}, "maxAttempts"),
        ("zero_ttl", {"ttlSeconds": 0}, "ttlSeconds"),
    ],
)
async def test_create_validation(client, engine, _case, over, field):
    inc = await _incident(engine)
    body = await gql(client, CREATE, {"input": {"incidentId": inc, "action": "RETRY"} | over})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field


async def test_execute_success_writes_evidence_and_exhausts(client, engine):
    inc = await _incident(engine)
    scope = await _scope(engine, inc, max_attempts=2, max_cost_usd="0.50")
    first = (await gql(client, EXECUTE, _exec(scope, inc)))["data"]["executeWithScope"]
    assert (
        first["attemptNumber"],
        first["scopeStatus"],
        first["attemptsRemaining"],
        first["costUsedUsd"],
    ) == (1, "ACTIVE", 1, "0.1000")
    second = (await gql(client, EXECUTE, _exec(scope, inc, costUsd="0.25")))["data"][
        "executeWithScope"
    ]
    assert (
        second["attemptNumber"],
        second["scopeStatus"],
        second["attemptsRemaining"],
        second["costUsedUsd"],
    ) == (2, "EXHAUSTED", 0, "0.3500")
    log = second["scope"]["executions"]
    assert [(e["action"], e["cost_usd"], e["attempt"]) for e in log] == [
        ("RETRY", "0.1000", 1),
        ("RETRY", "0.2500", 2),
    ]
    evidence = await rows(engine, t.incident_evidence)
    assert sorted(
        (e.evidence_type, e.recovery_executed, e.payload["attempt"]) for e in evidence
    ) == [
        ("RECOVERY_ACTION", True, 1),
        ("RECOVERY_ACTION", True, 2),
    ]
    assert {e.payload["scope_id"] for e in evidence} == {scope}
    assert {e.id for e in evidence} == {first["evidenceId"], second["evidenceId"]}
    # third: exhausted
    third = await gql(client, EXECUTE, _exec(scope, inc))
    assert error_codes(third) == ["CONFLICT"]
    assert third["errors"][0]["extensions"]["reason"] == "SCOPE_EXHAUSTED"
    assert len(await audits(engine, "executeWithScope")) == 2


async def test_execute_refusals_in_order_consume_nothing(client, engine):
    inc = await _incident(engine)
    other_inc = await _incident(engine)
    theirs = await _scope(engine, await _incident(engine, "t2"), tenant="t2")
    active = await _scope(engine, inc, max_cost_usd="0.15")
    revoked = await _scope(engine, inc, status="REVOKED")
    expired_status = await _scope(engine, inc, status="EXPIRED")
    past = await _scope(engine, inc, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    used = await _scope(engine, inc, status="EXHAUSTED", attempts_used=1)

    async def reason(variables: dict[str, Any]) -> tuple[str, str]:
        body = await gql(client, EXECUTE, variables)
        [err] = body["errors"]
        return err["extensions"]["code"], err["extensions"]["reason"]

    assert await reason(_exec(None, inc)) == ("BAD_USER_INPUT", "SCOPED_EXECUTION_REQUIRED")
    assert await reason(_exec("", inc)) == ("BAD_USER_INPUT", "SCOPED_EXECUTION_REQUIRED")
    assert await reason(_exec("scope_missing", inc)) == ("NOT_FOUND", "SCOPE_NOT_FOUND")
    assert await reason(_exec(theirs, inc)) == ("NOT_FOUND", "SCOPE_NOT_FOUND")
    # state beats mismatch: a revoked scope for another incident is still SCOPE_REVOKED
    assert await reason(_exec(revoked, other_inc)) == ("CONFLICT", "SCOPE_REVOKED")
    assert await reason(_exec(expired_status, inc)) == ("CONFLICT", "SCOPE_EXPIRED")
    assert await reason(_exec(past, inc)) == ("CONFLICT", "SCOPE_EXPIRED")
    assert await reason(_exec(used, inc)) == ("CONFLICT", "SCOPE_EXHAUSTED")
    # incident mismatch beats action mismatch
    assert await reason(_exec(active, other_inc, action="SCALE")) == (
        "BAD_USER_INPUT",
        "SCOPE_INCIDENT_MISMATCH",
    )
    assert await reason(_exec(active, inc, action="SCALE")) == (
        "BAD_USER_INPUT",
        "SCOPE_ACTION_MISMATCH",
    )
    body = await gql(client, EXECUTE, _exec(active, inc, costUsd="0.20"))
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["reason"] == "SCOPE_BUDGET_EXCEEDED"
    assert (
        body["errors"][0]["message"] == "execution cost $0.20 exceeds remaining scope budget $0.15"
    )
    # nothing consumed, nothing written
    [row] = await rows(engine, t.execution_scopes, t.execution_scopes.c.id == active)
    assert (row.attempts_used, row.cost_used_usd, row.executions, row.status) == (
        0,
        0,
        [],
        "ACTIVE",
    )
    assert await rows(engine, t.incident_evidence) == []
    assert await audits(engine) == []


async def test_two_parallel_executions_of_a_one_attempt_scope(client, engine):
    inc = await _incident(engine)
    scope = await _scope(engine, inc)
    bodies = await asyncio.gather(*(gql(client, EXECUTE, _exec(scope, inc)) for _ in range(2)))
    assert sorted("errors" in b for b in bodies) == [False, True], bodies
    [loser] = [b for b in bodies if "errors" in b]
    assert loser["errors"][0]["extensions"]["reason"] == "SCOPE_EXHAUSTED"
    [row] = await rows(engine, t.execution_scopes)
    assert (row.attempts_used, row.status) == (1, "EXHAUSTED")
    assert len(await rows(engine, t.incident_evidence)) == 1


async def test_revoke(client, engine):
    inc = await _incident(engine)
    scope = await _scope(engine, inc)
    got = (await gql(client, REVOKE, {"id": scope}, role="OPERATOR", sub="op"))["data"][
        "revokeScope"
    ]
    assert (got["status"], got["revokedBy"]) == ("REVOKED", "op")
    again = await gql(client, REVOKE, {"id": scope})
    assert error_codes(again) == ["CONFLICT"]
    assert error_codes(await gql(client, REVOKE, {"id": "scope_missing"})) == ["NOT_FOUND"]
    assert error_codes(await gql(client, REVOKE, {"id": scope}, role="VIEWER")) == ["FORBIDDEN"]
    assert [a.operation for a in await audits(engine)] == ["revokeScope"]


async def test_expire_job(engine):
    inc = await _incident(engine)
    due = await _scope(engine, inc, expires_at=datetime.now(UTC) - timedelta(seconds=5))
    fresh = await _scope(engine, inc)
    done = await _scope(
        engine, inc, status="REVOKED", expires_at=datetime.now(UTC) - timedelta(hours=1)
    )
    assert await expire_scopes(engine) == 1
    status = {r.id: r.status for r in await rows(engine, t.execution_scopes)}
    assert status == {due: "EXPIRED", fresh: "ACTIVE", done: "REVOKED"}
    assert await expire_scopes(engine, now=datetime.now(UTC) + timedelta(hours=1)) == 1
    [a1, a2] = await audits(engine)
    assert (a1.operation, a1.actor_role, a1.entity_id, a1.request_id) == (
        "expire_scopes",
        "SYSTEM",
        due,
        None,
    )
    assert a2.entity_id == fresh


async def test_execution_scopes_query_and_nested_field_are_batched(
    client, engine, count_statements
):
    counts = {}
    for tenant, n in (("small", 2), ("large", 40)):
        incs = [incident_row(tenant) for _ in range(n)]
        await insert_rows(engine, t.incidents, incs)
        await insert_rows(
            engine, t.execution_scopes, [scope_row(i["id"], tenant) for i in incs for _ in range(2)]
        )
        count_statements.reset()
        body = await gql(
            client,
            "{ incidents(first: 100) { nodes { id executionScopes { id incidentId status } } } }",
            tenant=tenant,
        )
        assert "errors" not in body, body
        nodes = body["data"]["incidents"]["nodes"]
        assert len(nodes) == n and all(len(x["executionScopes"]) == 2 for x in nodes)
        assert all(s["incidentId"] == x["id"] for x in nodes for s in x["executionScopes"])
        counts[tenant] = count_statements.count
    assert counts == {"small": 2, "large": 2}
    inc = incs[0]["id"]
    query = "query($id: ID!) { executionScopes(incidentId: $id) { id } }"
    assert (
        len((await gql(client, query, {"id": inc}, tenant="large"))["data"]["executionScopes"]) == 2
    )
    assert (await gql(client, query, {"id": inc}, tenant="small"))["data"]["executionScopes"] == []


async def test_recovery_scope_dry_run_writes_nothing(client, engine):
    query = """mutation($input: TestRecoveryScopeInput!) { testRecoveryScope(input: $input) {
      mode success issues estimatedCostCents coverage samples scopeFraction timeoutMs executionHash
    } }"""
    await seed_incident(engine, "i1")
    dry = (await gql(client, query, {"input": {"incidentId": "i1", "riskClass": "HIGH"}}))["data"][
        "testRecoveryScope"
    ]
    assert dry["success"] is False and len(dry["issues"]) == 2
    assert (dry["estimatedCostCents"], dry["samples"], dry["scopeFraction"], dry["timeoutMs"]) == (
        20,
        0,
        0.1,
        30000,
    )
    scoped = (
        await gql(
            client,
            query,
            {
                "input": {
                    "incidentId": "i1",
                    "actionType": "SCALE",
                    "mode": "AGENT_SUBSET",
                    "scopeFraction": 5,
                }
            },
        )
    )["data"]["testRecoveryScope"]
    assert (
        scoped["success"],
        scoped["samples"],
        scoped["scopeFraction"],
        scoped["estimatedCostCents"],
    ) == (True, 100, 1.0, 100)
    assert len(scoped["executionHash"]) == 16
    # nothing but one audit row per call, marked as a dry run (issue #15 item 7)
    assert await rows(engine, t.execution_scopes) == []
    assert await rows(engine, t.incident_evidence) == []
    logged = await audits(engine)
    assert [(a.operation, a.entity_type, a.entity_id) for a in logged] == [
        ("testRecoveryScope", "incidents", "i1")
    ] * 2
    assert all(a.after["dry_run"] is True and a.before is None for a in logged)
    assert logged[1].after["result"]["execution_hash"] == scoped["executionHash"]
    assert logged[1].after["request"]["mode"] == "AGENT_SUBSET"
