"""Command line: `gateway serve | worker | migrate | seed-demo | keys | documents | schema-export`.

Also runs as `python -m gateway`. Settings come from environment variables (README.md §
Configuration); DATABASE_URL unset means an embedded PostgreSQL in GATEWAY_DATA_DIR.
"""

# Only the standard library at module level: `--help` must answer without loading SQLAlchemy,
# Strawberry or pydantic (~3 s). Each command imports what it needs.
from __future__ import annotations

import argparse
import asyncio
import errno
import ipaddress
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from gateway.settings import Settings

__all__ = ["ROLES", "main"]

ROOT = Path(__file__).resolve().parent.parent
DEMO_TENANT = "demo"
# resolvers.auth.Role's values, spelled out so `--help` need not import the resolvers (a test
# keeps them equal).
ROLES = ("VIEWER", "OPERATOR", "ADMIN", "INGEST")
RULE = "─" * 72


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows `(default: …)` for every option that has one; required options have none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default is None:
            return action.help
        return super()._get_help_string(action)


class CliError(Exception):
    """A failure the operator can fix; printed as one `error:` line, exit code 1."""


# --- small pieces ---------------------------------------------------------------------------


class _Step:
    """One progress line per long step: `[2/4] migrations … done (0.4 s)`."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.number = 0
        self.started = 0.0

    def start(self, text: str) -> None:
        self.number += 1
        self.started = time.perf_counter()
        print(f"[{self.number}/{self.total}] {text} …", end="", flush=True)

    def done(self, detail: str = "done") -> None:
        print(f" {detail} ({time.perf_counter() - self.started:.1f} s)", flush=True)


def _settings() -> Settings:
    """The settings, or one line naming the environment variable that is wrong."""
    from pydantic import ValidationError  # noqa: PLC0415

    from gateway.settings import get_settings  # noqa: PLC0415

    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise CliError(f"{name}: {first['msg']} (README.md § Configuration)") from exc


def _database(settings: Settings, step: _Step | None = None) -> str:
    """The database URL, checked by one connection; the embedded server is started if needed."""
    from gateway.database import (  # noqa: PLC0415
        DatabaseUnreachable,
        embedded_log_path,
        resolve_database_url,
    )
    from gateway.database_check import check_database  # noqa: PLC0415

    if step is not None:
        if settings.database_url:
            step.start("connecting to PostgreSQL (DATABASE_URL)")
        else:
            step.start(
                f"starting embedded PostgreSQL in {_shown(settings.gateway_data_dir)}"
                f" (its log: {_shown(embedded_log_path(settings))})"
            )
    try:
        url = resolve_database_url(settings)
        check_database(url)
    except DatabaseUnreachable as exc:
        if step is not None:
            print(" failed", flush=True)
        raise CliError(str(exc)) from exc
    if step is not None:
        step.done()
    return url


def _direct(settings: Settings, url: str) -> str:
    """Where migrations and admin commands connect: DATABASE_LISTEN_URL, past any pooler.

    Migrations hold one long transaction of DDL, and these one-shot commands would otherwise
    need the pooler-safe statement options too (README § Deploy). A URL of its own is checked
    like DATABASE_URL, so a wrong one is one line too.
    """
    if not settings.database_listen_url or settings.database_listen_url == url:
        return url
    from gateway.database import DatabaseUnreachable  # noqa: PLC0415
    from gateway.database_check import check_database  # noqa: PLC0415

    try:
        check_database(settings.database_listen_url)
    except DatabaseUnreachable as exc:
        raise CliError(str(exc).replace("DATABASE_URL", "DATABASE_LISTEN_URL")) from exc
    return settings.database_listen_url


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd()))
    except ValueError:
        return str(resolved)


@asynccontextmanager
async def _transaction(url: str) -> AsyncIterator[AsyncConnection]:
    """One transaction on a short-lived engine: what each one-shot command needs."""
    from drivers.db import make_engine  # noqa: PLC0415

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


async def _revision(url: str) -> str | None:
    from drivers.migrate import current_revision  # noqa: PLC0415

    async with _transaction(url) as conn:
        return await current_revision(conn)


def _migrate(url: str) -> str:
    """Bring the database to head; say from where to where."""
    from drivers.migrate import upgrade_head  # noqa: PLC0415

    before = asyncio.run(_revision(url))
    upgrade_head(url)
    after = asyncio.run(_revision(url))
    if before == after:
        return f"already at {after}"
    return f"{before or 'empty database'} → {after}"


async def _create_key(url: str, tenant: str, role: str, name: str | None) -> tuple[str, str]:
    from drivers import api_keys  # noqa: PLC0415

    async with _transaction(url) as conn:
        record, token = await api_keys.insert_api_key(conn, tenant_id=tenant, role=role, name=name)
    return record.id, token


async def _revoke_key(url: str, key_id: str) -> None:
    from drivers import api_keys  # noqa: PLC0415

    async with _transaction(url) as conn:
        await api_keys.revoke_api_key(conn, key_id=key_id)


async def _seed(url: str, tenant: str) -> dict[str, int]:
    from drivers.demo import seed_demo  # noqa: PLC0415

    async with _transaction(url) as conn:
        return await seed_demo(conn, tenant)


async def _key_is_live(url: str, token: str) -> bool:
    from drivers import api_keys  # noqa: PLC0415

    async with _transaction(url) as conn:
        return await api_keys.touch_api_key(conn, token=token) is not None


async def _add_documents(url: str, files: list[Path]) -> tuple[int, int]:
    """Register the files' documents; (documents read, of which new)."""
    from drivers.trusted_documents import insert_documents  # noqa: PLC0415
    from gateway.document_manifests import ManifestError, read_documents  # noqa: PLC0415

    try:
        documents = read_documents(files)
    except ManifestError as exc:
        raise CliError(str(exc)) from exc
    async with _transaction(url) as conn:
        return len(documents), await insert_documents(conn, documents)


