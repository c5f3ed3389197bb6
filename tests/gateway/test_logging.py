"""Error logging through the real app: one line per client error, a traceback only for INTERNAL."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from drivers import tables as t
from gateway.logs import TEXT_FORMAT, JsonFormatter
from tests.factories import incident_row, insert_rows
from tests.gateway.test_incident_mutations import ACKNOWLEDGE, _failing_audit_inserts
from tests.helpers import error_codes, token

MISSING = "00000000-0000-4000-8000-000000000000"


async def _post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any],
    *,
    request_id: str,
    role: str = "OPERATOR",
) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token(role=role)}", "x-request-id": request_id},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == request_id
    body: dict[str, Any] = response.json()
    return body


def _seen(record: logging.LogRecord) -> tuple[str, str, str]:
    """Level, request id and code: the last two are record attributes (extra=)."""
    return record.levelname, vars(record)["request_id"], vars(record)["code"]


def _error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the app logged about GraphQL errors (ours and Strawberry's default logger)."""
    return [r for r in caplog.records if r.name in ("gateway.errors", "strawberry.execution")]


async def test_not_found_logs_one_line_with_request_id_and_code(client, caplog):
    # when
    with caplog.at_level(logging.DEBUG):
        body = await _post(client, ACKNOWLEDGE, {"id": MISSING}, request_id="log-nf-1")
    # then
    assert error_codes(body) == ["NOT_FOUND"]
    [record] = _error_records(caplog)
    assert _seen(record) == ("INFO", "log-nf-1", "NOT_FOUND")
    assert record.exc_info is None
    text = logging.Formatter(TEXT_FORMAT).format(record)
    assert "\n" not in text and "Traceback" not in text
    assert "NOT_FOUND (request log-nf-1) at acknowledgeIncident" in text
    line = json.loads(JsonFormatter().format(record))
    assert {k: line[k] for k in ("level", "logger", "request_id", "code")} == {
        "level": "INFO",
        "logger": "gateway.errors",
        "request_id": "log-nf-1",
        "code": "NOT_FOUND",
    }
    assert "traceback" not in line


async def test_refusals_log_at_warning_and_bad_input_at_info(client, caplog):
    # when: a VIEWER may not acknowledge; a document that does not parse
    with caplog.at_level(logging.DEBUG):
        forbidden = await _post(
            client, ACKNOWLEDGE, {"id": MISSING}, request_id="log-fb-1", role="VIEWER"
        )
        bad = await _post(client, "{ incidents(", {}, request_id="log-bad-1")
    # then
    assert (error_codes(forbidden), error_codes(bad)) == (["FORBIDDEN"], ["BAD_USER_INPUT"])
    records = _error_records(caplog)
    assert [_seen(r) for r in records] == [
        ("WARNING", "log-fb-1", "FORBIDDEN"),
        ("INFO", "log-bad-1", "BAD_USER_INPUT"),
    ]
    assert all(r.exc_info is None for r in records)


async def test_internal_error_logs_its_traceback_once(client, engine, caplog):
    # given
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    # when
    with caplog.at_level(logging.DEBUG):
        async with _failing_audit_inserts(engine):
            body = await _post(client, ACKNOWLEDGE, {"id": inc["id"]}, request_id="log-boom-1")
    # then
    assert error_codes(body) == ["INTERNAL"]
    [record] = _error_records(caplog)
    assert _seen(record) == ("ERROR", "log-boom-1", "INTERNAL")
    text = logging.Formatter(TEXT_FORMAT).format(record)
    assert "Traceback" in text and "audit_log is refusing writes" in text
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["request_id"], line["code"]) == ("ERROR", "log-boom-1", "INTERNAL")
    assert "audit_log is refusing writes" in line["traceback"]
