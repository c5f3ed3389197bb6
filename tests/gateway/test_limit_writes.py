"""createLimit / updateLimit / disableLimit over HTTP (DOMAIN.md §3.1)."""

from __future__ import annotations

from typing import Any

import pytest

from drivers import tables as t
from tests.factories import make_limits
from tests.factories_controls import audits, rows
from tests.helpers import error_codes, gql

CREATE = """mutation($input: CreateLimitInput!) { createLimit(input: $input) {
  id name limitCategory limitType scope scopeId maxValue resetPeriod windowSeconds params
  enforcement status effectiveValue breachCount30d
  integrity { integrityStatus integrityScore }
} }"""
UPDATE = """mutation($id: ID!, $input: UpdateLimitInput!) { updateLimit(id: $id, input: $input) {
  id name maxValue status params windowSeconds enforcement description
} }"""
DISABLE = """mutation($id: ID!) { disableLimit(id: $id) { id status updatedAt } }"""


def _budget(**over: Any) -> dict[str, Any]:
    return {
        "name": "Monthly spend",
        "limitCategory": "BUDGET",
        "limitType": "COST_USD",
        "maxValue": "100",
        "resetPeriod": "MONTHLY",
    } | over


async def test_create_budget_limit_writes_integrity_and_audit(client, engine):
    body = await gql(client, CREATE, {"input": _budget()})
    assert "errors" not in body, body
    got = body["data"]["createLimit"]
    assert got | {"id": None} == {
        "id": None,
        "name": "Monthly spend",
        "limitCategory": "BUDGET",
        "limitType": "COST_USD",
        "scope": "TENANT",
        "scopeId": None,
        "maxValue": "100.0000",
        "resetPeriod": "MONTHLY",
        "windowSeconds": None,
        "params": {},
        "enforcement": "BLOCK",
        "status": "ACTIVE",
        "effectiveValue": "100.0000",
        "breachCount30d": 0,
        "integrity": {"integrityStatus": "VERIFIED", "integrityScore": "1.0000"},
    }
    [audit] = await audits(engine, "createLimit")
    assert (audit.entity_type, audit.entity_id, audit.actor, audit.actor_role) == (
        "limits",
        got["id"],
        "alice",
        "ADMIN",
    )
    assert audit.before is None and audit.after["name"] == "Monthly spend"
    assert (
        len(await rows(engine, t.limit_integrity, t.limit_integrity.c.limit_id == got["id"])) == 1
    )


async def test_create_rate_and_threshold(client):
    rate = await gql(
        client,
        CREATE,
        {"input": _budget(limitCategory="RATE", resetPeriod=None, windowSeconds=60)},
    )
    assert rate["data"]["createLimit"]["windowSeconds"] == 60
    threshold = await gql(
        client,
        CREATE,
        {
            "input": _budget(
                limitCategory="THRESHOLD",
                resetPeriod=None,
                scope="AGENT",
                scopeId="agent-1",
                params={"max_tokens": 4096, "failure_signal": False},
            )
        },
    )
    assert "errors" not in threshold, threshold
    assert threshold["data"]["createLimit"]["params"] == {
        "max_tokens": 4096,
        "failure_signal": False,
    }


@pytest.mark.parametrize(
    ("_case", "override", "field"),
    [
        ("empty_name", {"name": ""}, "name"),
        ("long_name", {"name": "x" * 257}, "name"),
        ("long_type", {"limitType": "T" * 33}, "limitType"),
        ("long_description", {"description": "d" * 1025}, "description"),
        ("zero_max", {"maxValue": "0"}, "maxValue"),
        ("negative_max", {"maxValue": "-1"}, "maxValue"),
        ("budget_without_reset", {"resetPeriod": None}, "resetPeriod"),
        ("budget_with_window", {"windowSeconds": 60}, "windowSeconds"),
        ("budget_with_params", {"params": {"max_tokens": 300}}, "params"),
        ("budget_with_measurement", {"measurementWindowSeconds": 5}, "measurementWindowSeconds"),
        ("rate_without_window", {"limitCategory": "RATE", "resetPeriod": None}, "windowSeconds"),
        (
            "rate_with_reset",
            {"limitCategory": "RATE", "windowSeconds": 60},
            "resetPeriod",
        ),
        (
            "rate_zero_window",
            {"limitCategory": "RATE", "resetPeriod": None, "windowSeconds": 0},
            "windowSeconds",
        ),
        (
            "threshold_unknown_key",
            {"limitCategory": "THRESHOLD", "resetPeriod": None, "params": {"foo": 1}},
            "params.foo",
        ),
        (
            "threshold_tokens_low",
            {"limitCategory": "THRESHOLD", "resetPeriod": None, "params": {"max_tokens": 255}},
            "params.max_tokens",
        ),
        (
            "threshold_time_high",
            {
                "limitCategory": "THRESHOLD",
                "resetPeriod": None,
                "params": {"max_execution_time_ms": 300001},
            },
            "params.max_execution_time_ms",
        ),
        (
            "threshold_cost_low",
            {"limitCategory": "THRESHOLD", "resetPeriod": None, "params": {"max_cost_usd": 0.001}},
            "params.max_cost_usd",
        ),
        ("agent_without_scope_id", {"scope": "AGENT"}, "scopeId"),
        ("long_scope_id", {"scope": "AGENT", "scopeId": "s" * 101}, "scopeId"),
    ],
)
async def test_create_refuses_bad_input_and_writes_nothing(client, engine, _case, override, field):
    body = await gql(client, CREATE, {"input": _budget(**override)})
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == field
    assert await rows(engine, t.limits) == []
    assert await audits(engine) == []