def _token_file(settings: Settings) -> Path:
    return Path(settings.gateway_data_dir).resolve().parent / ".demo-token"


def _demo_token(settings: Settings, url: str) -> str:
    """Reuse the demo console key across runs (kept beside the data, never in the database)."""
    token_file = _token_file(settings)
    if token_file.exists():
        token = token_file.read_text().strip()
        if token and asyncio.run(_key_is_live(url, token)):
            return token
    _, token = asyncio.run(_create_key(url, DEMO_TENANT, "ADMIN", "demo-console"))
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return token


# --- serve ----------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """Take the port now, before any slow step or key is printed; uvicorn serves this socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if isinstance(exc, socket.gaierror):
            raise CliError(f"cannot listen on {host}: unknown host name (check --host)") from exc
        reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise CliError(
            f"cannot listen on {host}:{port} ({reason}): stop what uses it, or pick another"
            " port with --port (make run PORT=…)"
        ) from exc
    sock.set_inheritable(True)
    return sock


def _base_url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - display only
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _banner(base: str, token: str | None, token_file: Path) -> str:
    """The block printed once the server accepts requests: the last thing on the screen."""
    lines = ["", RULE, f"  GraphiQL   {base}/graphql"]
    if token is not None:
        query = '{"query":"{ viewer { tenantId role } }"}'
        lines += [
            f"  API key    {token}",
            f"             ADMIN of tenant '{DEMO_TENANT}', saved in {_shown(token_file)}"
            f" (TOKEN=$(cat {_shown(token_file)}))",
            "  try it     "
            f"curl -s {base}/graphql -H 'Authorization: Bearer {token}'"
            f" -H 'content-type: application/json' -d '{query}'",
        ]
    lines += [RULE, "  Ctrl-C stops the server.", ""]
    return "\n".join(lines)


