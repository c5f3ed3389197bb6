"""The HTTP floor: each query's hand-written SQL behind a minimal ASGI app on uvicorn.

What Python HTTP can do at best for a query: the same uvicorn settings as our gateway (uvloop,
httptools, one worker, no access log), the same asyncpg statement as the floor (`floor.py`), and
nothing else: no GraphQL, no auth, no validation. A POST body {"q": "Q3", "args": [...]} runs
query Q3's statement with those arguments and answers {"data": <its JSON>}; any other body gets
{"data": {"__typename": "Query"}} (the runner's readiness probe). The load scripts replace
__ROT__ in the body, so rotating writes rotate here as they do for the GraphQL servers.

    python -m bench.http_floor --url postgresql://... --port 18106 --pool-size 10
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import asyncpg
import orjson
import uvicorn

from bench.floor import RefusedWrite, no_reset, run_statement
from bench.queries import QUERIES

__all__ = ["FloorApp", "main"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_SPECS = {q.key: q for q in QUERIES}
_READY = b'{"data":{"__typename":"Query"}}'
_REFUSED = b'{"errors":[{"message":"refused by the write\'s checks"}]}'


class FloorApp:
    """ASGI app: one pool, one statement per request."""

    def __init__(self, url: str, pool_size: int) -> None:
        self.url = url
        self.pool_size = pool_size
        self.pool: asyncpg.Pool | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        """Lifespan opens and closes the pool; every HTTP request runs one query."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        payload = await self._answer(orjson.loads(body) if body else {})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _answer(self, request: dict[str, Any]) -> bytes:
        spec = _SPECS.get(request.get("q", ""))
        if spec is None or self.pool is None:
            return _READY
        try:
            async with self.pool.acquire() as conn:
                text: str = await run_statement(conn, spec, tuple(request["args"]))
        except RefusedWrite:
            return _REFUSED
        return b'{"data":' + text.encode() + b"}"

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(
                    self.url, min_size=self.pool_size, max_size=self.pool_size, reset=no_reset
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def main() -> None:
    """CLI entry: serve the HTTP floor until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--port", type=int, default=18106)
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    uvicorn.run(
        FloorApp(args.url, args.pool_size),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
