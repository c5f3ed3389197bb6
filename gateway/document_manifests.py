"""Read the files `gateway documents add` registers: Relay and Apollo manifests, .graphql files.

Every document is parsed (a syntax error names its file and entry) and gets the id clients send:
"sha256:" + the hex SHA-256 of its exact text. A manifest's own id must be that hash (bare hex or
prefixed): a Relay or Apollo build configured for another algorithm is refused, not re-keyed,
since its clients would send ids that match nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, parse

from drivers.trusted_documents import TrustedDocument, document_hash, normalize_hash

__all__ = ["APOLLO_FORMAT", "ManifestError", "operation_names", "read_documents"]

APOLLO_FORMAT = "apollo-persisted-query-manifest"


class ManifestError(Exception):
    """A file that cannot be registered; the message names the file and the entry."""


def operation_names(document: str) -> tuple[str, ...]:
    """The names of the document's operations (anonymous ones have none); raises GraphQLError."""
    return tuple(
        d.name.value
        for d in parse(document).definitions
        if isinstance(d, OperationDefinitionNode) and d.name is not None
    )


def _document(path: Path, entry: str, body: object, given_id: str | None) -> TrustedDocument:
    where = f"{path}: {entry}"
    if not isinstance(body, str) or not body.strip():
        raise ManifestError(f"{where}: the document must be a non-empty string")
    try:
        names = operation_names(body)
    except GraphQLError as exc:
        raise ManifestError(f"{where}: not a GraphQL document ({exc.message})") from exc
    hash_ = document_hash(body)
    if given_id is not None and normalize_hash(given_id) != hash_:
        raise ManifestError(
            f"{where}: id {given_id!r} is not the SHA-256 of its document ({hash_});"
            " build the manifest with SHA-256 ids"
        )
    return TrustedDocument(hash_, body, names)


def _apollo(path: Path, data: dict[str, Any]) -> list[TrustedDocument]:
    if data.get("version") != 1:
        raise ManifestError(f"{path}: unsupported {APOLLO_FORMAT} version {data.get('version')!r}")
    operations = data.get("operations")
    if not isinstance(operations, list):
        raise ManifestError(f"{path}: `operations` must be a list")
    found = []
    for index, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("id"), str):
            raise ManifestError(f"{path}: operations[{index}] needs a string `id`")
        found.append(_document(path, f"operations[{index}]", op.get("body"), op["id"]))
    return found


def _read_file(path: Path) -> list[TrustedDocument]:
    try:
        text = path.read_bytes().decode()  # exactly as stored: no newline translation
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot be read ({exc})") from exc
    if path.suffix.lower() != ".json":
        return [_document(path, "document", text, None)]
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a JSON object (a Relay or Apollo manifest)")
    if data.get("format") == APOLLO_FORMAT:
        return _apollo(path, data)
    # Relay's persisted-query map: {"<id>": "<document>"}.
    return [_document(path, repr(key), body, key) for key, body in data.items()]


def read_documents(paths: list[Path]) -> list[TrustedDocument]:
    """Every document of the files, each once (in first-seen order); ManifestError on any fault."""
    found: dict[str, TrustedDocument] = {}
    for path in paths:
        for document in _read_file(path):
            found.setdefault(document.hash, document)
    return list(found.values())
