"""SessionWatch: connections end with their credential, at one query per interval for all keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import jwt
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers import api_keys
from gateway.auth import Authenticator, Credential
from gateway.session_watch import KEY_REVOKED, TOKEN_EXPIRED, Close, SessionWatch
from tests.helpers import JWT_SECRET, StatementCounter

INTERVAL = 0.5  # long enough that a second check cannot sneak in while one is counted


def _recorder(closed: list[tuple[str, str]], name: str) -> Close:
    async def close(reason: str) -> None:
        closed.append((name, reason))

    return close


async def _until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_revoked_keys_close_their_connections_checked_in_one_query(
    engine: AsyncEngine, count_statements: StatementCounter
):
    # given three connections on two API keys
    async with engine.begin() as conn:
        revoked, revoked_token = await api_keys.insert_api_key(
            conn, tenant_id="t1", role="VIEWER", name="a"
        )
        _, kept_token = await api_keys.insert_api_key(conn, tenant_id="t1", role="VIEWER", name="b")
    auth = Authenticator(engine, jwt_secret=JWT_SECRET, cache_seconds=INTERVAL)
    watch = SessionWatch(auth, INTERVAL)
    closed: list[tuple[str, str]] = []
    for name, token in (("a1", revoked_token), ("a2", revoked_token), ("b", kept_token)):
        credential = auth.credential(f"Bearer {token}")
        watch.watch(credential, _recorder(closed, name))
    try:
        # then each interval checks both keys with ONE statement, and nobody is closed
        count_statements.reset()
        await _until(lambda: count_statements.count >= 1)
        await asyncio.sleep(0.05)
        [statement] = count_statements.statements
        assert "api_keys" in statement
        assert closed == []
        # when one key is revoked
        async with engine.begin() as conn:
            await api_keys.revoke_api_key(conn, key_id=revoked.id)
        # then its two connections are closed, the other one is still watched
        await _until(lambda: len(closed) == 2)
        assert sorted(closed) == [("a1", KEY_REVOKED), ("a2", KEY_REVOKED)]
        assert watch.connections() == 1
    finally:
        await watch.stop()


async def test_a_jwt_connection_closes_at_exp_unless_it_ended_first(engine: AsyncEngine):
    auth = Authenticator(engine, jwt_secret=JWT_SECRET)
    watch = SessionWatch(auth, INTERVAL)
    closed: list[tuple[str, str]] = []
    # given two JWT connections expiring shortly, and one without exp
    watch.watch(Credential(None, time.time() + 0.3), _recorder(closed, "expiring"))
    unwatch = watch.watch(Credential(None, time.time() + 0.3), _recorder(closed, "left"))
    watch.watch(Credential(None), _recorder(closed, "forever"))
    # when one of them ends before exp
    unwatch()
    # then only the other is closed, with the expiry reason, and no key is being checked
    await _until(lambda: len(closed) == 1)
    await asyncio.sleep(0.3)
    assert closed == [("expiring", TOKEN_EXPIRED)]
    assert watch.connections() == 0


async def test_credential_names_the_key_or_the_jwt_expiry(engine: AsyncEngine):
    auth = Authenticator(engine, jwt_secret=JWT_SECRET)
    exp = int(time.time()) + 60
    claims = {"sub": "eve", "tenant_id": "t1", "role": "VIEWER"}
    fresh = jwt.encode({**claims, "exp": exp}, JWT_SECRET, algorithm="HS256")
    expired = jwt.encode({**claims, "exp": exp - 120}, JWT_SECRET, algorithm="HS256")
    # an API key is bound by its hash, a JWT by its exp (verified if not cached), none: never
    assert auth.credential("Bearer gwk_abc") == Credential(api_keys.hash_token("gwk_abc"))
    assert auth.credential(f"Bearer {fresh}") == Credential(None, float(exp))
    assert auth.credential(f"Bearer {jwt.encode(claims, JWT_SECRET)}") == Credential(None)
    # a JWT that expired since it was accepted ends its connection at once
    assert auth.credential(f"Bearer {expired}") == Credential(None, 0.0)
