"""Override lifecycle over HTTP (DOMAIN.md §3.3): checks in order, transitions, jobs, races."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drivers import tables as t
from resolvers.overrides import activate_due_overrides, expire_overrides
from tests.factories import insert_rows, make_limits, override_row
from tests.factories_controls import audits, rows
from tests.helpers import error_codes, gql

REQUEST = """mutation($input: RequestOverrideInput!) { requestOverride(input: $input) {
  id limitId status originalValue overrideValue effectiveValue limitName requestedBy
  startsAt expiresAt approvedAt approvedBy limit { id effectiveValue }
} }"""
APPROVE = """mutation($id: ID!, $v: Decimal, $h: Int) {
  approveOverride(id: $id, adjustedValue: $v, adjustedDurationHours: $h) {
    id status overrideValue approvedBy approvedAt startsAt expiresAt
} }"""
REJECT = """mutation($id: ID!, $r: String!) { rejectOverride(id: $id, reason: $r) {
  id status rejectionReason approvedBy approvedAt
} }"""
CANCEL = """mutation($id: ID!) { cancelOverride(id: $id) { id status cancelledBy cancelledAt } }"""


def _req(limit_id: str, **over: Any) -> dict[str, Any]:
    return {
        "input": {
            "limitId": limit_id,
            "overrideValue": "150",
            "durationHours": 24,
            "reason": "quarter-end batch jobs",
        }
        | over
    }


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_immediate_request_self_approves_and_raises_the_limit(client, engine):
    [lim] = await make_limits(engine, 1, name="Spend")
    body = await gql(client, REQUEST, _req(lim["id"]), role="OPERATOR", sub="carol")
    assert "errors" not in body, body
    got = body["data"]["requestOverride"]
    assert got["status"] == "ACTIVE"
    assert (got["originalValue"], got["overrideValue"], got["effectiveValue"]) == (
        "100.0000",
        "150.0000",
        "150.0000",
    )
    assert (got["limitName"], got["requestedBy"], got["approvedBy"]) == ("Spend", "carol", "carol")
    assert _ts(got["expiresAt"]) - _ts(got["startsAt"]) == timedelta(hours=24)
    assert got["limit"] == {"id": lim["id"], "effectiveValue": "150.0000"}
    [audit] = await audits(engine, "requestOverride")
    assert (audit.entity_type, audit.entity_id, audit.actor_role) == (
        "limit_overrides",
        got["id"],
        "OPERATOR",
    )


async def test_scheduled_request_is_pending_then_approved_then_activated_and_expired(
    client, engine
):
    [lim] = await make_limits(engine, 1)
    start = datetime.now(UTC) + timedelta(hours=2)
    body = await gql(
        client,
        REQUEST,
        _req(lim["id"], startImmediately=False, scheduledStart=start.isoformat()),
        role="OPERATOR",
    )
    got = body["data"]["requestOverride"]
    assert (got["status"], got["effectiveValue"], got["approvedBy"]) == (
        "PENDING",
        "100.0000",
        None,
    )
    assert _ts(got["startsAt"]) == start
    # approve with an adjusted value and duration: starts later → APPROVED
    approved = (await gql(client, APPROVE, {"id": got["id"], "v": "175", "h": 2}, sub="root"))[
        "data"
    ]["approveOverride"]
    assert (approved["status"], approved["overrideValue"], approved["approvedBy"]) == (
        "APPROVED",
        "175.0000",
        "root",
    )
    assert _ts(approved["expiresAt"]) == start + timedelta(hours=2)
    # jobs: nothing due yet, then due
    assert await activate_due_overrides(engine) == 0
    assert await activate_due_overrides(engine, now=start + timedelta(minutes=1)) == 1
    [row] = await rows(engine, t.limit_overrides)
    assert row.status == "ACTIVE"
    assert await expire_overrides(engine, now=start + timedelta(hours=1)) == 0
    assert await expire_overrides(engine, now=start + timedelta(hours=3)) == 1
    [row] = await rows(engine, t.limit_overrides)
    assert row.status == "EXPIRED"
    ops = [(a.operation, a.actor, a.actor_role) for a in await audits(engine)]
    assert ops[-2:] == [
        ("activate_due_overrides", "activate_due_overrides", "SYSTEM"),
        ("expire_overrides", "expire_overrides", "SYSTEM"),
    ]


async def test_approve_when_start_has_passed_is_active_and_duration_counts_from_now(client, engine):
    [lim] = await make_limits(engine, 1)
    pending = override_row(
        lim["id"],
        status="PENDING",
        starts_at=datetime.now(UTC) - timedelta(hours=5),
        expires_at=datetime.now(UTC) - timedelta(hours=4),
    )
    await insert_rows(engine, t.limit_overrides, [pending])
    before = datetime.now(UTC)
    got = (await gql(client, APPROVE, {"id": pending["id"], "h": 3}))["data"]["approveOverride"]
    assert got["status"] == "ACTIVE"
    assert (
        before + timedelta(hours=3)
        <= _ts(got["expiresAt"])
        <= datetime.now(UTC) + timedelta(hours=3)
    )


@pytest.mark.parametrize(
    ("_case", "over", "field"),
    [
        ("zero_value", {"overrideValue": "0"}, "overrideValue"),
        ("duration_0", {"durationHours": 0}, "durationHours"),
        ("duration_169", {"durationHours": 169}, "durationHours"),
        ("reason_short", {"reason": "too short"}, "reason"),
        ("reason_long", {"reason": "r" * 501}, "reason"),
        ("no_schedule", {"startImmediately": False}, "scheduledStart"),
    ],
)
async def test_request_validation_comes_first(client, engine, _case, over, field):
    # a missing limit would be NOT_FOUND, but validation is checked before it
    body = await gql(client, REQUEST, _req("missing", **over), role="OPERATOR")
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field


async def test_request_boundaries_accepted(client, engine):
    a, b = await make_limits(engine, 2)
    one = await gql(client, REQUEST, _req(a["id"], durationHours=1, reason="r" * 10))
    week = await gql(client, REQUEST, _req(b["id"], durationHours=168, reason="r" * 500))
    assert "errors" not in one and "errors" not in week


async def test_request_for_missing_or_foreign_limit_is_not_found(client, engine):
    [theirs] = await make_limits(engine, 1, tenant="t2")
    for limit_id in ("missing", theirs["id"]):
        assert error_codes(await gql(client, REQUEST, _req(limit_id))) == ["NOT_FOUND"]
    assert await rows(engine, t.limit_overrides) == []


async def test_sixth_active_override_is_rate_limited_before_conflict(client, engine):
    limits = await make_limits(engine, 7)
    await insert_rows(engine, t.limit_overrides, [override_row(lim["id"]) for lim in limits[:5]])
    # the limit already has an open override AND the tenant is full: RATE_LIMITED wins (order)
    body = await gql(client, REQUEST, _req(limits[0]["id"]))
    assert error_codes(body) == ["RATE_LIMITED"]
    assert error_codes(await gql(client, REQUEST, _req(limits[6]["id"]))) == ["RATE_LIMITED"]
    # PENDING ones do not count
    await gql(client, CANCEL, {"id": (await rows(engine, t.limit_overrides))[0].id})
    assert "errors" not in await gql(client, REQUEST, _req(limits[6]["id"]))


async def test_second_open_override_on_a_limit_is_conflict(client, engine):
    [lim] = await make_limits(engine, 1)
    await insert_rows(engine, t.limit_overrides, [override_row(lim["id"], status="PENDING")])
    body = await gql(client, REQUEST, _req(lim["id"]))
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["reason"] == "OVERRIDE_ALREADY_OPEN"


async def test_parallel_requests_exactly_one_wins(client, engine):
    [lim] = await make_limits(engine, 1)
    bodies = await asyncio.gather(
        *(gql(client, REQUEST, _req(lim["id"]), role="OPERATOR") for _ in range(2))
    )
    outcomes = sorted("errors" in b for b in bodies)
    assert outcomes == [False, True], bodies
    [loser] = [b for b in bodies if "errors" in b]
    assert error_codes(loser) == ["CONFLICT"]
    assert len(await rows(engine, t.limit_overrides)) == 1
    assert len(await audits(engine, "requestOverride")) == 1


async def test_reject_and_illegal_transitions(client, engine):
    [lim] = await make_limits(engine, 1)
    pending = override_row(lim["id"], status="PENDING")
    await insert_rows(engine, t.limit_overrides, [pending])
    got = (await gql(client, REJECT, {"id": pending["id"], "r": "not needed"}, sub="root"))["data"][
        "rejectOverride"
    ]
    assert (got["status"], got["rejectionReason"], got["approvedBy"]) == (
        "REJECTED",
        "not needed",
        "root",
    )
    assert got["approvedAt"] is not None
    for query, variables in (
        (APPROVE, {"id": pending["id"]}),
        (REJECT, {"id": pending["id"], "r": "again"}),
    ):
        body = await gql(client, query, variables)
        assert error_codes(body) == ["CONFLICT"]
        assert body["errors"][0]["extensions"]["status"] == "REJECTED"
    body = await gql(client, CANCEL, {"id": pending["id"]})
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["reason"] == "CANNOT_CANCEL"
    assert [a.operation for a in await audits(engine)] == ["rejectOverride"]


@pytest.mark.parametrize("status", ["PENDING", "APPROVED", "ACTIVE"])
async def test_cancel_open_override(client, engine, status):
    [lim] = await make_limits(engine, 1)
    row = override_row(lim["id"], status=status)
    await insert_rows(engine, t.limit_overrides, [row])
    got = (await gql(client, CANCEL, {"id": row["id"]}, role="OPERATOR", sub="op"))["data"][
        "cancelOverride"
    ]
    assert (got["status"], got["cancelledBy"]) == ("CANCELLED", "op")
    [audit] = await audits(engine, "cancelOverride")
    assert (audit.before["status"], audit.after["status"]) == (status, "CANCELLED")


async def test_roles_and_foreign_ids(client, engine):
    [lim] = await make_limits(engine, 1, tenant="t2")
    row = override_row(lim["id"], "t2", status="PENDING")
    await insert_rows(engine, t.limit_overrides, [row])
    assert error_codes(await gql(client, APPROVE, {"id": row["id"]}, role="OPERATOR")) == [
        "FORBIDDEN"
    ]
    assert error_codes(await gql(client, REQUEST, _req(lim["id"]), role="VIEWER")) == ["FORBIDDEN"]
    for query, variables in (
        (APPROVE, {"id": row["id"]}),
        (REJECT, {"id": row["id"], "r": "x"}),
        (CANCEL, {"id": row["id"]}),
    ):
        assert error_codes(await gql(client, query, variables)) == ["NOT_FOUND"]
    assert (await gql(client, "query($id: ID!) { override(id: $id) { id } }", {"id": row["id"]}))[
        "data"
    ] == {"override": None}
    [stored] = await rows(engine, t.limit_overrides)
    assert stored.status == "PENDING"


async def test_overrides_list_filters_pages_and_batches(client, engine, count_statements):
    limits = await make_limits(engine, 30)
    now = datetime.now(UTC)
    await insert_rows(
        engine,
        t.limit_overrides,
        [
            override_row(
                lim["id"],
                status="EXPIRED" if i % 2 else "ACTIVE",
                requested_at=now - timedelta(minutes=i),
            )
            for i, lim in enumerate(limits)
        ],
    )
    query = """query($after: String, $status: [OverrideStatus!]) {
      overrides(first: 10, after: $after, status: $status) {
        totalCount nodes { id status limitName limit { id name } }
        pageInfo { hasNextPage endCursor }
    } }"""
    count_statements.reset()
    body = await gql(client, query, {"status": ["ACTIVE"]})
    page = body["data"]["overrides"]
    assert page["totalCount"] == 15 and len(page["nodes"]) == 10
    assert all(
        n["status"] == "ACTIVE" and n["limit"]["name"] == n["limitName"] for n in page["nodes"]
    )
    assert count_statements.count == 3  # page + limits batch + count
    seen = [n["id"] for n in page["nodes"]]
    nxt = await gql(client, query, {"status": ["ACTIVE"], "after": page["pageInfo"]["endCursor"]})
    seen += [n["id"] for n in nxt["data"]["overrides"]["nodes"]]
    assert len(seen) == len(set(seen)) == 15
    everything = await gql(client, "{ overrides(first: 100) { totalCount } }")
    assert everything["data"]["overrides"]["totalCount"] == 30


async def test_nested_limit_and_override_fields_do_not_grow_with_rows(
    client, engine, count_statements
):
    query = """{ overrides(first: 100) { nodes {
      id limitName effectiveValue
      limit { id effectiveValue integrity { integrityStatus } activeOverride { id }
              overrides(status: [ACTIVE]) { id } }
    } } }"""
    counts = {}
    for tenant, n in (("small", 2), ("large", 50)):
        limits = await make_limits(engine, n, tenant)
        await insert_rows(
            engine, t.limit_overrides, [override_row(lim["id"], tenant) for lim in limits]
        )
        count_statements.reset()
        body = await gql(client, query, tenant=tenant)
        assert "errors" not in body, body
        nodes = body["data"]["overrides"]["nodes"]
        assert len(nodes) == n
        assert all(x["limit"]["activeOverride"]["id"] == x["id"] for x in nodes)
        assert all(x["limit"]["overrides"] == [{"id": x["id"]}] for x in nodes)
        assert all(x["limit"]["effectiveValue"] == "150.0000" for x in nodes)
        counts[tenant] = count_statements.count
    # page + limits + integrity + activeOverride + overrides
    assert counts == {"small": 5, "large": 5}


async def test_parallel_requests_never_exceed_five_active(client, engine):
    limits = await make_limits(engine, 7)
    bodies = await asyncio.gather(*(gql(client, REQUEST, _req(lim["id"])) for lim in limits))
    codes = sorted(error_codes(b)[0] if "errors" in b else "OK" for b in bodies)
    assert codes == ["OK"] * 5 + ["RATE_LIMITED"] * 2
    assert len(await rows(engine, t.limit_overrides)) == 5


async def test_unique_index_conflict_is_reported_as_conflict(client, engine):
    # given another transaction holding an uncommitted PENDING override for the limit, so the
    # request's pre-check cannot see it and its insert waits on the unique index
    [lim] = await make_limits(engine, 1)
    async with engine.connect() as other:
        tx = await other.begin()
        await other.execute(
            t.limit_overrides.insert().values(**override_row(lim["id"], status="PENDING"))
        )
        request = asyncio.create_task(gql(client, REQUEST, _req(lim["id"])))
        await asyncio.sleep(0.5)
        assert not request.done()
        await tx.commit()
        body = await request
    # then
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["reason"] == "OVERRIDE_ALREADY_OPEN"
    assert len(await rows(engine, t.limit_overrides)) == 1


# --- the cap of 5 ACTIVE holds on every path to ACTIVE (issue #15 item 5) ------------------------


async def test_approving_into_a_full_tenant_is_rate_limited_and_stays_pending(client, engine):
    limits = await make_limits(engine, 7)
    full = [override_row(lim["id"]) for lim in limits[:5]]
    due = override_row(limits[5]["id"], status="PENDING")
    later = override_row(
        limits[6]["id"], status="PENDING", starts_at=datetime.now(UTC) + timedelta(hours=1)
    )
    await insert_rows(engine, t.limit_overrides, [*full, due, later])
    # approving an override whose start has passed would make a sixth ACTIVE one
    body = await gql(client, APPROVE, {"id": due["id"]})
    assert error_codes(body) == ["RATE_LIMITED"]
    assert body["errors"][0]["extensions"]["reason"] == "TOO_MANY_ACTIVE_OVERRIDES"
    [row] = await rows(engine, t.limit_overrides, t.limit_overrides.c.id == due["id"])
    assert (row.status, row.approved_by) == ("PENDING", None)
    assert await audits(engine, "approveOverride") == []
    # approving one that starts later takes no slot yet: APPROVED
    body = await gql(client, APPROVE, {"id": later["id"]})
    assert body["data"]["approveOverride"]["status"] == "APPROVED"
    # once a slot frees, the same approval goes through
    await gql(client, CANCEL, {"id": full[0]["id"]})
    body = await gql(client, APPROVE, {"id": due["id"]})
    assert body["data"]["approveOverride"]["status"] == "ACTIVE"


async def test_activation_job_leaves_a_due_override_approved_while_the_tenant_is_full(
    client, engine, caplog
):
    limits = await make_limits(engine, 7)
    full = [override_row(lim["id"]) for lim in limits[:5]]
    waiting = [override_row(lim["id"], status="APPROVED", approved_by="root") for lim in limits[5:]]
    other_tenant = await make_limits(engine, 1, tenant="t2")
    elsewhere = override_row(other_tenant[0]["id"], tenant="t2", status="APPROVED")
    await insert_rows(engine, t.limit_overrides, [*full, *waiting, elsewhere])
    # when the job runs while t1 holds 5 ACTIVE overrides
    with caplog.at_level("WARNING", logger="gateway.overrides"):
        moved = await activate_due_overrides(engine)
    # then only the other tenant's override moves; t1's stay APPROVED and the log says why
    assert moved == 1
    statuses = {r.id: r.status for r in await rows(engine, t.limit_overrides)}
    assert [statuses[w["id"]] for w in waiting] == ["APPROVED", "APPROVED"]
    assert statuses[elsewhere["id"]] == "ACTIVE"
    assert sum("stays APPROVED" in r.getMessage() for r in caplog.records) == 2
    assert [a.entity_id for a in await audits(engine, "activate_due_overrides")] == [
        elsewhere["id"]
    ]
    # when one slot frees, the next run activates exactly one of them
    await gql(client, CANCEL, {"id": full[0]["id"]})
    assert await activate_due_overrides(engine) == 1
    statuses = {r.id: r.status for r in await rows(engine, t.limit_overrides)}
    assert sorted(statuses[w["id"]] for w in waiting) == ["ACTIVE", "APPROVED"]
    active = [r for r in await rows(engine, t.limit_overrides) if r.tenant_id == "t1"]
    assert sum(r.status == "ACTIVE" for r in active) == 5


async def test_parallel_approvals_and_activation_never_exceed_five_active(client, engine):
    limits = await make_limits(engine, 9)
    full = [override_row(lim["id"]) for lim in limits[:3]]
    pending = [override_row(lim["id"], status="PENDING") for lim in limits[3:7]]
    approved = [override_row(lim["id"], status="APPROVED") for lim in limits[7:]]
    await insert_rows(engine, t.limit_overrides, [*full, *pending, *approved])
    # 4 approvals and the activation job race for the 2 free slots
    job = asyncio.create_task(activate_due_overrides(engine))
    bodies = await asyncio.gather(*(gql(client, APPROVE, {"id": p["id"]}) for p in pending))
    moved = await job
    ok = sum("errors" not in b for b in bodies)
    limited = [b for b in bodies if "errors" in b]
    assert all(error_codes(b) == ["RATE_LIMITED"] for b in limited)
    assert ok + moved == 2
    assert sum(r.status == "ACTIVE" for r in await rows(engine, t.limit_overrides)) == 5
