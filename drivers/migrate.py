"""Programmatic Alembic: the gateway, the CLI and the tests migrate without an alembic.ini.

The environment (migrations/env.py) runs on asyncpg and calls `asyncio.run`, so `upgrade_head` must
run on a thread without an event loop; async callers use `await asyncio.to_thread(upgrade_head,
url)`. Upgrades are idempotent and serialized: within a process by a lock here, across processes
(replicas, test workers) by an advisory lock in env.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from drivers.db import async_url

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade_head",
]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _script_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def alembic_config(url: str) -> Config:
    """Alembic config for a libpq (or asyncpg) URL, pointing at drivers/migrations."""
    cfg = _script_config()
    # Config values go through configparser interpolation: a percent-encoded password would
    # otherwise be read as an interpolation directive.
    cfg.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return cfg


# Alembic's `context` and `op` are module-global proxies, so two commands running at once in one
# process (e.g. parallel to_thread calls) would trample each other. Serialize them here; across
# processes the advisory lock in env.py does the same job.
_COMMAND_LOCK = threading.Lock()


def _locked(command_fn: Callable[[Config, str], None], cfg: Config, revision: str) -> None:
    with _COMMAND_LOCK:
        command_fn(cfg, revision)


def _run(command_fn: Callable[[Config, str], None], cfg: Config, revision: str) -> None:
    """Run an Alembic command here, or on a worker thread if this thread runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _locked(command_fn, cfg, revision)
        return
    # Called from async code without to_thread: env.py's asyncio.run cannot nest, so run it on a
    # fresh thread. This blocks the caller's loop for the duration, as a sync call would anyway.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_locked, command_fn, cfg, revision).result()


def upgrade_head(url: str) -> None:
    """Bring the database at `url` to the newest revision; a no-op when it is already there."""
    _run(command.upgrade, alembic_config(url), "head")


def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade to `revision` (tests and operators only; the gateway never downgrades)."""
    _run(command.downgrade, alembic_config(url), revision)


def head_revision() -> str:
    """The newest revision id in drivers/migrations/versions."""
    head = ScriptDirectory.from_config(_script_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def _read_revision(sync_conn: Connection) -> str | None:
    return MigrationContext.configure(sync_conn).get_current_revision()


async def current_revision(conn: AsyncConnection) -> str | None:
    """The revision the database is at; None when it was never migrated (no alembic_version)."""
    return await conn.run_sync(_read_revision)
