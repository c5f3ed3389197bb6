"""Trusted documents: a request may name its document by SHA-256 instead of sending it.

`documentId: "sha256:<hex>"` (or a bare hex) or the APQ extension
`extensions.persistedQuery.sha256Hash` names a document; this step puts its text into the
decoded parameters (gateway/pipeline.py PARAMS) as `query`, so everything after it, the
repeated-read shortcut included, sees an ordinary request. TRUSTED_DOCUMENTS decides what else
is accepted (README.md § Trusted documents, docs/decisions.md):

- `off`: ids and the APQ extension are ignored; every request carries its `query`.
- `allow` (default): registered ids, APQ (a query sent with its matching hash is remembered by
  this process, in a bounded LRU, never written to the table) and any plain query.
- `only`: registered documents only; anything else is FORBIDDEN, reason
  PERSISTED_QUERY_NOT_ALLOWED.

An unknown id answers the message `PersistedQueryNotFound` (what Apollo clients look for before
resending with the query), code NOT_FOUND, reason PERSISTED_QUERY_NOT_FOUND, HTTP 200 and
no-cache, as Apollo Server does. Runs after authentication, so only callers can make it look up
or remember anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from cachetools import LRUCache
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from drivers.trusted_documents import (
    document_hash,
    fetch_document,
    list_documents,
    normalize_hash,
)
from gateway.pipeline import PARAMS, header, is_graphql_http, state
from gateway.responses import error_response, response_media_type
from resolvers.errors import BadUserInput, Forbidden, GatewayError, NotFound, translate_errors

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = [
    "DOCUMENT_IDS",
    "DocumentCache",
    "DocumentIds",
    "Mode",
    "TrustedDocuments",
    "load_documents",
    "names_a_document",
]

Mode = Literal["off", "allow", "only"]
# Documents one process keeps: registered ones read from the table, and APQ registrations.
CACHE_SIZE = 10_000
_NO_CACHE = {"cache-control": "private, no-cache, must-revalidate"}
DOCUMENT_IDS = "trusted_documents"  # lifespan-state key of the app's DocumentIds (WebSockets)


def names_a_document(params: dict[str, Any]) -> bool:
    """A `documentId` or an APQ hash (`extensions.persistedQuery`) may stand for `query`."""
    extensions = params.get("extensions")
    return params.get("documentId") is not None or (
        isinstance(extensions, dict) and extensions.get("persistedQuery") is not None
    )


class DocumentCache:
    """hash -> text of the documents this process knows (content-addressed, so never stale)."""

    def __init__(self, maxsize: int = CACHE_SIZE) -> None:
        self._known: LRUCache[str, str] = LRUCache(maxsize=maxsize)

    def __contains__(self, hash_: str) -> bool:
        return hash_ in self._known

    def remember(self, hash_: str, document: str) -> None:
        self._known[hash_] = document

    async def get(self, engine: AsyncEngine, hash_: str) -> str | None:
        """The document: from this process's memory, else from the table (then remembered)."""
        found = self._known.get(hash_)
        if found is None:
            with translate_errors():
                async with engine.connect() as conn:
                    found = await fetch_document(conn, hash_)
            if found is not None:
                self._known[hash_] = found
        return found


async def load_documents(engine: AsyncEngine, cache: DocumentCache) -> list[str]:
    """Put every registered document into `cache` at start-up; returns their texts."""
    with translate_errors():
        async with engine.connect() as conn:
            documents = await list_documents(conn)
    for document in documents:
        cache.remember(document.hash, document.document)
    return [d.document for d in documents]


def _hash_param(value: object, field: str, what: str) -> str:
    found = normalize_hash(value) if isinstance(value, str) else None
    if found is None:
        raise BadUserInput(f'`{what}` must be "sha256:<64 hex digits>".', field=field)
    return found


def _requested_id(params: dict[str, Any]) -> tuple[str, str] | None:
    """(id, field that named it) of the request's document id or APQ hash; None if neither."""
    named: list[tuple[str, str]] = []
    if params.get("documentId") is not None:
        named.append((_hash_param(params["documentId"], "documentId", "documentId"), "documentId"))
    apq = (params.get("extensions") or {}).get("persistedQuery")
    if apq is not None:
        field = "extensions.persistedQuery"
        if not isinstance(apq, dict) or apq.get("version") != 1:
            raise BadUserInput(
                '`extensions.persistedQuery` must be {"version": 1, "sha256Hash": "<hex>"}.',
                field=field,
            )
        named.append((_hash_param(apq.get("sha256Hash"), f"{field}.sha256Hash", field), field))
    if len(named) == 2 and named[0][0] != named[1][0]:
        raise BadUserInput(
            "`documentId` and the APQ hash name different documents.", field="documentId"
        )
    return named[0] if named else None


class DocumentIds:
    """TRUSTED_DOCUMENTS applied to one operation's parameters (HTTP body or WebSocket payload)."""

    def __init__(self, mode: Mode, documents: DocumentCache) -> None:
        self.mode = mode
        self.documents = documents

    def names_a_document(self, params: dict[str, Any]) -> bool:
        """Whether `resolve` has anything to do for parameters that may lack a `query`."""
        return self.mode == "only" or (self.mode == "allow" and names_a_document(params))

    async def resolve(self, params: dict[str, Any], engine: AsyncEngine) -> None:
        """Put the named document into `params["query"]`, or raise what refuses the request."""
        query = params.get("query")
        requested = None if self.mode == "off" else _requested_id(params)
        if requested is None:
            if not isinstance(query, str):  # body_limits let it through for an id we ignore
                raise BadUserInput(
                    "`query` must be a string holding a GraphQL document.", field="query"
                )
            if self.mode == "only":
                raise _not_allowed()
            return
        hash_, field = requested
        if query is None:
            found = await self.documents.get(engine, hash_)
            if found is None:
                raise NotFound("PersistedQueryNotFound", reason="PERSISTED_QUERY_NOT_FOUND")
            params["query"] = found
            return
        if document_hash(query) != hash_:
            raise BadUserInput(f"The query's SHA-256 is not {hash_}.", field=field)
        if self.mode == "allow":
            self.documents.remember(hash_, query)  # APQ: the next request may send the id only
        elif await self.documents.get(engine, hash_) is None:
            raise _not_allowed()


class TrustedDocuments:
    """The pipeline step: resolves document ids of HTTP requests (module docstring)."""

    def __init__(self, app: ASGIApp, *, ids: DocumentIds) -> None:
        self.app = app
        self.ids = ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_graphql_http(scope):
            request_state = state(scope)
            runtime: Runtime = request_state["runtime"]
            try:
                await self.ids.resolve(request_state[PARAMS], runtime.db.primary)
            except GatewayError as exc:
                status, headers = _status(exc)
                media_type = response_media_type(header(scope, b"accept"))
                response = error_response(exc, status, media_type=media_type, headers=headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _not_allowed() -> Forbidden:
    return Forbidden(
        "Only registered documents are accepted here (TRUSTED_DOCUMENTS=only): send a"
        " registered `documentId`.",
        reason="PERSISTED_QUERY_NOT_ALLOWED",
    )


def _status(exc: GatewayError) -> tuple[int, dict[str, str] | None]:
    if isinstance(exc, NotFound):
        return 200, _NO_CACHE
    if isinstance(exc, Forbidden):
        return 403, None
    if isinstance(exc, BadUserInput):
        return 400, None
    return 503, None  # the table could not be read
