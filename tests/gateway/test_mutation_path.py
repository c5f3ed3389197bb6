"""The tuned mutation path: addIncidentEvent costs a fixed, small number of statements."""

from __future__ import annotations

from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.factories_incwrites import all_rows, audit_rows
from tests.helpers import error_codes, gql

ADD_EVENT = """mutation($id: ID!, $input: IncidentEventInput!) {
  addIncidentEvent(incidentId: $id, input: $input) { id incidentId eventType description }
}"""
NOTE = {"eventType": "NOTE", "description": "x", "data": {"k": 1}}


async def test_add_event_is_two_statements_with_its_audit_row(client, engine, count_statements):
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    for _ in range(3):
        count_statements.reset()
        body = await gql(client, ADD_EVENT, {"id": inc["id"], "input": NOTE}, role="OPERATOR")
        assert "errors" not in body, body
        # touch + lock + insert event (one CTE); audit row + both notifications (one CTE)
        assert count_statements.count == 2, count_statements.statements
    events = await all_rows(engine, t.incident_events)
    audits = await audit_rows(engine)
    assert len(events) == 3
    assert [a.entity_id for a in audits] == [e.id for e in events]
    first = next(e for e in events if e.id == audits[0].entity_id)
    assert audits[0].before is None
    assert audits[0].after["id"] == first.id
    assert audits[0].after["incident_id"] == inc["id"]
    assert audits[0].after["data"] == {"k": 1}


async def test_add_event_to_a_missing_incident_writes_nothing(client, engine, count_statements):
    theirs = incident_row("t2")
    await insert_rows(engine, t.incidents, [theirs])
    count_statements.reset()
    body = await gql(client, ADD_EVENT, {"id": theirs["id"], "input": NOTE}, role="OPERATOR")
    assert error_codes(body) == ["NOT_FOUND"]
    assert count_statements.count == 1, count_statements.statements
    assert await all_rows(engine, t.incident_events) == []
    assert await audit_rows(engine) == []
