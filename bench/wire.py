"""A TCP proxy in front of PostgreSQL that counts round trips and can cut a connection.

Why: SQLAlchemy's statement events miss what the driver sends on its own (BEGIN, COMMIT, the
pool's pings), and only the wire shows whether a write was retried. The proxy parses the
frontend message stream and counts Sync and Query messages: each one is a round trip (a
prepared statement's Bind/Execute/Sync, or a simple query such as BEGIN). `cut_after_next()`
makes the next round trip reach the server, waits for the server's answer, drops it and closes
both sides: the client then sees a broken connection although the server ran (and, in
autocommit, committed) what it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

__all__ = ["WireProxy", "wire_proxy"]

_UNTYPED_REQUESTS = {80877103, 80877104}  # SSLRequest, GSSENCRequest: the startup follows
_READY = b"Z\x00\x00\x00\x05"  # ReadyForQuery: the end of the server's answer


class WireProxy:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.round_trips = 0
        self.upstream_ports: set[int] = set()
        self._cut_next = False
        self._server: asyncio.Server | None = None
        self.listen_port = 0

    def url(self, database_url: str) -> str:
        """database_url with its host and port replaced by the proxy's."""
        parts = urlsplit(database_url)
        netloc = parts.netloc.rsplit("@", 1)
        auth = netloc[0] + "@" if len(netloc) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{self.listen_port}"))

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
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.upstream_ports.add(up_writer.get_extra_info("sockname")[1])
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

    async def _pump_back(
        self, up: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: asyncio.Event
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await up.read(65536):
                if cut.is_set():
                    # The server's answer: dropped. Return once it is complete (ReadyForQuery).
                    if _READY in data[-6:-1]:
                        return
                    continue
                writer.write(data)
                await writer.drain()
        writer.close()  # the server closed: so does the client's side


@asynccontextmanager
async def wire_proxy(database_url: str) -> AsyncIterator[WireProxy]:
    """A started proxy to database_url's server."""
    parts = urlsplit(database_url)
    proxy = WireProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
