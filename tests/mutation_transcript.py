"""A pytest plugin that writes what every mutation of a test run answered and wrote.

    MUTATION_TRANSCRIPT=out.jsonl python -m pytest -p tests.mutation_transcript tests/gateway/...

For each test that sent a mutation over HTTP (to any app served through httpx's ASGI
transport): every mutation request in order with its status, the headers a client acts on
(content-type, X-Gateway-Read-Path, Idempotent-Replayed, whether X-Gateway-LSN came) and its
body; the pg_notify payloads heard on the gateway's channel; every table of the test database at
the end of the test (audit rows, outbox rows, entity rows); and how the GraphQL metrics counters moved (operations by path, errors
by code). One JSON line per test, marked `concurrent` when its requests overlapped (their order
and the winner of a race may then differ between runs). tests/gateway/test_prepared_writes.py runs the same tests with
MUTATION_FAST_PATH on and off and compares the two transcripts.

Values that differ between two runs by nature are normalised deterministically: every generated
id (UUIDs, the short `8hex-3hex` ids of breaker incidents, random hex of 8 to 32 digits alone or
after a prefix such as `scope_` or `SIG-`) becomes `<id:N>`, N counting distinct ids in order of
first appearance within the test (requests, answers, then table rows in a stable order), so
equal ids stay equal and references keep their shape; timestamps (ISO 8601 text and datetime
values) become `<ts>`; 64-digit hex (content hashes over timestamps) becomes `<hex>`; elapsed
times (`durationSeconds`, `timeToResolutionMillis`, ... of rows the tests date relative to the
clock) become `<elapsed>`. Everything else, byte for byte, must match.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from graphql import OperationDefinitionNode, OperationType, parse
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import tables
from drivers.audit import NOTIFY_CHANNEL

ENV = "MUTATION_TRANSCRIPT"
# Generated ids: UUIDs, the short ids of breaker incidents (8 hex, dash, 3 hex), and random hex
# of 8 to 32 digits (ids and their shortened forms) alone or after a prefix (`scope_…`, `SIG-…`,
# `inc_…`, `pm-…`, bundle ids, request ids).
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b[0-9a-f]{8}-[0-9a-f]{3}\b"
    r"|(?<![0-9A-Za-z])[0-9a-f]{8,32}(?![0-9A-Za-z])"
)
_TS = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d(:?\d\d)?)?")
# Elapsed times the tests' clock-relative rows make differ by the seconds between two runs.
_ELAPSED_KEYS = (
    "durationSeconds",
    "duration_seconds",
    "timeToResolutionMillis",
    "timeToResolutionMs",
)
_ELAPSED = re.compile(rf'"({"|".join(_ELAPSED_KEYS)})":\s*-?\d+(\.\d+)?')
_HEX = re.compile(r"\b[0-9a-f]{64}\b")
# A writer's transaction id (payloads, change rows): the cluster's counter, not the test's.
_XID = re.compile(r'"xid":\s*\d+')
PREPARED = "gateway_prepared_writes_total{}"  # not compared: it says which path served
_METRICS = (
    "gateway_graphql_operations_total",
    "gateway_graphql_errors_total",
    "gateway_prepared_writes_total",
)
_HEADERS = ("content-type", "x-gateway-read-path", "idempotent-replayed")


class Normaliser:
    """Masks the values two runs may not share (see the module docstring)."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def text(self, value: str) -> str:
        value = _UUID.sub(
            lambda m: self.ids.setdefault(m[0].lower(), f"<id:{len(self.ids)}>"), value
        )
        value = _TS.sub("<ts>", value)
        value = _ELAPSED.sub(r'"\1":"<elapsed>"', value)
        value = _XID.sub('"xid":"<xid>"', value)
        return _HEX.sub("<hex>", value)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (dt.datetime, dt.date, dt.time)):
            return "<ts>"
        if isinstance(value, dt.timedelta):
            return "<interval>"
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, dict):
            return {
                k: "<elapsed>"
                if k in _ELAPSED_KEYS and v is not None
                else "<xid>"
                if k == "xid"
                else self.value(v)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        if isinstance(value, bytes):  # e.g. the answer an Idempotency-Key row keeps
            try:
                return self.text(value.decode())
            except UnicodeDecodeError:
                return self.text(value.hex())
        return value


def _is_mutation(content: bytes) -> bool:
    try:
        body = orjson.loads(content)
        document = parse(body["query"])
    except Exception:  # not a mutation request this plugin can read
        return False
    name = body.get("operationName")
    return any(
        isinstance(d, OperationDefinitionNode)
        and d.operation is OperationType.MUTATION
        and (name is None or (d.name is not None and d.name.value == name))
        for d in document.definitions
    )


class _Recorder:
    def __init__(self) -> None:
        self.entries: list[tuple[bytes, int, dict[str, str], bytes]] = []
        self.in_flight = 0
        # Requests overlapped: their order, and which of them wins a race, may differ by run.
        self.concurrent = False


_CURRENT: list[_Recorder] = []
_ORIGINAL = httpx.ASGITransport.handle_async_request


async def _recording(self: httpx.ASGITransport, request: httpx.Request) -> httpx.Response:
    recorder = _CURRENT[-1] if _CURRENT else None
    if recorder is not None:
        recorder.in_flight += 1
        recorder.concurrent |= recorder.in_flight > 1
    try:
        response = await _ORIGINAL(self, request)
    finally:
        if recorder is not None:
            recorder.in_flight -= 1
    if recorder is None or request.method != "POST" or request.url.path != "/graphql":
        return response
    content = request.content
    if not _is_mutation(content):
        return response
    body = await response.aread()
    headers = {k: response.headers[k] for k in _HEADERS if k in response.headers}
    if "x-gateway-lsn" in response.headers:
        headers["x-gateway-lsn"] = "present"
    recorder.entries.append((content, response.status_code, headers, body))
    return httpx.Response(
        response.status_code, headers=response.headers, content=body, request=request
    )


def _counters() -> dict[str, float]:
    found: dict[str, float] = {}
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name in _METRICS:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


async def _tables(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    dump: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            rows = (await conn.execute(text(f"SELECT * FROM {table.name}"))).mappings()  # noqa: S608
            dump[table.name] = [dict(row) for row in rows]
    return dump


def _stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in an order that does not depend on generated values (they are masked first)."""
    blind = Normaliser()
    return sorted(
        rows,
        key=lambda row: orjson.dumps(
            _blind(blind, row), default=str, option=orjson.OPT_NON_STR_KEYS
        ),
    )


def _blind(normaliser: Normaliser, row: dict[str, Any]) -> Any:
    masked = normaliser.value(row)
    return orjson.loads(
        _UUID_MARK.sub(b"<id>", orjson.dumps(masked, default=str, option=orjson.OPT_NON_STR_KEYS))
    )


_UUID_MARK = re.compile(rb"<id:\d+>")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(ENV):
        httpx.ASGITransport.handle_async_request = _recording  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
async def _mutation_transcript(
    request: pytest.FixtureRequest, engine: AsyncEngine, _clean_tables: None
) -> AsyncIterator[None]:
    """Set up after _clean_tables, so the dump runs before that empties the tables."""
    path = os.environ.get(ENV)
    if not path:
        yield
        return
    recorder = _Recorder()
    before = _counters()
    heard: list[str] = []
    listener = await asyncpg.connect(
        engine.url.render_as_string(hide_password=False).replace(
            "postgresql+asyncpg://", "postgresql://", 1
        )
    )
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: heard.append(args[3]))
    _CURRENT.append(recorder)
    try:
        yield
    finally:
        _CURRENT.remove(recorder)
        await asyncio.sleep(0.05)  # notifications of the last commit still on their way
        await listener.close()
    if not recorder.entries:
        return
    after = _counters()
    normaliser = Normaliser()
    requests = [
        {
            "request": normaliser.text(content.decode()),
            "status": status,
            "headers": normaliser.value(headers),
            "body": normaliser.text(body.decode()),
        }
        for content, status, headers, body in recorder.entries
    ]
    dump = await _tables(engine)
    rows = {name: normaliser.value(_stable(found)) for name, found in dump.items() if found}
    moved = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    prepared = moved.pop(PREPARED, 0.0)
    line = {
        "test": request.node.nodeid,
        "requests": requests,
        "tables": rows,
        # pg_notify payloads in the order they were heard (only counted when requests overlapped)
        "notifications": [normaliser.text(payload) for payload in heard],
        "metrics": moved,
        # A test marked `races` writes from racing tasks besides its requests (two sweepers).
        "concurrent": recorder.concurrent or request.node.get_closest_marker("races") is not None,
        "prepared_writes": prepared,
    }
    with Path(path).open("ab") as out:  # noqa: ASYNC230 - one short append per test
        out.write(orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n")
