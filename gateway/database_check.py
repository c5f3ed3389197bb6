"""Check DATABASE_URL with one connection before any work.

A wrong URL is then one line (what failed, where, what to check; never the password) instead of a
traceback from deep inside a command.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from urllib.parse import parse_qs, urlsplit

from gateway.database import DatabaseUnreachable

__all__ = ["CONNECT_TIMEOUT_SECONDS", "check_database"]

CONNECT_TIMEOUT_SECONDS = 10.0


def _where(url: str) -> str:
    """Host:port or socket path the URL names, for the message (never the password)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or [os.environ.get("PGHOST", "")])[0]
    port = parts.port or int((query.get("port") or [os.environ.get("PGPORT", "5432")])[0])
    if not host:
        return f"the default socket (port {port})"
    if host.startswith("/"):
        return f"socket {host}/.s.PGSQL.{port}"
    return f"{host}:{port}"


def _first_line(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return (text.splitlines() or [type(exc).__name__])[0]


def _explain(exc: BaseException) -> tuple[str, str]:
    """(what failed, what to check) for a failed connect; the first matching kind wins."""
    import asyncpg  # noqa: PLC0415 - kept off `--help`

    check_url = "check DATABASE_URL and that the server is running"
    kinds: list[tuple[type[BaseException], str | None, str]] = [
        (asyncpg.InvalidPasswordError, None, "check the user and password in DATABASE_URL"),
        (asyncpg.InvalidCatalogNameError, None, "check the database name in DATABASE_URL"),
        (
            asyncpg.InvalidAuthorizationSpecificationError,
            None,
            "check the user in DATABASE_URL and the server's pg_hba.conf",
        ),
        (asyncpg.PostgresError, None, check_url),
        (socket.gaierror, "host name not found", "check the host in DATABASE_URL"),
        (FileNotFoundError, "no socket there", "check the socket directory in DATABASE_URL"),
        (
            TimeoutError,
            f"no answer within {CONNECT_TIMEOUT_SECONDS:g} s",
            "check the host and port in DATABASE_URL and any firewall in between",
        ),
        (ConnectionRefusedError, "connection refused", check_url),
    ]
    # asyncio reports several refused addresses (localhost: ::1 and 127.0.0.1) without an errno.
    if f"[Errno {errno.ECONNREFUSED}]" in str(exc):
        return "connection refused", check_url
    for kind, what, hint in kinds:
        if isinstance(exc, kind):
            return what or _first_line(exc), hint
    return _first_line(exc), check_url


async def _connect_once(url: str) -> None:
    import asyncpg  # noqa: PLC0415 - see _explain

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    await conn.close()


def check_database(url: str) -> None:
    """Connect once, so that a wrong DATABASE_URL fails here with one line, not deep in a stack.

    Raises DatabaseUnreachable.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("postgres", "postgresql", "postgresql+asyncpg"):
        raise DatabaseUnreachable(
            f"DATABASE_URL has the unsupported scheme {scheme!r}: use postgresql://user@host/db"
        )
    try:
        asyncio.run(_connect_once(url))
    except Exception as exc:
        what, hint = _explain(exc)
        raise DatabaseUnreachable(
            f"cannot connect to PostgreSQL at {_where(url)} ({what}): {hint}"
        ) from exc
