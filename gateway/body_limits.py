"""Body limits: a /graphql request is bounded, checked and decoded once, before anything else.

Size is bounded before reading (Content-Length) and while reading (streamed bytes), so no request
larger than MAX_REQUEST_BYTES is ever held in memory: 413. The body is decoded by orjson, whose
parser stops at 1,024 levels of nesting with an error instead of recursing (a 100,000-deep body
used to end in a RecursionError and HTTP 500), and `variables`/`extensions` may nest at most
MAX_JSON_DEPTH levels, well inside what the encoders after us accept. Anything malformed is a
400 BAD_USER_INPUT naming the field at fault; a method other than GET or POST is a 405. The
decoded parameters go on in `scope["state"]` (gateway/pipeline.py PARAMS), so no later
middleware and not Strawberry decode the body again.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.pipeline import PARAMS, header, is_graphql_http, state
from gateway.responses import error_response, response_media_type
from gateway.trusted_documents import names_a_document
from resolvers.errors import BadUserInput

__all__ = ["MAX_JSON_DEPTH", "Refused", "RequestBodyLimits", "nested_deeper_than", "params_of"]

# Deepest nesting of `variables` and `extensions` (orjson itself refuses to encode past 254).
MAX_JSON_DEPTH = 64
_ALLOWED = "GET, POST"
_LONG_DIGITS = re.compile(rb"\d{20,}")


class Refused(Exception):
    """A request the pipeline answers itself, with this status and error."""

    def __init__(
        self, status: int, message: str, *, field: str | None = None, allow: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = BadUserInput(message, field=field)
        self.headers = {"allow": allow} if allow else None


def nested_deeper_than(value: dict[str, Any] | list[Any], limit: int) -> bool:
    """True when JSON `value` nests objects/arrays more than `limit` levels deep (no recursion)."""
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _decode(text: bytes | str, what: str, field: str | None = None) -> Any:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, f"{what} is not valid JSON: {exc}", field=field) from exc
    raw = text.encode() if isinstance(text, str) else text
    if _LONG_DIGITS.search(raw) is None:
        return data
    # orjson reads an integer past 64 bits as a float, silently losing digits; the stdlib keeps
    # it exact so that schema/input_guard.py can refuse it naming its field. Rare, so the slower
    # decoder runs only when a run of 20+ digits is present (in a string or not).
    try:
        return json.loads(raw)
    except RecursionError as exc:
        raise Refused(400, f"{what} nests too deep.", field=field) from exc


def _checked(data: object) -> dict[str, Any]:
    """The parameters of one GraphQL-over-HTTP request, or Refused naming what is wrong."""
    if isinstance(data, list):
        raise Refused(400, "Batched requests (a JSON array) are not supported: send one object.")
    if not isinstance(data, dict):
        raise Refused(400, "The request body must be a JSON object {query, variables, ...}.")
    query = data.get("query")
    if not isinstance(query, str) and not (query is None and names_a_document(data)):
        raise Refused(400, "`query` must be a string holding a GraphQL document.", field="query")
    if not isinstance(data.get("operationName"), str | None):
        raise Refused(400, "`operationName` must be a string or null.", field="operationName")
    for name in ("variables", "extensions"):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise Refused(400, f"`{name}` must be a JSON object or null.", field=name)
        if value and nested_deeper_than(value, MAX_JSON_DEPTH):
            raise Refused(400, f"`{name}` nests deeper than {MAX_JSON_DEPTH} levels.", field=name)
    return data


def params_of(body: bytes) -> dict[str, Any]:
    """A POST body's checked parameters, or Refused (gateway/fast_lane.py decodes the same way)."""
    return _checked(_decode(body, "The request body"))


class RequestBodyLimits:
    """Bounds, checks and decodes every HTTP request to /graphql (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_graphql_http(scope):
            await self.app(scope, receive, send)
            return
        try:
            if scope["method"] == "POST":
                body = await self._read_body(scope, receive)
                if body is None:  # the client went away
                    return
                params = params_of(body)
                receive = _replaying(body, receive)
            elif scope["method"] == "GET":
                params = self._query_params(scope)
            else:
                raise Refused(405, "/graphql answers GET and POST only.", allow=_ALLOWED)
        except Refused as refused:
            media_type = response_media_type(header(scope, b"accept"))
            response = error_response(
                refused.error, refused.status, media_type=media_type, headers=refused.headers
            )
            await response(scope, receive, send)
            return
        state(scope)[PARAMS] = params
        await self.app(scope, receive, send)

    def _too_large(self) -> Refused:
        return Refused(413, f"The request is larger than {self.max_bytes} bytes.")

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        content_type = header(scope, b"content-type")
        mime = (content_type or "").partition(";")[0].strip().lower()
        if mime != "application/json":
            raise Refused(
                400,
                f"Content-Type must be application/json, not {content_type or 'missing'}.",
                field="Content-Type",
            )
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _query_params(self, scope: Scope) -> dict[str, Any]:
        if len(scope["query_string"]) > self.max_bytes:
            raise self._too_large()
        query = QueryParams(scope["query_string"])
        params: dict[str, Any] = {
            "query": query.get("query"),
            "operationName": query.get("operationName") or None,
            "documentId": query.get("documentId") or None,
        }
        for name in ("variables", "extensions"):
            text = query.get(name)
            params[name] = _decode(text, f"`{name}`", field=name) if text else None
        return _checked(params)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the already-read body once, then the client's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