def _run_server(app: Any, sock: socket.socket, settings: Settings, banner: str) -> None:
    import uvicorn  # noqa: PLC0415 - only the server needs it

    from gateway.sse import end_event_streams  # noqa: PLC0415 - imports Strawberry

    class BannerServer(uvicorn.Server):
        """Prints the banner once startup (lifespan, listening socket) has succeeded."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                print(banner, flush=True)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            end_event_streams()  # an open SSE response would hold the graceful shutdown
            await super().shutdown(sockets=sockets)

    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        # Live frames are ~100-byte JSON messages: per-message deflate cost 5-11 % of the fan-out's
        # CPU and ~40 MiB per 1,000 sockets for almost no saving (docs/decisions.md).
        ws_per_message_deflate=False,
        log_level=settings.log_level.lower(),
        log_config=None,  # gateway.logs already routes uvicorn's loggers (text or JSON)
    )
    BannerServer(config).run(sockets=[sock])


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    sock = _bind(args.host, args.port)
    try:
        step = _Step(4 if args.demo else 3)
        url = _database(settings, step)
        direct = _direct(settings, url)
        step.start("migrations")
        step.done(_migrate(direct))
        settings = settings.model_copy(update={"database_url": url, "migrate_on_start": False})
        token = None
        if args.demo:
            step.start(f"demo data for tenant '{DEMO_TENANT}'")
            counts = asyncio.run(_seed(direct, DEMO_TENANT))
            token = _demo_token(settings, direct)
            step.done(f"{sum(counts.values())} rows added")
        step.start("loading the schema and starting the server")
        from gateway.app import create_app  # noqa: PLC0415 - builds the schema: ~2 s

        app = create_app(settings, demo_token=token if token and _is_loopback(args.host) else None)
        step.done()
        banner = _banner(_base_url(args.host, sock), token, _token_file(settings))
        _run_server(app, sock, settings, banner)
    finally:
        sock.close()
    return 0


# --- worker ---------------------------------------------------------------------------------


async def _run_worker(url: str, direct_url: str, settings: Settings) -> None:
    from drivers.db import make_engine  # noqa: PLC0415
    from gateway.publisher import notify_mode_options, publisher_for  # noqa: PLC0415
    from gateway.worker import Runner, default_jobs  # noqa: PLC0415 - only the worker needs it

    engine = make_engine(
        url,
        pool_size=2,
        max_overflow=2,
        pool_pre_ping=True,
        prepared_statements=settings.db_prepared_statements,
        execution_options=notify_mode_options(settings),
    )
    runner = Runner(engine, default_jobs(settings))
    # The worker can be the database's outbox publisher too (gateway/publisher.py).
    publisher = publisher_for(settings, direct_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner.start()
    if publisher is not None:
        publisher.start()
    try:
        await stop.wait()
    finally:
        await runner.stop()
        if publisher is not None:
            await publisher.stop()
        await engine.dispose()


def _worker(settings: Settings, metrics_host: str, metrics_port: int | None) -> int:
    """Run the background jobs alone, until SIGINT or SIGTERM.

    With --metrics-port the jobs' counters (gateway_job_*) are scraped from the worker itself:
    where only the worker runs jobs, the gateways' /metrics never see them.
    """
    url = _database(settings)
    direct_url = _direct(settings, url)  # checked here: check_database runs its own event loop
    if settings.migrate_on_start:
        _migrate(direct_url)
    if metrics_port is not None:
        from prometheus_client import start_http_server  # noqa: PLC0415

        try:
            start_http_server(metrics_port, addr=metrics_host)
        except OSError as exc:
            raise CliError(
                f"cannot serve metrics on {metrics_host}:{metrics_port} ({exc.strerror})"
            ) from exc
        print(f"metrics on http://{metrics_host}:{metrics_port}/metrics", flush=True)
    print("worker running background jobs; stop with Ctrl-C", flush=True)
    asyncio.run(_run_worker(url, direct_url, settings))
    print("worker stopped", flush=True)
    return 0


# --- the parser -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    fmt = _HelpFormatter
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__, formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, formatter_class=fmt)

    serve = command("serve", "migrate, then serve GraphQL over HTTP and WebSocket")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="TCP port to listen on (0 = any)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help=f"load the demo data into tenant '{DEMO_TENANT}' and print an ADMIN key",
    )
    worker = command("worker", "run the background jobs without serving GraphQL, until Ctrl-C")
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve the jobs' Prometheus metrics on http://HOST:PORT/metrics (unset = none)",
    )
    worker.add_argument(
        "--metrics-host", default="127.0.0.1", help="address the metrics endpoint listens on"
    )
    command("migrate", "apply database migrations (idempotent)")
    seed = command("seed-demo", "load the demo data set into a tenant (idempotent)")
    seed.add_argument("--tenant", required=True, help="tenant id to load into")
    keys = command("keys", "create or revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = keys_sub.add_parser(
        "create",
        help="create a key; the token is printed last",
        description="Create an API key. Only its SHA-256 is stored; the token is printed last.",
        formatter_class=fmt,
    )
    create.add_argument("--tenant", required=True, help="tenant the key belongs to")
    create.add_argument("--role", required=True, choices=ROLES, help="role of the key")
    create.add_argument("--name", help="label shown in listings (default: none)")
    revoke = keys_sub.add_parser(
        "revoke", help="revoke a key by id", description="Revoke a key by id.", formatter_class=fmt
    )
    revoke.add_argument("id", help="key id printed by `keys create`")
    documents = command("documents", "register trusted documents (README § Trusted documents)")
    documents_sub = documents.add_subparsers(
        dest="documents_command", required=True, metavar="ACTION"
    )
    add = documents_sub.add_parser(
        "add",
        help="register the documents of Relay/Apollo manifests and .graphql files",
        description=(
            "Register GraphQL documents by the SHA-256 of their text (idempotent). A FILE is a"
            " Relay persisted-query map {id: document} (.json), an Apollo persisted-query"
            " manifest (.json) or one GraphQL document (any other name). Manifest ids must be"
            " the SHA-256 of their document. Nothing is registered if any file is wrong."
        ),
        formatter_class=fmt,
    )
    add.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files to register")
    export = command("schema-export", "write the schema's SDL to a file")
    export.add_argument(
        "--output", type=Path, default=ROOT / "schema.graphql", help="file to write"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    from drivers.errors import DriverError  # noqa: PLC0415
    from gateway.logs import configure_logging  # noqa: PLC0415

    settings = _settings()
    try:
        configure_logging(settings.log_level, settings.log_format)
    except ValueError as exc:
        raise CliError(f"LOG_LEVEL: {exc}") from exc
    from gateway.database import release_embedded  # noqa: PLC0415

    try:
        return _command(args, settings)
    except DriverError as exc:
        raise CliError(str(exc)) from exc
    finally:
        # An embedded server this command started stops with it (Ctrl-C of `make run` too); one
        # that was already running belongs to someone else and keeps running.
        release_embedded(settings)


def _command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "worker":
        return _worker(settings, args.metrics_host, args.metrics_port)
    if args.command == "schema-export":
        from schema import sdl  # noqa: PLC0415

        args.output.write_text(sdl())
        print(f"wrote {args.output}")
        return 0
    url = _direct(settings, _database(settings))
    if args.command == "migrate":
        print(f"database at head ({_migrate(url)})")
    elif args.command == "seed-demo":
        _migrate(url)
        counts = asyncio.run(_seed(url, args.tenant))
        print(f"seeded tenant {args.tenant}: {sum(counts.values())} rows added")
    elif args.command == "keys" and args.keys_command == "create":
        key_id, token = asyncio.run(_create_key(url, args.tenant, args.role, args.name))
        print(f"key id: {key_id} (tenant {args.tenant}, role {args.role})")
        print(token)
    elif args.command == "documents":
        _migrate(url)
        read, added = asyncio.run(_add_documents(url, args.files))
        print(f"{read} documents read, {added} new, {read - added} already registered")
    elif args.command == "keys" and args.keys_command == "revoke":
        asyncio.run(_revoke_key(url, args.id))
        print(f"revoked {args.id}")
    return 0
