"""Open WebSockets and event streams end when their credential does.

A connection authenticates once, then lives for hours; without this a revoked API key or an
expired JWT would keep receiving changes. Each connection registers its Credential here:
- an API key joins the set of keys checked every `interval` (API_KEY_CACHE_SECONDS; one second
  when that is 0) in ONE query for all distinct keys of the process, however many connections
  use them; every connection of a revoked key is closed ("Forbidden: key revoked");
- a JWT with `exp` gets one timer at that instant ("Forbidden: token expired").
Nothing runs per event: the fan-out is untouched. While the database cannot be reached, keys
stay as they are (they cannot be checked; the next interval tries again).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine
from contextlib import suppress

from gateway.auth import Authenticator, Credential
from resolvers.errors import GatewayError

__all__ = ["KEY_REVOKED", "TOKEN_EXPIRED", "Close", "SessionWatch"]

log = logging.getLogger("gateway.auth")

KEY_REVOKED = "Forbidden: key revoked"
TOKEN_EXPIRED = "Forbidden: token expired"  # noqa: S105 - a close reason, not a secret
_UNCACHED_INTERVAL = 1.0  # with API_KEY_CACHE_SECONDS=0 (no cache), keys are checked each second
_MIN_INTERVAL = 0.1

Close = Callable[[str], Coroutine[None, None, None]]  # ends one connection, given the reason


class SessionWatch:
    """The process's open connections by credential: closes those whose credential ended."""

    def __init__(self, auth: Authenticator, interval: float) -> None:
        self._auth = auth
        self._interval = max(interval, _MIN_INTERVAL) if interval > 0 else _UNCACHED_INTERVAL
        self._by_key: dict[str, set[Close]] = {}
        self._checker: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def watch(self, credential: Credential, close: Close) -> Callable[[], None]:
        """Register a connection; returns the function that unregisters it (call it on close)."""
        if credential.key_hash is not None:
            return self._watch_key(credential.key_hash, close)
        if math.isinf(credential.expires):
            return _nothing
        loop = asyncio.get_running_loop()
        delay = max(credential.expires - time.time(), 0.0)
        timer = loop.call_at(loop.time() + delay, self._close, close, TOKEN_EXPIRED)
        return timer.cancel

    def _watch_key(self, key_hash: str, close: Close) -> Callable[[], None]:
        self._by_key.setdefault(key_hash, set()).add(close)
        if self._checker is None or self._checker.done():
            self._checker = asyncio.create_task(self._check_forever(), name="gateway-keys")

        def unwatch() -> None:
            closes = self._by_key.get(key_hash)
            if closes is not None:
                closes.discard(close)
                if not closes:
                    del self._by_key[key_hash]

        return unwatch

    async def _check_forever(self) -> None:
        """Every interval while some connection uses an API key: one query for all keys."""
        while self._by_key:
            await asyncio.sleep(self._interval)
            if not self._by_key:
                return
            try:
                revoked = await self._auth.revoked_keys(list(self._by_key))
            except GatewayError as exc:  # the database is down: check again next time
                log.warning("could not re-check API keys of open connections: %s", exc.message)
                continue
            for key_hash in revoked:
                for close in self._by_key.pop(key_hash, ()):
                    self._close(close, KEY_REVOKED)

    def _close(self, close: Close, reason: str) -> None:
        task = asyncio.create_task(close(reason), name="gateway-session-close")
        self._closing.add(task)
        task.add_done_callback(self._closed)

    def _closed(self, task: asyncio.Task[None]) -> None:
        self._closing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not close a connection: %s", task.exception())

    def connections(self) -> int:
        """Connections bound to an API key (for tests and metrics)."""
        return sum(len(c) for c in self._by_key.values())

    async def stop(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None


def _nothing() -> None:
    """Unregister a connection whose credential never ends (a JWT without exp)."""
