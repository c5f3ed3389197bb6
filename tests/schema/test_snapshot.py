"""schema.graphql is the committed contract: it must equal the live schema."""

from __future__ import annotations

import re
from pathlib import Path

from schema import sdl

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_live_schema():
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == sdl(), "schema changed: run `make schema` and commit schema.graphql"


def _signatures(text: str) -> str:
    """The SDL without descriptions, each argument list on one line (as API.md writes them)."""
    bare = re.sub(r'[ \t]*"""(?:.|\n)*?"""\n', "", text)

    def one_line(match: re.Match[str]) -> str:
        args = [a.strip() for a in match.group(1).splitlines() if a.strip()]
        return "(" + ", ".join(args) + ")"

    return re.sub(r"\(([^()]*\n[^()]*)\)", one_line, bare)


def test_api_md_names_are_in_the_schema():
    live = _signatures(sdl())
    for name in (
        "viewer: Viewer!",
        "incidents(first: Int! = 20, after: String = null, filter: IncidentFilter = null, "
        "orderBy: IncidentOrder! = CREATED_AT_DESC): IncidentConnection!",
        "incident(id: ID!): Incident",
        "limits(first: Int! = 20, after: String = null, filter: LimitFilter = null): LimitConnection!",
        "limit(id: ID!): Limit",
        "acknowledgeIncident(id: ID!, note: String = null): Incident!",
        "resolveIncident(id: ID!, input: ResolveIncidentInput!): Incident!",
        "events(first: Int! = 20, after: String = null): IncidentEventConnection!",
        "breaches(first: Int! = 20, after: String = null): LimitBreachConnection!",
        "overrides(status: [OverrideStatus!] = null): [LimitOverride!]!",
        "integrity: LimitIntegrity!",
        "totalCount: Int!",
    ):
        assert name in live, name
