"""A tiny round-robin TCP proxy on loopback: the tests' stand-in for a load balancer.

Each accepted connection goes to the next backend port in turn and its bytes are copied both
ways, so HTTP and WebSocket pass unchanged. `routed` records which backend got each connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from types import TracebackType


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class RoundRobinProxy:
    def __init__(self, backend_ports: list[int]) -> None:
        self._next = itertools.cycle(backend_ports)
        self.routed: list[int] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        port = next(self._next)
        self.routed.append(port)
        backend_r, backend_w = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(_pipe(client_r, backend_w), _pipe(backend_r, client_w))

    def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def __aenter__(self) -> RoundRobinProxy:
        self._server = await asyncio.start_server(self._track, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
