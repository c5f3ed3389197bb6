"""Give every error an `extensions.code` and mask the unexpected ones (API.md § Errors).

- GatewayError raised by a resolver: kept; graphql-core already copied its extensions.
- Errors raised before execution (syntax, validation, variable coercion): BAD_USER_INPUT, or
  QUERY_TOO_COMPLEX for the parser's token limit; their messages are safe to show.
- Anything else: "Unexpected error." with code INTERNAL and the request id, logged with its
  traceback under that id so an operator can find it.

Every error is logged once, by `log_errors` (the schema's `process_errors`): one line with the
request id and code, a traceback only for INTERNAL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension
from strawberry.types import ExecutionResult

from resolvers.errors import GatewayError

__all__ = ["ErrorCodes", "ParseErrorsInside", "coded_error", "error_code", "log_errors"]

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


def _request_id(context: object) -> str:
    return str(getattr(context, "request_id", "-"))


def error_code(error: GraphQLError) -> str:
    """The `extensions.code` the client sees for this error (ErrorCodes applies it)."""
    original = error.original_error
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    if isinstance(original, GatewayError):
        return original.code
    if original is None or error.path is None:
        # Made by graphql-core before execution: syntax, validation, variable coercion.
        return "QUERY_TOO_COMPLEX" if error.message.startswith(_TOKEN_LIMIT) else "BAD_USER_INPUT"
    return "INTERNAL"


# Refusals an operator may want to notice (probing, expired credentials, overload) log at
# WARNING; the caller's own mistakes at INFO. Only INTERNAL is ours: ERROR with its traceback.
_WARNING_CODES = frozenset(
    {"UNAUTHENTICATED", "FORBIDDEN", "RATE_LIMITED", "GOVERNANCE_ERROR", "SERVICE_UNAVAILABLE"}
)


def log_errors(errors: list[GraphQLError], context: object) -> None:
    """One line per error with its request id and code; a traceback only for INTERNAL.

    Replaces Strawberry's `process_errors`, which logged every error (a NOT_FOUND too) at ERROR
    with a traceback.
    """
    request_id = _request_id(context)
    for error in errors:
        code = error_code(error)
        # The message may hold client input: one line, whatever it contains.
        message = error.message.replace("\r", "\\r").replace("\n", "\\n")
        where = f" at {'.'.join(map(str, error.path))}" if error.path else ""
        extra = {"request_id": request_id, "code": code}
        original = error.original_error
        if code == "INTERNAL":
            exc_info = (type(original), original, original.__traceback__) if original else None
            log.error(
                "INTERNAL (request %s)%s: %s",
                request_id,
                where,
                message,
                exc_info=exc_info,
                extra=extra,
            )
        else:
            level = logging.WARNING if code in _WARNING_CODES else logging.INFO
            log.log(level, "%s (request %s)%s: %s", code, request_id, where, message, extra=extra)


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [self._coded(e) for e in result.errors]

    def on_stream_result(self, result: object) -> Iterator[None]:
        """Streamed results (subscription events, SSE) leave before `on_operation` ends."""
        if isinstance(result, ExecutionResult) and result.errors:
            result.errors = [self._coded(e) for e in result.errors]
        yield

    def _coded(self, error: GraphQLError) -> GraphQLError:
        return coded_error(error, self.execution_context.context)


def coded_error(error: GraphQLError, context: object) -> GraphQLError:
    """The error as the client sees it: with its `extensions.code`, masked when INTERNAL.

    ErrorCodes applies it to every result; the prepared-write path (schema/prepared_writes.py)
    to the results it executes itself.
    """
    code = error_code(error)
    if (error.extensions or {}).get("code") == code:
        return error
    if code != "INTERNAL":
        return GraphQLError(
            error.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={**(error.extensions or {}), "code": code},
        )
    # Logged with its traceback by log_errors (the schema's process_errors) under this id.
    request_id = _request_id(context)
    return GraphQLError(
        f"Unexpected error. Request id: {request_id}",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "INTERNAL", "requestId": request_id},
    )
