"""GraphQL-shaped error answers given outside execution, and the response media type.

Every answer of /graphql is JSON with `errors[].extensions.code`, transport errors included
(API.md § Errors); the pipeline's middleware and the GraphQL view build them here.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.metrics import count_errors
from resolvers.errors import GatewayError

__all__ = [
    "GRAPHQL_RESPONSE",
    "JSON",
    "code_uncoded_errors",
    "error_body",
    "error_response",
    "internal_error",
    "response_media_type",
]

log = logging.getLogger("gateway.errors")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


def response_media_type(accept: str | None) -> str:
    """GraphQL-over-HTTP: answer in the newer media type when the client asks for it."""
    return GRAPHQL_RESPONSE if accept is not None and GRAPHQL_RESPONSE in accept else JSON


def error_body(error: GatewayError) -> bytes:
    """`{"errors": [...]}` with the error's code, as JSON (the code is counted)."""
    extensions = error.extensions
    count_errors((extensions["code"],))
    return orjson.dumps({"errors": [{"message": error.message, "extensions": extensions}]})


def error_response(
    error: GatewayError,
    status: int,
    *,
    media_type: str = JSON,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error_body answer at the given HTTP status."""
    return Response(error_body(error), status_code=status, media_type=media_type, headers=headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    """Starlette's last-resort handler: an unhandled exception answers JSON INTERNAL, not text.

    The server still logs the traceback (ServerErrorMiddleware re-raises); the client sees only
    the request id to quote.
    """
    request_id = str(getattr(request.state, "request_id", "-"))
    error = GatewayError(f"Unexpected error. Request id: {request_id}", requestId=request_id)
    return error_response(error, 500, headers={"x-request-id": request_id})


def code_uncoded_errors(response: dict[str, Any], request_id: str) -> None:
    """Last guard on an executed result: an error without a code becomes INTERNAL.

    An error that escaped the schema's ErrorCodes (e.g. raised inside an extension hook) still
    gets a code and never leaks its message; the log keeps the message with the request id.
    """
    errors: list[dict[str, Any]] = response.get("errors") or []
    for error in errors:
        if not (error.get("extensions") or {}).get("code"):
            log.error("uncoded error (request %s): %s", request_id, error.get("message"))
            error["message"] = f"Unexpected error. Request id: {request_id}"
            error["extensions"] = {"code": "INTERNAL", "requestId": request_id}
