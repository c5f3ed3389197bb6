"""Where the database is: DATABASE_URL, or an embedded PostgreSQL started on demand.

The embedded server (pgserver) is a separate postgres process: it outlives the Python process
that started it unless someone stops it. Whoever starts it (`gateway serve`, a test run) stops
it when done, and only then; a server that was already running belongs to someone else and is
reused. `make stop` stops whatever is left.

An embedded server that does not start is one line for the operator (DatabaseUnreachable);
pgserver's own output (initdb, pg_ctl) goes to a log file beside the data folder.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path
from types import ModuleType

from gateway.settings import Settings

__all__ = [
    "DatabaseUnreachable",
    "embedded_log_path",
    "embedded_running",
    "release_embedded",
    "resolve_database_url",
    "start_embedded",
    "stop_embedded",
]

log = logging.getLogger("gateway.database")

_STARTED: set[Path] = set()  # data folders whose server this process started


def _pgserver() -> ModuleType:
    """Import pgserver quietly: platformdirs warns if XDG_RUNTIME_DIR is unset (containers, CI)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="platformdirs")
        import pgserver  # noqa: PLC0415

    return pgserver


def _pg_ctl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run pgserver's bundled pg_ctl on data_dir, as the folder's owner (pg_ctl refuses root)."""
    binaries = Path(_pgserver()._commands.POSTGRES_BIN_PATH)  # its bundled PostgreSQL 16
    owner = data_dir.stat().st_uid if os.geteuid() == 0 else None
    return subprocess.run(  # noqa: S603 - a fixed binary with fixed arguments
        [str(binaries / "pg_ctl"), "-D", str(data_dir), *args],
        user=owner,
        capture_output=True,
        timeout=120,
        check=False,
    )


def embedded_running(data_dir: Path | str) -> bool:
    """Whether a postgres server runs on data_dir (`pg_ctl status`)."""
    path = Path(data_dir).resolve()
    return (path / "postmaster.pid").exists() and _pg_ctl(path, "status").returncode == 0


def start_embedded(data_dir: Path | str) -> tuple[str, bool]:
    """Start (or reuse) the server in data_dir: its URL, and whether this call started it."""
    path = Path(data_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    started = not embedded_running(path)
    server = _pgserver().get_server(path, cleanup_mode=None)
    server.ensure_postgres_running()  # get_server hands out a cached handle, maybe of a stopped one
    if started:
        _STARTED.add(path)
    return str(server.get_uri()), started


def stop_embedded(data_dir: Path | str) -> bool:
    """Stop the server on data_dir if one runs (fast shutdown); True when one was stopped."""
    path = Path(data_dir).resolve()
    if not embedded_running(path):
        return False
    result = _pg_ctl(path, "stop", "-m", "fast", "-w")
    if result.returncode != 0:
        raise RuntimeError(f"pg_ctl stop failed on {path}: {result.stderr.decode().strip()}")
    _STARTED.discard(path)
    log.debug("embedded PostgreSQL in %s stopped", path)
    return True


def release_embedded(settings: Settings) -> bool:
    """Stop the server in GATEWAY_DATA_DIR if this process started it (when `gateway serve` ends).

    A server found running, or none at all (DATABASE_URL), is left alone.
    """
    path = Path(settings.gateway_data_dir).resolve()
    return path in _STARTED and stop_embedded(path)


class DatabaseUnreachable(Exception):
    """The database cannot be used; the message is one line meant for the operator."""


def embedded_log_path(settings: Settings) -> Path:
    """Where pgserver's output goes: `.pgdata.log` beside `.pgdata` (initdb wants it empty)."""
    data_dir = Path(settings.gateway_data_dir).resolve()
    return data_dir.with_name(data_dir.name + ".log")


def _log_pgserver_to(path: Path) -> None:
    """Send pgserver's log to this one file (a previous file handler is closed and replaced)."""
    logger = logging.getLogger("pgserver")
    target = str(path)
    if not any(getattr(h, "baseFilename", None) == target for h in logger.handlers):
        for old in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
            logger.removeHandler(old)
            old.close()
        handler = logging.FileHandler(target)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def resolve_database_url(settings: Settings) -> str:
    """Return DATABASE_URL, or start (or reuse) the embedded server in GATEWAY_DATA_DIR."""
    if settings.database_url:
        return settings.database_url
    data_dir = Path(settings.gateway_data_dir).resolve()
    log_path = embedded_log_path(settings)
    try:
        _log_pgserver_to(log_path)
        url, _ = start_embedded(data_dir)
    except Exception as exc:
        raise DatabaseUnreachable(
            f"the embedded PostgreSQL in {data_dir} did not start ({type(exc).__name__}): "
            f"see {log_path} and {data_dir / 'log'}"
        ) from exc
    log.debug("embedded PostgreSQL in %s", data_dir)
    return url
