"""Every `incidents` filter and ordering of API.md / DOMAIN.md §3.17, with exact results."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.factories_analytics import inc, run, seed, utc_now
from tests.helpers import gql

PAGE = """
query Page($first: Int!, $after: String, $filter: IncidentFilter, $order: IncidentOrder) {
  incidents(first: $first, after: $after, filter: $filter, orderBy: $order) {
    totalCount
    nodes { id }
    pageInfo { hasNextPage endCursor }
  }
}
"""

NOW = utc_now()
H = timedelta(hours=1)
D = timedelta(days=1)


def _rows() -> dict[str, dict[str, Any]]:
    """Named incidents covering every filter dimension (ids sort like their names)."""
    return {
        "a": inc(NOW - 1 * H, id="inc-a", severity="CRITICAL", category="COST_ANOMALY",
                 cause_type="SYSTEM", trigger_type="COST_SPIKE"),
        "b": inc(NOW - 2 * H, id="inc-b", severity="HIGH", category="EXECUTION_FAILURE",
                 cause_type="LLM_RUN", trigger_type="RUN_FAILURE", source_run_id="run-1",
                 status="ACKNOWLEDGED", acknowledged_at=NOW - H),
        "c": inc(NOW - 3 * D, id="inc-c", severity="LOW", category=None, cause_type="HUMAN",
                 trigger_type="FREEZE", resolved_after=2 * H),
        "d": inc(NOW - 40 * D, id="inc-d", severity="MEDIUM", category="MANUAL",
                 cause_type="HUMAN", trigger_type="FREEZE", resolved_after=D),
        "e": inc(NOW - 5 * H, id="inc-e", severity="HIGH", category="EXECUTION_FAILURE",
                 cause_type="LLM_RUN", trigger_type="RUN_FAILURE", source_run_id="run-2"),
    }  # fmt: skip


async def _ids(
    client: Any, filter_: dict[str, Any] | None, order: str = "CREATED_AT_DESC"
) -> list[str]:
    body = await gql(client, PAGE, {"first": 100, "filter": filter_, "order": order})
    assert "errors" not in body, body
    conn = body["data"]["incidents"]
    assert conn["totalCount"] == len(conn["nodes"])
    return [n["id"].removeprefix("inc-") for n in conn["nodes"]]


def _ts(moment: datetime) -> str:
    return moment.isoformat()


@pytest.mark.parametrize(
    ("_case", "filter_", "expected"),
    [
        ("none", None, "abecd"),
        ("status_open", {"status": ["OPEN"]}, "ae"),
        ("status_many", {"status": ["ACKNOWLEDGED", "RESOLVED"]}, "bcd"),
        ("status_empty_list", {"status": []}, ""),
        ("severity", {"severity": ["HIGH"]}, "be"),
        ("severity_many", {"severity": ["CRITICAL", "LOW"]}, "ac"),
        ("category", {"category": ["EXECUTION_FAILURE"]}, "be"),
        ("category_uncategorized_is_null", {"category": ["UNCATEGORIZED", "MANUAL"]}, "cd"),
        ("cause_type", {"causeType": ["HUMAN"]}, "cd"),
        ("trigger_type", {"triggerType": ["FREEZE", "COST_SPIKE"]}, "acd"),
        ("source_run", {"sourceRunId": "run-1"}, "b"),
        ("source_run_unknown", {"sourceRunId": "run-9"}, ""),
        ("created_after_inclusive", {"createdAfter": _ts(NOW - 5 * H)}, "abe"),
        ("created_before_exclusive", {"createdBefore": _ts(NOW - 5 * H)}, "cd"),
        ("created_range", {"createdAfter": _ts(NOW - 41 * D), "createdBefore": _ts(NOW - D)},
         "cd"),
        ("resolved_after", {"resolvedAfter": _ts(NOW - 3 * D + 2 * H)}, "c"),
        ("resolved_before", {"resolvedBefore": _ts(NOW - 3 * D + 2 * H)}, "d"),
        ("resolved_range_excludes_unresolved", {"resolvedAfter": _ts(NOW - 100 * D)}, "cd"),
        ("topic_active", {"topic": "ACTIVE"}, "abe"),
        ("topic_resolved", {"topic": "RESOLVED"}, "cd"),
        ("topic_historical", {"topic": "HISTORICAL"}, "d"),
        ("combined_and", {"severity": ["HIGH"], "status": ["OPEN"], "causeType": ["LLM_RUN"]},
         "e"),
    ],
)  # fmt: skip
async def test_each_filter(client, engine, _case, filter_, expected):
    # given five incidents and another tenant's copy of each dimension
    rows = _rows()
    foreign = [inc(r["created_at"], tenant="t2", severity=r["severity"]) for r in rows.values()]
    await seed(engine, [*rows.values(), *foreign], runs=[run("run-1"), run("run-2")])
    # when / then
    assert "".join(await _ids(client, filter_)) == expected


async def test_orderings_exact_sequences(client, engine):
    await seed(engine, list(_rows().values()), runs=[run("run-1"), run("run-2")])
    assert "".join(await _ids(client, None, "CREATED_AT_DESC")) == "abecd"
    assert "".join(await _ids(client, None, "CREATED_AT_ASC")) == "dceba"
    # severity, then newest first
    assert "".join(await _ids(client, None, "SEVERITY_DESC")) == "abedc"
    # newest resolution first, unresolved last (then by id, descending)
    assert "".join(await _ids(client, None, "RESOLVED_AT_DESC")) == "cdeba"


async def _walk(
    client: Any, order: str, first: int, filter_: dict[str, Any] | None = None
) -> list[str]:
    ids: list[str] = []
    after = None
    for _ in range(100):
        body = await gql(
            client, PAGE, {"first": first, "after": after, "filter": filter_, "order": order}
        )
        assert "errors" not in body, body
        conn = body["data"]["incidents"]
        ids += [n["id"] for n in conn["nodes"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return ids
        after = conn["pageInfo"]["endCursor"]
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("order", ["CREATED_AT_DESC", "CREATED_AT_ASC", "SEVERITY_DESC",
                                   "RESOLVED_AT_DESC"])  # fmt: skip
@pytest.mark.parametrize("first", [1, 2, 7])
async def test_pages_across_ties_have_no_duplicates_or_gaps(client, engine, order, first):
    # given 15 incidents that tie in pairs/triples on every sort key but the id
    same_created = NOW - 2 * H
    same_resolved = NOW - H
    resolved: dict[str, Any] = {
        "status": "RESOLVED",
        "resolved_at": same_resolved,
        "ended_at": same_resolved,
        "resolution_method": "AUTO",
    }
    no_change: dict[str, Any] = {}
    rows = [
        inc(
            same_created if k < 9 else NOW - k * H,
            id=f"inc-{k:02d}",
            severity="HIGH" if k % 3 else "LOW",
            **(resolved if k % 2 else no_change),
        )
        for k in range(15)
    ]
    await seed(engine, rows)
    # when
    ids = await _walk(client, order, first)
    everything = await _walk(client, order, 100)
    # then: same sequence whatever the page size, each incident once
    assert ids == everything
    assert sorted(ids) == sorted(r["id"] for r in rows)
    # ties are broken by id in the ordering's direction
    # (the nine tied incidents are the newest)
    if order == "CREATED_AT_ASC":
        assert ids[-9:] == [f"inc-{k:02d}" for k in range(9)]
    if order == "CREATED_AT_DESC":
        assert ids[:9] == [f"inc-{k:02d}" for k in reversed(range(9))]
    if order == "SEVERITY_DESC":
        high = [k for k in range(9) if k % 3]
        assert ids[: len(high)] == [f"inc-{k:02d}" for k in reversed(high)]
    if order == "RESOLVED_AT_DESC":
        done = [k for k in range(15) if k % 2]
        assert ids[: len(done)] == [f"inc-{k:02d}" for k in reversed(done)]


async def test_filtered_pages_keep_the_filter(client, engine):
    rows = [inc(NOW - k * H, id=f"inc-{k:02d}", severity="HIGH" if k % 2 else "LOW")
            for k in range(11)]  # fmt: skip
    await seed(engine, rows)
    ids = await _walk(client, "CREATED_AT_DESC", 2, {"severity": ["HIGH"]})
    assert ids == [f"inc-{k:02d}" for k in (1, 3, 5, 7, 9)]
    body = await gql(client, PAGE, {"first": 2, "filter": {"severity": ["HIGH"]}})
    assert body["data"]["incidents"]["totalCount"] == 5
