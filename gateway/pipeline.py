"""What the request pipeline's middleware share: the GraphQL path, scope-state keys, headers.

Each concern of ARCHITECTURE.md § "The request pipeline" is one pure-ASGI middleware in its own
module, composed in one list in gateway/app.py. They talk through `scope["state"]` (Starlette's
`request.state`): the body is decoded once by gateway/body_limits.py and handed on as a dict.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

__all__ = [
    "GRAPHQL_PATH",
    "IDEMPOTENCY_KEY",
    "PARAMS",
    "PRINCIPAL",
    "header",
    "is_graphql_http",
    "state",
]

GRAPHQL_PATH = "/graphql"
# scope["state"] keys
PARAMS = "graphql_params"  # the decoded {query, variables, operationName, extensions}
PRINCIPAL = "principal"  # resolvers.auth.Principal of the caller
IDEMPOTENCY_KEY = "idempotency_key"  # set while the Idempotency-Key middleware runs the request


def is_graphql_http(scope: Scope) -> bool:
    """An HTTP request to /graphql (WebSockets authenticate in connection_init instead)."""
    return bool(scope["type"] == "http" and scope["path"] == GRAPHQL_PATH)


def header(scope: Scope, name: bytes) -> str | None:
    """One request header by its lower-case name, straight from the ASGI scope."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def state(scope: Scope) -> dict[str, Any]:
    """The request's state dict (lifespan state copied in by the server, plus ours)."""
    found: dict[str, Any] = scope.setdefault("state", {})
    return found
