"""createPostmortemStub and recurrenceGroup (DOMAIN.md §3.11)."""

from __future__ import annotations

import re
from datetime import timedelta

from drivers import tables as t
from tests.factories import NOW, incident_row, insert_rows
from tests.factories_controls import audits, rows
from tests.helpers import error_codes, gql, token

STUB = """mutation($id: ID!) { createPostmortemStub(incidentId: $id) {
  id postmortemArtifactId status updatedAt
} }"""
GROUP = """query($s: String!) { recurrenceGroup(signature: $s) {
  id recurrenceSignature createdAt
} }"""


async def test_stub_sets_a_pm_id_once_and_audits_every_call(client, engine):
    inc = incident_row(status="RESOLVED", resolution_method="MANUAL", resolved_at=NOW, ended_at=NOW)
    await insert_rows(engine, t.incidents, [inc])
    # when
    first = await gql(client, STUB, {"id": inc["id"]}, role="OPERATOR", sub="olga")
    again = await gql(client, STUB, {"id": inc["id"]}, role="OPERATOR", sub="olga")
    # then: a "pm-" + 16 hex id, kept by the second call
    assert "errors" not in first, first
    stub = first["data"]["createPostmortemStub"]
    assert re.fullmatch(r"pm-[0-9a-f]{16}", stub["postmortemArtifactId"])
    assert stub["status"] == "RESOLVED"
    assert again["data"]["createPostmortemStub"] == stub
    [row] = await rows(engine, t.incidents)
    assert row.postmortem_artifact_id == stub["postmortemArtifactId"]
    logged = await audits(engine, "createPostmortemStub")
    assert [(a.entity_type, a.entity_id, a.actor) for a in logged] == [
        ("incidents", inc["id"], "olga")
    ] * 2
    assert logged[0].before["postmortem_artifact_id"] is None
    assert logged[0].after["postmortem_artifact_id"] == stub["postmortemArtifactId"]
    assert logged[1].before == logged[1].after


RESOLVE = """mutation($id: ID!, $pm: String) {
  resolveIncident(id: $id, input: { notes: "done", postmortemArtifactId: $pm }) {
    status postmortemArtifactId
  }
}"""


async def test_resolving_keeps_the_stub_unless_given_another(client, engine):
    # given: two open incidents with a stub each
    kept, replaced = incident_row(), incident_row()
    await insert_rows(engine, t.incidents, [kept, replaced])
    stubs = {}
    for inc in (kept, replaced):
        made = await gql(client, STUB, {"id": inc["id"]}, role="OPERATOR")
        stubs[inc["id"]] = made["data"]["createPostmortemStub"]["postmortemArtifactId"]
    # when: one is resolved without an artifact id, the other with its own
    first = await gql(client, RESOLVE, {"id": kept["id"]}, role="OPERATOR")
    second = await gql(
        client, RESOLVE, {"id": replaced["id"], "pm": "pm-0123456789abcdef"}, role="OPERATOR"
    )
    # then (docs/decisions.md: resolving keeps the stub)
    assert first["data"]["resolveIncident"] == {
        "status": "RESOLVED",
        "postmortemArtifactId": stubs[kept["id"]],
    }
    assert second["data"]["resolveIncident"]["postmortemArtifactId"] == "pm-0123456789abcdef"
    stored = {row.id: row.postmortem_artifact_id for row in await rows(engine, t.incidents)}
    assert stored == {kept["id"]: stubs[kept["id"]], replaced["id"]: "pm-0123456789abcdef"}


async def test_stub_roles_and_missing_or_foreign_incidents(client, engine):
    theirs = incident_row("t2")
    await insert_rows(engine, t.incidents, [theirs])
    assert error_codes(await gql(client, STUB, {"id": theirs["id"]})) == ["NOT_FOUND"]
    assert error_codes(await gql(client, STUB, {"id": "nope"})) == ["NOT_FOUND"]
    assert error_codes(await gql(client, STUB, {"id": theirs["id"]}, role="VIEWER")) == [
        "FORBIDDEN"
    ]
    [row] = await rows(engine, t.incidents)
    assert row.postmortem_artifact_id is None
    assert await audits(engine) == []


async def test_recurrence_group_is_newest_first_tenant_only_and_at_most_50(client, engine):
    same = [
        incident_row(recurrence_signature="sig-a", created_at=NOW - timedelta(minutes=i))
        for i in range(55)
    ]
    other = [
        incident_row(recurrence_signature="sig-b"),
        incident_row("t2", recurrence_signature="sig-a"),
        incident_row(recurrence_signature=None),
    ]
    await insert_rows(engine, t.incidents, same + other)
    # when
    body = await gql(client, GROUP, {"s": "sig-a"}, role="VIEWER")
    # then
    assert "errors" not in body, body
    got = body["data"]["recurrenceGroup"]
    assert [g["id"] for g in got] == [r["id"] for r in same[:50]]
    assert {g["recurrenceSignature"] for g in got} == {"sig-a"}
    assert (await gql(client, GROUP, {"s": "none"}))["data"]["recurrenceGroup"] == []
    body = await gql(client, GROUP, {"s": "sig-a"}, tenant="t2")
    assert len(body["data"]["recurrenceGroup"]) == 1
    body = await gql(client, GROUP, {"s": ""})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "signature"


async def test_recurrence_group_compiles_with_the_resolver_paths_answer(
    client, compiled_client, engine
):
    await insert_rows(engine, t.incidents, [incident_row(recurrence_signature="sig-c")])
    query = '{ recurrenceGroup(signature: "sig-c") { id evidenceCount lastSeenAt } }'
    headers = {"authorization": f"Bearer {token()}"}
    answers = [
        await http.post("/graphql", json={"query": query}, headers=headers)
        for http in (client, compiled_client)
    ]
    assert [a.headers["x-gateway-read-path"] for a in answers] == ["resolver", "compiled"]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["data"]["recurrenceGroup"][0]["evidenceCount"] == 0


async def test_new_incidents_get_a_v1_signature_that_groups_recurrences(client, engine):
    from tests.factories_incwrites import run_row  # noqa: PLC0415

    runs = [
        run_row(status="FAILED", error_message="AGENT_CRASH in step 3"),
        run_row(status="FAILED", error_message="agent_crash again"),
        run_row(status="FAILED", error_message="STEP_FAILURE"),
    ]
    await insert_rows(engine, t.runs, runs)
    outcome = "mutation($id: ID!) { recordRunOutcome(runId: $id) { incident { id } } }"
    ids = []
    for run in runs:
        body = await gql(client, outcome, {"id": run["id"]}, role="INGEST")
        assert "errors" not in body, body
        ids.append(body["data"]["recordRunOutcome"]["incident"]["id"])
    stored = {r.id: r for r in await rows(engine, t.incidents)}
    crash = stored[ids[0]].recurrence_signature
    assert stored[ids[1]].recurrence_signature == crash
    assert stored[ids[2]].recurrence_signature != crash
    assert {r.signature_version for r in stored.values()} == {"v1"}
    body = await gql(client, GROUP, {"s": crash})
    assert [g["id"] for g in body["data"]["recurrenceGroup"]] == sorted(
        ids[:2], key=lambda i: stored[i].created_at, reverse=True
    )
