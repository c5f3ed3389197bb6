"""Override writes in few statements (issue 16 item 2): counts, the stored row, the cap's lock.

requestOverride reads the limit, then ONE statement locks the tenant, counts the cap, checks
stacking and inserts the override and its audit row (drivers/overrides.py). These tests pin the
statement counts, that the audit document built before the write is the row as stored, and that
the cap is counted after the tenant's lock even though the lock is taken inside the statement.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import select, text

from drivers import overrides as db
from drivers import tables as t
from drivers.audit import AuditEntry
from drivers.db import json_dumps
from drivers.one_statement import EngineConnection
from drivers.records import LimitOverrideRecord
from tests.factories import insert_rows, make_limits, override_row
from tests.factories_controls import audits, rows
from tests.helpers import error_codes, gql

REQUEST = """mutation($input: RequestOverrideInput!) { requestOverride(input: $input) {
  id limitId status originalValue overrideValue effectiveValue limitName startsAt expiresAt
} }"""
APPROVE = """mutation($id: ID!) { approveOverride(id: $id) { id status } }"""
REJECT = """mutation($id: ID!) { rejectOverride(id: $id, reason: "no") { id status } }"""
CANCEL = """mutation($id: ID!) { cancelOverride(id: $id) { id status } }"""


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


async def _stored_json(engine: Any, override_id: str) -> dict[str, Any]:
    """The override as read back through the mapping, as an audit document."""
    async with engine.connect() as conn:
        record = await db.fetch_override(conn, tenant_id="t1", override_id=override_id)
    document: dict[str, Any] = orjson.loads(json_dumps(_fields(record)))
    return document


def _fields(record: LimitOverrideRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


async def test_request_is_two_statements_and_transitions_read_back_in_their_update(
    client, engine, count_statements
):
    limits = await make_limits(engine, 3)
    count_statements.reset()
    body = await gql(client, REQUEST, _req(limits[0]["id"]))
    assert body["data"]["requestOverride"]["status"] == "ACTIVE", body
    # the limit read, then the one write statement (no BEGIN/COMMIT: it is its own transaction)
    assert count_statements.count == 2, count_statements.statements
    assert "limit_overrides_active_after_lock" in count_statements.statements[1]

    scheduled = _req(limits[1]["id"], startImmediately=False, scheduledStart="2020-01-01T00:00:00Z")
    pending = (await gql(client, REQUEST, scheduled))["data"]["requestOverride"]
    count_statements.reset()
    approved = await gql(client, APPROVE, {"id": pending["id"]})
    assert approved["data"]["approveOverride"]["status"] == "ACTIVE", approved
    # row lock + read, lock + cap count, UPDATE ... RETURNING, audit row
    assert count_statements.count == 4, count_statements.statements

    count_statements.reset()
    cancelled = await gql(client, CANCEL, {"id": pending["id"]})
    assert cancelled["data"]["cancelOverride"]["status"] == "CANCELLED", cancelled
    assert count_statements.count == 3, count_statements.statements  # lock+read, update, audit

    third = await gql(
        client,
        REQUEST,
        _req(limits[2]["id"], startImmediately=False, scheduledStart="2031-01-01T00:00:00Z"),
    )
    count_statements.reset()
    rejected = await gql(client, REJECT, {"id": third["data"]["requestOverride"]["id"]})
    assert rejected["data"]["rejectOverride"]["status"] == "REJECTED", rejected
    assert count_statements.count == 3, count_statements.statements


async def test_refused_request_writes_nothing_in_its_one_statement(
    client, engine, count_statements
):
    limits = await make_limits(engine, 6)
    await insert_rows(engine, t.limit_overrides, [override_row(lim["id"]) for lim in limits[:5]])
    count_statements.reset()
    body = await gql(
        client,
        REQUEST,
        _req(limits[5]["id"], startImmediately=False, scheduledStart="2030-01-01T00:00:00Z"),
    )
    assert error_codes(body) == ["RATE_LIMITED"]
    assert body["errors"][0]["extensions"]["reason"] == "TOO_MANY_ACTIVE_OVERRIDES"
    assert count_statements.count == 2
    assert len(await rows(engine, t.limit_overrides)) == 5
    assert await audits(engine, "requestOverride") == []


async def test_audit_document_and_payload_are_the_row_as_stored(client, engine):
    # a value with more digits than numeric(20,4) keeps (rounded half away from zero, as
    # PostgreSQL does) and a start in another time zone (stored and answered in UTC)
    [lim, other] = await make_limits(engine, 2, name="Spend")
    bodies = [
        await gql(
            client,
            REQUEST,
            _req(
                lim["id"],
                overrideValue="1.00005",
                startImmediately=False,
                scheduledStart="2030-01-01T02:00:00+02:00",
                durationHours=168,
            ),
        ),
        await gql(client, REQUEST, _req(other["id"], overrideValue="2.99994")),
    ]
    scheduled, immediate = (b["data"]["requestOverride"] for b in bodies)
    assert (scheduled["overrideValue"], scheduled["effectiveValue"]) == ("1.0001", "100.0000")
    assert datetime.fromisoformat(scheduled["startsAt"]) == datetime(2030, 1, 1, tzinfo=UTC)
    assert datetime.fromisoformat(scheduled["expiresAt"]) == datetime(
        2030, 1, 1, tzinfo=UTC
    ) + timedelta(hours=168)
    assert (immediate["overrideValue"], immediate["effectiveValue"]) == ("2.9999", "2.9999")
    written = {a.entity_id: a.after for a in await audits(engine, "requestOverride")}
    for got in (scheduled, immediate):
        assert written[got["id"]] == await _stored_json(engine, got["id"])
    assert written[scheduled["id"]]["limit_name"] == "Spend"


async def test_cap_at_exactly_five_two_concurrent_requests_one_wins(client, engine):
    limits = await make_limits(engine, 6)
    await insert_rows(engine, t.limit_overrides, [override_row(lim["id"]) for lim in limits[:4]])
    bodies = await asyncio.gather(
        *(gql(client, REQUEST, _req(lim["id"]), role="OPERATOR") for lim in limits[4:])
    )
    codes = sorted(error_codes(b)[0] if "errors" in b else "OK" for b in bodies)
    assert codes == ["OK", "RATE_LIMITED"], bodies
    active = [r for r in await rows(engine, t.limit_overrides) if r.status == "ACTIVE"]
    assert len(active) == 5
    assert len(await audits(engine, "requestOverride")) == 1


async def test_cap_is_counted_after_the_lock_inside_one_statement(engine):
    # given a transaction that holds the tenant's lock and has made a 1st ACTIVE override
    [lim] = await make_limits(engine, 1)
    async with engine.connect() as holder:
        tx = await holder.begin()
        assert await db.active_after_lock(holder, tenant_id="t1") == 0
        await holder.execute(t.limit_overrides.insert().values(**override_row(lim["id"])))

        async def count_in_another_statement() -> int:
            async with engine.connect() as conn:
                return await db.active_after_lock(conn, tenant_id="t1")

        waiting = asyncio.create_task(count_in_another_statement())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # blocked on the advisory lock
        await tx.commit()
        # then the count, taken after the lock was granted, sees what the holder committed
        assert await waiting == 1


async def test_request_for_a_limit_gone_before_the_write_stores_nothing(engine):
    [lim] = await make_limits(engine, 1)
    now = datetime.now(UTC)
    planned = LimitOverrideRecord(
        id="ovr-planned",
        limit_id="no-such-limit",
        original_value=Decimal("100.0000"),
        override_value=Decimal("150.0000"),
        status="PENDING",
        requested_at=now,
        requested_by="alice",
        reason="quarter-end batch jobs",
        starts_at=now,
        expires_at=now + timedelta(hours=1),
        approved_at=None,
        approved_by=None,
        rejection_reason=None,
        cancelled_at=None,
        cancelled_by=None,
        effective_value=Decimal("100.0000"),
        limit_name="gone",
    )
    entry = AuditEntry(
        tenant_id="t1",
        actor="alice",
        actor_role="ADMIN",
        operation="requestOverride",
        request_id="r1",
        entity_type="limit_overrides",
        entity_id=planned.id,
        before=None,
        after=_fields(planned),
        notifications=(),
    )
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        outcome = await db.insert_requested_override(
            EngineConnection(conn), tenant_id="t1", planned=planned, max_active=5, entry=entry
        )
        assert outcome == db.RequestOutcome(active=0, open_taken=False, stored=None)
        # and the same statement for the existing limit stores exactly the plan
        real = LimitOverrideRecord(**(_fields(planned) | {"limit_id": lim["id"]}))
        stored = await db.insert_requested_override(
            EngineConnection(conn), tenant_id="t1", planned=real, max_active=5, entry=entry
        )
        assert stored.stored == real
        n = (await conn.execute(select(text("count(*)")).select_from(t.audit_log))).scalar_one()
    assert n == 1
