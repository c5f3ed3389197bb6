"""The Grafana dashboard and the Prometheus alert rules use only what /metrics really serves.

Every metric name in their PromQL, and every label they select or group by, must appear in the
/metrics output of the real app after it has served reads, writes, errors and a job run. The
rules also pass `promtool check rules` and their unit tests (`promtool test rules`) where
promtool is installed (.ci/run installs it from Debian's prometheus package).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.settings import Settings
from tests.factories_breaker import DISABLE
from tests.helpers import gql, serve, token

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "gateway-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"

# Labels Prometheus itself adds to every scraped series, and histogram buckets' `le`.
SCRAPE_LABELS = {"instance", "job", "le"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_METRIC = re.compile(r"\b(gateway_[a-z0-9_]+)")
_SELECTOR = re.compile(r"\b(gateway_[a-z0-9_]+)\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def _dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in board["panels"] for target in panel.get("targets", [])
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            expressions.append(variable["definition"])
    return expressions


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _all_expressions() -> list[str]:
    return _dashboard_expressions() + [str(rule["expr"]) for rule in _rules()]


def _served_base(name: str, served: dict[str, set[str]]) -> str | None:
    """The served sample name `name` refers to (a histogram's _bucket/_sum/_count included)."""
    if name in served:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name in served:
            return name
    return None


async def _exercise(http: httpx.AsyncClient) -> None:
    """Reads on both paths, a write that trips a breaker and queues an alert, refused requests."""
    listing = "query Listing { incidents(first: 3) { totalCount } }"
    assert (await gql(http, listing))["data"] == {"incidents": {"totalCount": 0}}
    assert (await gql(http, listing))["data"] == {"incidents": {"totalCount": 0}}  # shortcut
    tripped = await gql(http, DISABLE, {"reason": "dashboard test"})
    assert tripped["data"]["disableCircuitBreaker"]["changed"] is True
    refused = await http.post("/graphql", json={"query": listing})
    assert refused.status_code == 401
    broken = await http.post(
        "/graphql",
        content=b'{"query": ',
        headers={"authorization": f"Bearer {token()}", "content-type": "application/json"},
    )
    assert broken.status_code == 400


async def _scrape_until_jobs_ran(http: httpx.AsyncClient) -> dict[str, set[str]]:
    """Sample names on /metrics with the label names each carries, once a job has run."""
    for _ in range(100):  # the jobs start with the app; bounded wait for their first calls
        answer = await http.get("/metrics")
        assert answer.status_code == 200
        served: dict[str, set[str]] = {}
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                served.setdefault(sample.name, set()).update(sample.labels)
        if "gateway_job_runs_total" in served and "gateway_alert_deliveries_total" in served:
            return served
        await asyncio.sleep(0.1)
    raise AssertionError("no background job ran within 10 s")


@pytest.fixture
async def served(settings: Settings) -> dict[str, set[str]]:
    """What the real app's /metrics serves after some traffic (jobs on, compiled reads on)."""
    live = settings.model_copy(
        update={"gateway_compiled_reads": True, "gateway_background_jobs": True}
    )
    async with serve(live) as http:
        await _exercise(http)
        return await _scrape_until_jobs_ran(http)


async def test_every_metric_the_dashboard_and_the_alerts_use_is_served(
    served: dict[str, set[str]],
) -> None:
    used = {name for expr in _all_expressions() for name in _METRIC.findall(expr)}
    assert len(used) >= 15, used  # the regex found the expressions' metrics
    missing = {name for name in used if _served_base(name, served) is None}
    assert missing == set(), f"not on /metrics: {sorted(missing)}"
    # the alerts' and dashboard's text outside the expressions names no other metric either
    mentioned = set(_METRIC.findall(DASHBOARD.read_text() + ALERTS.read_text()))
    assert mentioned <= set(served), mentioned - set(served)


async def test_every_label_they_select_or_group_by_is_one_the_metrics_carry(
    served: dict[str, set[str]],
) -> None:
    problems = []
    for expr in _all_expressions():
        names = _METRIC.findall(expr)
        carried = set().union(*(served.get(n, set()) for n in names))
        for name, matchers in _SELECTOR.findall(expr):
            for label in _MATCHER.findall(matchers):
                if label not in served.get(name, set()) | SCRAPE_LABELS:
                    problems.append(f"{name} has no label {label!r}: {expr}")
        for grouping in _GROUPING.findall(expr):
            for label in (part.strip() for part in grouping.split(",")):
                if names and label not in carried | SCRAPE_LABELS:
                    problems.append(f"no metric of the expression has {label!r}: {expr}")
    assert problems == []


def test_the_dashboard_is_a_grafana_dashboard_with_a_panel_per_concern() -> None:
    board = json.loads(DASHBOARD.read_text())
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    exprs = " ".join(_dashboard_expressions())
    # what an operator looks at (issue #17 item 7)
    for concern in (
        "sum by (path) (rate(gateway_graphql_operations_total",  # requests per read path
        "histogram_quantile(0.99",  # p99 latency (and p50)
        "histogram_quantile(0.5",
        "sum by (code) (rate(gateway_graphql_errors_total",  # errors by code
        "gateway_subscribers",
        "gateway_alert_outbox_pending",  # outbox depth
        "gateway_alert_outbox_failed",  # dead letters
        "gateway_breakers_open",  # breaker state
        "gateway_replica_lag_seconds",
    ):
        assert concern in exprs, concern


def test_each_alert_rule_has_what_an_on_call_needs() -> None:
    rules = _rules()
    assert {rule["alert"] for rule in rules} >= {
        "GatewayCircuitBreakerOpen",
        "GatewayAlertDeadLetters",
        "GatewayReplicaLagHigh",
        "GatewayListenerDown",
        "GatewayHigh5xxRate",
    }
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool not installed (Debian package prometheus; .ci/run installs it): "
            "the rules were checked structurally only"
        )
    return subprocess.run(
        [path, *args], capture_output=True, text=True, timeout=60, cwd=ALERTS.parent, check=False
    )


def test_promtool_accepts_the_rules() -> None:
    checked = _promtool("check", "rules", ALERTS.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in checked.stdout


def test_the_rules_fire_on_the_series_that_should_trip_them() -> None:
    tested = _promtool("test", "rules", ALERT_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
