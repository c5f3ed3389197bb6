"""Small helpers for tests that speak GraphQL over HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.settings import Settings

JWT_SECRET = "test-secret-not-for-production-0123456789"


@asynccontextmanager
async def serve(settings: Settings, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with its lifespan running, behind an HTTP client (ASGI transport).

    `options` go to create_app (e.g. `span_exporter`).
    """
    app = create_app(settings, **options)
    async with LifespanManager(app) as manager:

        async def per_request_state(scope: Any, receive: Any, send: Any) -> None:
            # As uvicorn does: each request gets its own copy of the lifespan state.
            # LifespanManager.app hands every request the SAME dict, so concurrent requests of
            # a test shared the pipeline's per-request keys (params, principal, commits).
            scope["state"] = dict(manager._state)
            await app(scope, receive, send)

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=per_request_state), base_url="http://gateway.test"
        ) as http:
            yield http


def token(tenant: str = "t1", role: str = "ADMIN", sub: str = "alice") -> str:
    """A JWT the test gateway accepts."""
    claims = {"sub": sub, "tenant_id": tenant, "role": role, "exp": int(time.time()) + 600}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    tenant: str = "t1",
    role: str = "ADMIN",
    sub: str = "alice",
    auth: str | None = None,
) -> dict[str, Any]:
    """POST one operation and return the decoded body (asserting HTTP 200)."""
    headers = {"authorization": auth if auth is not None else f"Bearer {token(tenant, role, sub)}"}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def post_bytes(
    client: httpx.AsyncClient,
    body: bytes,
    *,
    tenant: str = "pa",
    role: str = "VIEWER",
    authorization: str | None = None,
    **headers: str,
) -> httpx.Response:
    """POST these exact body bytes as JSON (the fast lane keys on bytes); `x_y=` is header x-y."""
    sent = {
        "content-type": "application/json",
        "authorization": authorization or f"Bearer {token(tenant, role)}",
        **{name.replace("_", "-"): value for name, value in headers.items()},
    }
    return await client.post("/graphql", content=body, headers=sent)


def error_codes(body: dict[str, Any]) -> list[str]:
    """The extensions.code of every error in a response."""
    return [e["extensions"]["code"] for e in body.get("errors") or []]


class StatementCounter:
    """Counts SQL statements sent by any engine while installed (before_cursor_execute)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def reset(self) -> None:
        self.statements.clear()

    @property
    def count(self) -> int:
        return len(self.statements)
