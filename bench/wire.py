"""A TCP proxy in front of PostgreSQL that counts round trips and can cut a connection.

Why: SQLAlchemy's statement events miss what the driver sends on its own (BEGIN, COMMIT, the
pool's pings), and only the wire shows whether a write was retried. The proxy parses the
frontend message stream and counts Sync and Query messages: each one is a round trip (a
prepared statement's Bind/Execute/Sync, or a simple query such as BEGIN). `cut_after_next()`
makes the next round trip reach the server, waits for the server's answer, drops it and closes
both sides: the client then sees a broken connection although the server ran (and, in
autocommit, committed) what it sent.

The upstream is where the URL says, as libpq reads it: a TCP host and port, or a Unix socket
directory in `?host=/dir` (the embedded PostgreSQL's URL). The proxy itself always listens on
127.0.0.1, and it records each upstream backend's pid (from BackendKeyData), so a test can find
the proxied connections in pg_stat_activity whichever way the upstream is reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["WireProxy", "upstream_address", "wire_proxy"]

_UNTYPED_REQUESTS = {80877103, 80877104}  # SSLRequest, GSSENCRequest: the startup follows
_READY = b"Z\x00\x00\x00\x05"  # ReadyForQuery: the end of the server's answer
_ADDRESS_PARAMS = {"host", "port"}  # libpq query parameters that say where the server is


def upstream_address(database_url: str) -> tuple[str, int]:
    """(host or socket directory, port) of a libpq URL; `?host=`/`?port=` win, as in libpq."""
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "127.0.0.1"
    port = int(query.get("port") or parts.port or 5432)
    return host, port


class WireProxy:
    def __init__(self, host: str, port: int) -> None:
        """Proxy to host:port, or to the Unix socket `<host>/.s.PGSQL.<port>` if host is a path."""
        self.host, self.port = host, port
        self.round_trips = 0
        self.backend_pids: set[int] = set()
        self.closed_pids: set[int] = set()  # backends whose connection the proxy has closed
        self._cut_next = False
        self._server: asyncio.Server | None = None
        self.listen_port = 0

    def url(self, database_url: str) -> str:
        """database_url with its server address (netloc, `?host=`, `?port=`) the proxy's."""
        parts = urlsplit(database_url)
        netloc = parts.netloc.rsplit("@", 1)
        auth = netloc[0] + "@" if len(netloc) == 2 else ""
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in _ADDRESS_PARAMS])
        return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{self.listen_port}", query=query))

    def cut_after_next(self) -> None:
        self._cut_next = True

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.host.startswith("/"):
            path = f"{self.host}/.s.PGSQL.{self.port}"
            up_reader, up_writer = await asyncio.open_unix_connection(path)
        else:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        cut = asyncio.Event()
        back = asyncio.create_task(self._pump_back(up_reader, writer, cut))
        try:
            await self._pump_forward(reader, up_writer, cut)
            if cut.is_set():
                writer.close()  # the client loses the connection now ...
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(back), 5)  # ... the server finishes
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            up_writer.close()
            writer.close()
            back.cancel()

    async def _pump_forward(
        self, reader: asyncio.StreamReader, up: asyncio.StreamWriter, cut: asyncio.Event
    ) -> None:
        typed = False
        while True:
            if typed:
                head = await reader.readexactly(5)
                kind, length = head[:1], struct.unpack("!i", head[1:])[0]
            else:
                head = await reader.readexactly(4)
                kind, length = b"", struct.unpack("!i", head)[0]
            body = await reader.readexactly(length - 4)
            if not typed:
                code = struct.unpack("!i", body[:4])[0] if len(body) >= 4 else 0
                typed = code not in _UNTYPED_REQUESTS
            if kind in (b"S", b"Q"):
                self.round_trips += 1
                if self._cut_next:
                    self._cut_next = False
                    cut.set()
                    up.write(head + body)
                    await up.drain()
                    return
            up.write(head + body)

    async def _startup_back(
        self, up: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> int | None:
        """Forward the server's side of the startup, message by message, up to ReadyForQuery.

        Why parse: BackendKeyData carries the backend's pid. Before the first message, a lone
        'N' answers an SSLRequest/GSSENCRequest (go on in plain text); the server's first
        message is never a notice ('R', 'E' or 'v').
        """
        pid = None
        kind = await up.readexactly(1)
        while kind == b"N":
            writer.write(kind)
            await writer.drain()
            kind = await up.readexactly(1)
        while True:
            head = await up.readexactly(4)
            body = await up.readexactly(struct.unpack("!i", head)[0] - 4)
            if kind == b"K":
                pid = struct.unpack("!i", body[:4])[0]
                self.backend_pids.add(pid)
            writer.write(kind + head + body)
            await writer.drain()
            if kind in (b"Z", b"E"):  # ready, or refused
                return pid
            kind = await up.readexactly(1)

    async def _pump_back(
        self, up: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: asyncio.Event
    ) -> None:
        pid = None
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            pid = await self._startup_back(up, writer)
            while data := await up.read(65536):
                if cut.is_set():
                    # The server's answer: dropped. Return once it is complete (ReadyForQuery).
                    if _READY in data[-6:-1]:
                        return
                    continue
                writer.write(data)
                await writer.drain()
        writer.close()  # the server closed: so does the client's side
        if pid is not None:
            self.closed_pids.add(pid)


@asynccontextmanager
async def wire_proxy(database_url: str) -> AsyncIterator[WireProxy]:
    """A started proxy to database_url's server."""
    proxy = WireProxy(*upstream_address(database_url))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
