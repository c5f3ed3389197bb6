"""The benchmark's response comparison: spelling differences pass, data differences do not."""

from __future__ import annotations

from bench.compare import comparable, first_difference, normalise

OURS = {
    "incidents": {
        "nodes": [
            {
                "id": "a",
                "createdAt": "2026-01-01T00:01:00+00:00",
                "cost": "1.5000",
                "breaches": [{"id": "b1"}],
            }
        ]
    }
}


def test_postgraphile_spelling_normalises_to_ours():
    theirs = {
        "incidents": {
            "nodes": [
                {
                    "breaches": {"nodes": [{"id": "b1"}]},
                    "cost": "1.5",
                    "createdAt": "2026-01-01T01:01:00+01:00",
                    "id": "a",
                }
            ]
        }
    }
    assert first_difference(normalise(theirs, OURS), normalise(OURS, OURS)) is None


def test_a_different_row_is_reported_with_its_path():
    theirs = {"incidents": {"nodes": [{**OURS["incidents"]["nodes"][0], "id": "z"}]}}
    diff = first_difference(normalise(theirs, OURS), normalise(OURS, OURS))
    assert diff == "data.incidents.nodes[0].id: 'z' != 'a'"


def test_a_write_payload_is_unwrapped():
    payload = {"eventType": "NOTE"}
    assert comparable({"createIncidentEvent": {"incidentEvent": payload}}, mutation=True) == payload
    assert comparable({"addIncidentEvent": payload}, mutation=True) == payload
