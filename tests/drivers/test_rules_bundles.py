"""Bundle hashing is deterministic and covers exactly the documented fields."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from drivers.rules import bundles as rules

NOW = datetime(2026, 11, 23, 12, 0, 0, 123, tzinfo=UTC)


def _inputs(tokens: int = 10) -> rules.BundleInputs:
    return rules.BundleInputs(
        incident_id="inc_1",
        incident_title="t",
        incident_severity="HIGH",
        incident_created_at=NOW,
        inflection_step_index=None,
        affected_agent_id=None,
        run={
            "id": "run-1",
            "agent_id": "a",
            "error_message": None,
            "started_at": NOW,
            "completed_at": NOW + timedelta(seconds=3),
            "estimated_cost_usd": Decimal("0.5"),
        },
        steps=[
            {
                "step_index": 0,
                "step_type": "LLM",
                "tokens": tokens,
                "cost_cents": Decimal("1.5"),
                "duration_ms": 5,
                "status": "VIOLATION",
                "content_hash": "ü",
                "created_at": NOW,
            }
        ],
        violated_policy_id=None,
        violated_rule=None,
    )


def _build(kind: str, inputs: rules.BundleInputs, hex12: str = "0" * 12) -> dict[str, Any]:
    return rules.build_document(
        kind, hex12=hex12, inputs=inputs, actor="x", options=rules.BundleOptions(), now=NOW
    )


def test_same_inputs_give_the_same_hash_and_a_change_changes_it() -> None:
    for kind in ("EVIDENCE", "SOC2", "EXECUTIVE_DEBRIEF"):
        assert _build(kind, _inputs())["content_hash"] == _build(kind, _inputs())["content_hash"]
    assert (
        _build("EVIDENCE", _inputs())["content_hash"]
        != _build("EVIDENCE", _inputs(11))["content_hash"]
    )


def test_evidence_and_soc2_hash_only_the_five_fields() -> None:
    evidence = _build("EVIDENCE", _inputs(), "a" * 12)
    soc2 = _build("SOC2", _inputs(), "b" * 12)
    # bundle id, reason and SOC2 extras are outside the hash: same run, steps and time → same hash
    assert evidence["content_hash"] == soc2["content_hash"]
    canonical = (
        '{"created_at":"2026-11-23T12:00:00.000123+00:00","incident_id":"inc_1","run_id":"run-1",'
        '"steps":[{"content_hash":"ü","cost_cents":"1.5000","duration_ms":5,"index":0,'
        '"is_inflection":true,"status":"VIOLATION","step_type":"LLM",'
        '"timestamp":"2026-11-23T12:00:00.000123+00:00","tokens":10}],"trace_id":"run-1"}'
    )
    assert rules.canonical_json(
        {k: evidence[k] for k in rules.EVIDENCE_HASH_FIELDS}
    ) == canonical.encode("utf-8")
    assert evidence["content_hash"] == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_debrief_hash_covers_the_whole_document() -> None:
    a = _build("EXECUTIVE_DEBRIEF", _inputs(), "a" * 12)
    b = _build("EXECUTIVE_DEBRIEF", _inputs(), "b" * 12)
    assert a["content_hash"] != b["content_hash"]  # the bundle id is part of it
    assert a["time_to_detect_seconds"] == 3
    assert a["cost_incurred_cents"] == "50.0000"
