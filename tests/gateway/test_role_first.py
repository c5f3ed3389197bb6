"""The role check comes first, and ids in inputs must exist (issue #13 items 14, 15)."""

from __future__ import annotations

import re

import pytest
from graphql import is_leaf_type

from drivers import tables as t
from resolvers.roles import MUTATION_ROLES
from schema import Limits, build_schema
from tests.factories import incident_row, insert_rows
from tests.factories_incwrites import all_rows
from tests.factories_refs import seed_runs
from tests.helpers import error_codes, gql

SCHEMA = build_schema(Limits(max_depth=10, max_aliases=30, max_tokens=2000, max_cost=50_000))
MUTATIONS = SCHEMA._schema.mutation_type.fields  # type: ignore[union-attr]


def _document(name: str) -> str:
    """The mutation with every argument a variable (sent empty, i.e. invalid)."""
    field = MUTATIONS[name]
    params = ", ".join(f"${a}: {arg.type}" for a, arg in field.args.items())
    args = ", ".join(f"{a}: ${a}" for a in field.args)
    selection = "" if is_leaf_type(field.type.of_type) else " { __typename }"
    head = f"mutation({params})" if params else "mutation"
    call = f"{name}({args})" if args else name
    return f"{head} {{ {call}{selection} }}"


def test_every_mutation_has_the_role_its_description_documents():
    documented = {
        name: re.findall(r"\[([A-Z]+)\]", field.description or "")[-1]
        for name, field in MUTATIONS.items()
    }
    assert {name: str(role) for name, role in MUTATION_ROLES.items()} == documented


@pytest.mark.parametrize("name", sorted(MUTATIONS))
async def test_a_viewer_with_invalid_input_is_forbidden(client, engine, name):
    body = await gql(client, _document(name), {}, role="VIEWER")
    assert error_codes(body) == ["FORBIDDEN"], body
    assert body["data"] is None
    assert await all_rows(engine, t.audit_log) == []


@pytest.mark.parametrize(
    ("name", "role"), [(n, "OPERATOR") for n, r in sorted(MUTATION_ROLES.items()) if r == "INGEST"]
)
async def test_an_operator_may_not_run_ingest_mutations(client, name, role):
    body = await gql(client, _document(name), {}, role=role)
    assert error_codes(body) == ["FORBIDDEN"]


SIGNAL = """mutation($input: RecordThresholdSignalInput!) { recordThresholdSignal(input: $input) { signalId } }"""
VIOLATION = """mutation($input: PolicyViolationInput!) { recordPolicyViolation(input: $input) { created } }"""
LESSON = """mutation($input: CreateLessonInput!) { createLesson(input: $input) { created } }"""
DRY_RUN = (
    """mutation($input: TestRecoveryScopeInput!) { testRecoveryScope(input: $input) { success } }"""
)


def _cases(ref: str) -> list[tuple[str, dict[str, object], str, str]]:
    return [
        (
            SIGNAL,
            {
                "runId": ref,
                "policyId": "p",
                "signalType": "NEAR",
                "metric": "COST",
                "currentValue": 90.0,
                "thresholdValue": 100.0,
            },
            "runId",
            "threshold_signals",
        ),
        (
            VIOLATION,
            {"runId": ref, "policyId": "p", "violatedRule": "r", "evidence": {"k": 1}},
            "runId",
            "policy_violations",
        ),
        (
            LESSON,
            {"lessonType": "FAILURE", "sourceEventId": ref, "sourceEventType": "RUN"},
            "sourceEventId",
            "lessons_learned",
        ),
        (DRY_RUN, {"incidentId": ref}, "incidentId", "incidents"),
    ]


@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("whose", ["missing", "foreign"])
async def test_an_id_that_is_missing_or_foreign_is_not_found(client, engine, case, whose):
    # given another tenant's run and incident under the same id
    await seed_runs(engine, "ref-1", tenant="t2")
    await insert_rows(engine, t.incidents, [incident_row("t2", id="ref-1")])
    ref = "ref-1" if whose == "foreign" else "nope"
    query, data, field, table = _cases(ref)[case]
    # when
    body = await gql(client, query, {"input": data}, role="ADMIN")
    # then
    assert error_codes(body) == ["NOT_FOUND"], body
    assert body["errors"][0]["extensions"]["field"] == field
    assert len(await all_rows(engine, getattr(t, table))) == (1 if table == "incidents" else 0)
