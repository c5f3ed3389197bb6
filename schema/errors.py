"""Give every error an `extensions.code` and mask the unexpected ones (API.md § Errors).

- GatewayError raised by a resolver: kept; graphql-core already copied its extensions.
- Errors raised before execution (syntax, validation, variable coercion): BAD_USER_INPUT, or
  QUERY_TOO_COMPLEX for the parser's token limit; their messages are safe to show.
- Anything else: "Unexpected error." with code INTERNAL and the request id, logged with its
  traceback under that id so an operator can find it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension

from resolvers.errors import GatewayError

__all__ = ["ErrorCodes", "ParseErrorsInside"]

log = logging.getLogger("gateway.errors")

# graphql-core's parser message; a syntax error, so it carries the "Syntax Error: " prefix.
_TOKEN_LIMIT = "Syntax Error: Document contains more than"  # noqa: S105 - parser message prefix


class ParseErrorsInside(ParserCache):
    """ParserCache whose syntax errors reach ErrorCodes.

    The stock hook parses before its `yield`, outside strawberry's parse error handling, so a
    syntax error (or the token limit) escaped every `on_operation` hook and lost its code. A failed
    parse here leaves the document unset; strawberry then parses again inside its handler and
    reports the error like a validation error, which ErrorCodes codes. Only bad documents parse
    twice.
    """

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        try:
            ctx.graphql_document = self.cached_parse_document(ctx.query, **ctx.parse_options)
        except GraphQLError:
            ctx.graphql_document = None
        yield


def _request_id(extension: SchemaExtension) -> str:
    return str(getattr(extension.execution_context.context, "request_id", "-"))


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [self._coded(e) for e in result.errors]

    def _coded(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, GatewayError) or (error.extensions or {}).get("code"):
            return error
        if original is None or error.path is None:
            # Made by graphql-core before execution: syntax, validation, variable coercion.
            code = (
                "QUERY_TOO_COMPLEX" if error.message.startswith(_TOKEN_LIMIT) else "BAD_USER_INPUT"
            )
            return GraphQLError(
                error.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions={**(error.extensions or {}), "code": code},
            )
        request_id = _request_id(self)
        log.error(
            "unexpected error (request %s) at %s",
            request_id,
            error.path,
            exc_info=(type(original), original, original.__traceback__),
        )
        return GraphQLError(
            f"Unexpected error. Request id: {request_id}",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL", "requestId": request_id},
        )
