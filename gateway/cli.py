"""Command line: `gateway serve | worker | migrate | seed-demo | keys | schema-export`.

Also runs as `python -m gateway`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from drivers import api_keys
from drivers.db import make_engine
from drivers.demo import seed_demo
from drivers.errors import DriverError
from drivers.migrate import upgrade_head
from gateway.database import resolve_database_url
from gateway.settings import Settings, get_settings
from resolvers.auth import Role

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
DEMO_TENANT = "demo"


async def _create_key(url: str, tenant: str, role: str, name: str | None) -> tuple[str, str]:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            record, token = await api_keys.insert_api_key(
                conn, tenant_id=tenant, role=role, name=name
            )
    finally:
        await engine.dispose()
    return record.id, token


async def _revoke_key(url: str, key_id: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await api_keys.revoke_api_key(conn, key_id=key_id)
    finally:
        await engine.dispose()


async def _seed(url: str, tenant: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            return await seed_demo(conn, tenant)
    finally:
        await engine.dispose()


async def _key_is_live(url: str, token: str) -> bool:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            return await api_keys.touch_api_key(conn, token=token) is not None
    finally:
        await engine.dispose()


def _demo_token(settings: Settings, url: str) -> str:
    """Reuse the demo console key across runs (kept beside the data, never in the database)."""
    token_file = Path(settings.gateway_data_dir).resolve().parent / ".demo-token"
    if token_file.exists():
        token = token_file.read_text().strip()
        if token and asyncio.run(_key_is_live(url, token)):
            return token
    _, token = asyncio.run(_create_key(url, DEMO_TENANT, Role.ADMIN.value, "demo-console"))
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return token


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415 - only the server needs it

    from gateway.app import create_app  # noqa: PLC0415 - avoid building the schema for other commands

    url = resolve_database_url(settings)
    upgrade_head(url)
    settings = settings.model_copy(update={"database_url": url, "migrate_on_start": False})
    if args.demo:
        counts = asyncio.run(_seed(url, DEMO_TENANT))
        token = _demo_token(settings, url)
        print(f"demo data for tenant '{DEMO_TENANT}': {sum(counts.values())} rows added")
        print(f"GraphiQL: http://{args.host}:{args.port}/graphql")
        print(f"API key (ADMIN, tenant {DEMO_TENANT}): {token}")
        print(f'  curl -H "Authorization: Bearer {token}" ...')
    sys.stdout.flush()
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        # Live frames are ~100-byte JSON messages: per-message deflate cost 5-11 % of the fan-out's
        # CPU and ~40 MiB per 1,000 sockets for almost no saving (docs/decisions.md).
        ws_per_message_deflate=False,
        log_level=settings.log_level.lower(),
        workers=None,
    )
    return 0


async def _run_worker(url: str, settings: Settings) -> None:
    from gateway.worker import Runner, default_jobs  # noqa: PLC0415 - only the worker needs it

    engine = make_engine(url, pool_size=2, max_overflow=2, pool_pre_ping=True)
    runner = Runner(engine, default_jobs(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner.start()
    try:
        await stop.wait()
    finally:
        await runner.stop()
        await engine.dispose()


def _worker(settings: Settings) -> int:
    """Run the background jobs alone, until SIGINT or SIGTERM."""
    url = resolve_database_url(settings)
    if settings.migrate_on_start:
        upgrade_head(url)
    print("worker running background jobs; stop with Ctrl-C", flush=True)
    asyncio.run(_run_worker(url, settings))
    print("worker stopped", flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP/WebSocket server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="seed tenant 'demo' and print a key")
    sub.add_parser("worker", help="run the background jobs without serving HTTP")
    sub.add_parser("migrate", help="apply database migrations (idempotent)")
    seed = sub.add_parser("seed-demo", help="load the demo data set (idempotent)")
    seed.add_argument("--tenant", required=True)
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; the token is printed last")
    create.add_argument("--tenant", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    export = sub.add_parser("schema-export", help="write the SDL to schema.graphql")
    export.add_argument("--output", type=Path, default=ROOT / "schema.graphql")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except DriverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "worker":
        return _worker(settings)
    if args.command == "schema-export":
        from schema import sdl  # noqa: PLC0415

        args.output.write_text(sdl())
        print(f"wrote {args.output}")
        return 0
    url = resolve_database_url(settings)
    if args.command == "migrate":
        upgrade_head(url)
        print("database at head")
    elif args.command == "seed-demo":
        upgrade_head(url)
        counts = asyncio.run(_seed(url, args.tenant))
        print(f"seeded tenant {args.tenant}: {sum(counts.values())} rows added")
    elif args.command == "keys" and args.keys_command == "create":
        key_id, token = asyncio.run(_create_key(url, args.tenant, args.role, args.name))
        print(f"key id: {key_id} (tenant {args.tenant}, role {args.role})")
        print(token)
    elif args.command == "keys" and args.keys_command == "revoke":
        asyncio.run(_revoke_key(url, args.id))
        print(f"revoked {args.id}")
    return 0