async def test_create_needs_admin(client, engine):
    body = await gql(client, CREATE, {"input": _budget()}, role="OPERATOR")
    assert error_codes(body) == ["FORBIDDEN"]
    assert await rows(engine, t.limits) == []


async def test_update_changes_fields_and_audits_before_after(client, engine):
    [lim] = await make_limits(engine, 1)
    body = await gql(
        client,
        UPDATE,
        {"id": lim["id"], "input": {"name": "Renamed", "maxValue": "250.5", "enforcement": "WARN"}},
    )
    assert "errors" not in body, body
    assert body["data"]["updateLimit"] | {"id": None} == {
        "id": None,
        "name": "Renamed",
        "maxValue": "250.5000",
        "status": "ACTIVE",
        "params": {},
        "windowSeconds": None,
        "enforcement": "WARN",
        "description": None,
    }
    [audit] = await audits(engine, "updateLimit")
    assert audit.before["name"] == "Monthly spend" and audit.after["name"] == "Renamed"
    assert (audit.before["max_value"], audit.after["max_value"]) == ("100.0000", "250.5000")


@pytest.mark.parametrize(
    ("_case", "update", "field"),
    [
        ("category", {"limitCategory": "RATE"}, "limitCategory"),
        ("type", {"limitType": "TOKENS"}, "limitType"),
        ("window_on_budget", {"windowSeconds": 10}, "windowSeconds"),
        ("params_on_budget", {"params": {}}, "params"),
        ("zero_max", {"maxValue": "0"}, "maxValue"),
        ("empty_name", {"name": ""}, "name"),
    ],
)
async def test_update_refuses_immutable_and_foreign_category_fields(
    client, engine, _case, update, field
):
    [lim] = await make_limits(engine, 1)
    body = await gql(client, UPDATE, {"id": lim["id"], "input": update})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert await audits(engine) == []


async def test_update_same_category_and_type_is_accepted(client, engine):
    [lim] = await make_limits(engine, 1)
    body = await gql(
        client,
        UPDATE,
        {"id": lim["id"], "input": {"limitCategory": "BUDGET", "limitType": "COST_USD"}},
    )
    assert "errors" not in body, body


async def test_disable_is_soft_and_audited_and_foreign_is_not_found(client, engine):
    [lim] = await make_limits(engine, 1)
    [theirs] = await make_limits(engine, 1, tenant="t2")
    body = await gql(client, DISABLE, {"id": lim["id"]})
    assert body["data"]["disableLimit"]["status"] == "DISABLED"
    [row] = await rows(engine, t.limits, t.limits.c.id == lim["id"])
    assert row.status == "DISABLED" and row.updated_at > row.created_at
    assert len(await rows(engine, t.limit_integrity)) == 2  # nothing deleted
    # re-enable through update
    again = await gql(client, UPDATE, {"id": lim["id"], "input": {"status": "ACTIVE"}})
    assert again["data"]["updateLimit"]["status"] == "ACTIVE"
    for query, variables in (
        (DISABLE, {"id": theirs["id"]}),
        (DISABLE, {"id": "missing"}),
        (UPDATE, {"id": theirs["id"], "input": {"name": "x"}}),
    ):
        assert error_codes(await gql(client, query, variables)) == ["NOT_FOUND"]
    [their_row] = await rows(engine, t.limits, t.limits.c.id == theirs["id"])
    assert their_row.status == "ACTIVE"
    assert [a.operation for a in await audits(engine)] == ["disableLimit", "updateLimit"]
