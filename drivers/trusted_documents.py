"""Trusted documents: GraphQL documents registered by the SHA-256 of their exact text.

A document's id is its content hash, so a row never changes: registering it again is a no-op and
a cache of what was read can be kept for the life of a process. The table is global (a client
build serves every tenant; a document holds no tenant data).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers import tables as t
from drivers.errors import map_db_errors

__all__ = [
    "HASH_PREFIX",
    "TrustedDocument",
    "document_hash",
    "fetch_document",
    "insert_documents",
    "list_documents",
    "normalize_hash",
]

HASH_PREFIX = "sha256:"
_HEX = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    hash: str
    document: str
    operation_names: tuple[str, ...] = ()
    created_at: datetime | None = None


def document_hash(document: str) -> str:
    """The id of a document: "sha256:" and the hex SHA-256 of its UTF-8 text, byte for byte."""
    return HASH_PREFIX + hashlib.sha256(document.encode()).hexdigest()


def normalize_hash(value: str) -> str | None:
    """The stored id (lower-case "sha256:<hex>") of a prefixed or bare hex digest, or None."""
    digest = value.removeprefix(HASH_PREFIX)
    return HASH_PREFIX + digest.lower() if _HEX.fullmatch(digest) else None


async def insert_documents(conn: AsyncConnection, documents: Sequence[TrustedDocument]) -> int:
    """Register documents (ids must be their hashes); returns how many were new."""
    if not documents:
        return 0
    rows = [
        {"hash": d.hash, "document": d.document, "operation_names": list(d.operation_names)}
        for d in documents
    ]
    stmt = (
        insert(t.trusted_documents)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["hash"])
        .returning(t.trusted_documents.c.hash)
    )
    with map_db_errors():
        return len((await conn.execute(stmt)).all())


async def fetch_document(conn: AsyncConnection, hash_: str) -> str | None:
    """The text of one registered document, or None."""
    stmt = select(t.trusted_documents.c.document).where(t.trusted_documents.c.hash == hash_)
    with map_db_errors():
        found: str | None = (await conn.execute(stmt)).scalar_one_or_none()
    return found


async def list_documents(conn: AsyncConnection) -> list[TrustedDocument]:
    """Every registered document, oldest first."""
    c = t.trusted_documents.c
    stmt = select(c.hash, c.document, c.operation_names, c.created_at).order_by(
        c.created_at, c.hash
    )
    with map_db_errors():
        rows = (await conn.execute(stmt)).all()
    return [
        TrustedDocument(r.hash, r.document, tuple(r.operation_names), r.created_at) for r in rows
    ]
