"""recordLimitBreach (a mandatory governance write) and the limitBreaches list (DOMAIN.md §3.2)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from drivers import tables as t
from tests.factories import NOW, breach_row, incident_row, insert_rows, make_limits
from tests.factories_controls import audits, failing_inserts, rows, run_row
from tests.helpers import error_codes, gql

RECORD = """mutation($input: RecordLimitBreachInput!) { recordLimitBreach(input: $input) {
  id limitId runId incidentId breachType valueAtBreach limitValue details breachedAt
  limit { id name } incident { id } run { id status }
} }"""
LIST = """query($filter: BreachFilter, $first: Int = 20, $after: String) {
  limitBreaches(first: $first, after: $after, filter: $filter) {
    totalCount nodes { id breachType limit { id name } incident { id title } run { id } }
    pageInfo { hasNextPage endCursor }
} }"""


async def _metric(client, breach_type: str) -> float:
    text = (await client.get("/metrics")).text
    match = re.search(
        rf'^gateway_limit_breaches_total\{{breach_type="{breach_type}"\}} (\S+)$', text, re.M
    )
    return float(match.group(1)) if match else 0.0


async def test_record_breach_with_run_and_incident(client, engine):
    [lim] = await make_limits(engine, 1, name="Spend")
    run, inc = run_row(), incident_row()
    await insert_rows(engine, t.runs, [run])
    await insert_rows(engine, t.incidents, [inc])
    before = await _metric(client, "EXHAUSTED")
    body = await gql(
        client,
        RECORD,
        {
            "input": {
                "limitId": lim["id"],
                "breachType": "EXHAUSTED",
                "valueAtBreach": "130.5",
                "runId": run["id"],
                "incidentId": inc["id"],
                "details": {"source": "meter"},
            }
        },
        role="INGEST",
        sub="meter",
    )
    assert "errors" not in body, body
    got = body["data"]["recordLimitBreach"]
    assert (got["breachType"], got["valueAtBreach"], got["limitValue"]) == (
        "EXHAUSTED",
        "130.5000",
        "100.0000",  # defaults to the limit's effective value
    )
    assert (got["runId"], got["incidentId"], got["details"]) == (
        run["id"],
        inc["id"],
        {"source": "meter"},
    )
    assert got["limit"] == {"id": lim["id"], "name": "Spend"}
    assert got["incident"] == {"id": inc["id"]}
    assert got["run"] == {"id": run["id"], "status": run["status"]}
    [audit] = await audits(engine, "recordLimitBreach")
    assert (audit.entity_type, audit.entity_id, audit.actor_role) == (
        "limit_breaches",
        got["id"],
        "INGEST",
    )
    assert await _metric(client, "EXHAUSTED") == before + 1


@pytest.mark.parametrize("which", ["limitId", "runId", "incidentId"])
async def test_missing_or_foreign_references_are_not_found(client, engine, which):
    [lim] = await make_limits(engine, 1)
    [their_lim] = await make_limits(engine, 1, tenant="t2")
    their_run, their_inc = run_row("t2"), incident_row("t2")
    await insert_rows(engine, t.runs, [their_run])
    await insert_rows(engine, t.incidents, [their_inc])
    foreign = {"limitId": their_lim["id"], "runId": their_run["id"], "incidentId": their_inc["id"]}
    for value in (foreign[which], "missing"):
        data = {"limitId": lim["id"], "breachType": "BREACHED", which: value}
        body = await gql(client, RECORD, {"input": data}, role="INGEST")
        assert error_codes(body) == ["NOT_FOUND"], body
        assert body["errors"][0]["extensions"]["field"] == which
    assert await rows(engine, t.limit_breaches) == []


async def test_bad_breach_type_is_bad_user_input(client, engine):
    [lim] = await make_limits(engine, 1)
    body = await gql(
        client, RECORD, {"input": {"limitId": lim["id"], "breachType": "NOPE"}}, role="INGEST"
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_failure_after_validation_is_governance_error_and_writes_nothing(client, engine):
    [lim] = await make_limits(engine, 1)
    before = await _metric(client, "THROTTLED")
    async with failing_inserts(engine, "limit_breaches"):
        body = await gql(
            client,
            RECORD,
            {"input": {"limitId": lim["id"], "breachType": "THROTTLED"}},
            role="INGEST",
        )
    assert error_codes(body) == ["GOVERNANCE_ERROR"], body
    ext = body["errors"][0]["extensions"]
    assert (ext["domain"], ext["operation"], ext["entityId"]) == (
        "Policies",
        "recordLimitBreach",
        lim["id"],
    )
    assert await rows(engine, t.limit_breaches) == []
    assert await audits(engine) == []
    assert await _metric(client, "THROTTLED") == before


async def test_audit_failure_also_rolls_the_breach_back(client, engine):
    [lim] = await make_limits(engine, 1)
    async with failing_inserts(engine, "audit_log"):
        body = await gql(
            client,
            RECORD,
            {"input": {"limitId": lim["id"], "breachType": "VIOLATED"}},
            role="ADMIN",
        )
    assert error_codes(body) == ["GOVERNANCE_ERROR"]
    assert await rows(engine, t.limit_breaches) == []


async def test_viewer_cannot_record(client, engine):
    [lim] = await make_limits(engine, 1)
    body = await gql(
        client, RECORD, {"input": {"limitId": lim["id"], "breachType": "BREACHED"}}, role="VIEWER"
    )
    assert error_codes(body) == ["FORBIDDEN"]


async def test_list_filters_and_foreign_rows(client, engine):
    a, b = await make_limits(engine, 2)
    [theirs] = await make_limits(engine, 1, tenant="t2")
    run = run_row()
    inc = incident_row()
    await insert_rows(engine, t.runs, [run])
    await insert_rows(engine, t.incidents, [inc])
    own = [
        breach_row(a["id"], breached_at=NOW - timedelta(hours=1), run_id=run["id"]),
        breach_row(a["id"], breached_at=NOW - timedelta(days=3), breach_type="THROTTLED"),
        breach_row(b["id"], breached_at=NOW - timedelta(hours=2), incident_id=inc["id"]),
    ]
    for row in [*own, breach_row(theirs["id"], "t2")]:
        await insert_rows(engine, t.limit_breaches, [row])

    async def ids(filter_: dict[str, Any] | None) -> list[str]:
        body = await gql(client, LIST, {"filter": filter_})
        assert "errors" not in body, body
        return [n["id"] for n in body["data"]["limitBreaches"]["nodes"]]

    assert await ids(None) == [own[0]["id"], own[2]["id"], own[1]["id"]]
    assert await ids({"limitId": a["id"]}) == [own[0]["id"], own[1]["id"]]
    assert await ids({"runId": run["id"]}) == [own[0]["id"]]
    assert await ids({"breachType": "THROTTLED"}) == [own[1]["id"]]
    assert await ids({"since": (NOW - timedelta(days=1)).isoformat()}) == [
        own[0]["id"],
        own[2]["id"],
    ]
    assert await ids({"limitId": theirs["id"]}) == []


async def test_breach_list_statement_count_does_not_grow(client, engine, count_statements):
    counts = {}
    for tenant, n in (("small", 3), ("large", 60)):
        limits = await make_limits(engine, n, tenant)
        incs = [incident_row(tenant) for _ in range(n)]
        runs = [run_row(tenant) for _ in range(n)]
        await insert_rows(engine, t.incidents, incs)
        await insert_rows(engine, t.runs, runs)
        await insert_rows(
            engine,
            t.limit_breaches,
            [
                breach_row(lim["id"], tenant, incident_id=inc["id"], run_id=run["id"])
                for lim, inc, run in zip(limits, incs, runs, strict=True)
            ],
        )
        count_statements.reset()
        body = await gql(client, LIST, {"first": 100}, tenant=tenant)
        assert "errors" not in body, body
        nodes = body["data"]["limitBreaches"]["nodes"]
        assert len(nodes) == n and all(x["incident"] and x["limit"] and x["run"] for x in nodes)
        counts[tenant] = count_statements.count
    # page + count + limits batch + incidents batch + runs batch
    assert counts == {"small": 5, "large": 5}
