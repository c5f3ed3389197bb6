"""GraphQL-shaped error answers given outside execution (auth, idempotency, no database)."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from resolvers.errors import GatewayError

__all__ = ["error_response"]


def error_response(error: GatewayError, status: int) -> Response:
    """An `{"errors": [...]}` body with the error's code, at the given HTTP status."""
    body = {"errors": [{"message": error.message, "extensions": error.extensions}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
