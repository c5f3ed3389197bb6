"""Where the database is: DATABASE_URL, or an embedded PostgreSQL started on demand.

An embedded server that does not start is one line for the operator (DatabaseUnreachable);
pgserver's own output (initdb, pg_ctl) goes to a log file beside the data folder.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from gateway.settings import Settings

__all__ = ["DatabaseUnreachable", "embedded_log_path", "resolve_database_url"]

log = logging.getLogger("gateway.database")


class DatabaseUnreachable(Exception):
    """The database cannot be used; the message is one line meant for the operator."""


def embedded_log_path(settings: Settings) -> Path:
    """Where pgserver's output goes: `.pgdata.log` beside `.pgdata` (initdb wants it empty)."""
    data_dir = Path(settings.gateway_data_dir).resolve()
    return data_dir.with_name(data_dir.name + ".log")


def _log_pgserver_to(path: Path) -> None:
    logger = logging.getLogger("pgserver")
    target = str(path)
    if not any(getattr(h, "baseFilename", None) == target for h in logger.handlers):
        handler = logging.FileHandler(target)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def resolve_database_url(settings: Settings) -> str:
    """Return DATABASE_URL, or start (or reuse) the embedded server in GATEWAY_DATA_DIR."""
    if settings.database_url:
        return settings.database_url
    with warnings.catch_warnings():
        # platformdirs warns at pgserver's import when XDG_RUNTIME_DIR is unset; it then uses /tmp.
        warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")
        import pgserver  # noqa: PLC0415 - only needed for the zero-setup default

    data_dir = Path(settings.gateway_data_dir).resolve()
    log_path = embedded_log_path(settings)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        _log_pgserver_to(log_path)
        server = pgserver.get_server(data_dir, cleanup_mode=None)  # type: ignore[attr-defined]
    except Exception as exc:
        raise DatabaseUnreachable(
            f"the embedded PostgreSQL in {data_dir} did not start ({type(exc).__name__}): "
            f"see {log_path} and {data_dir / 'log'}"
        ) from exc
    log.debug("embedded PostgreSQL in %s", data_dir)
    return str(server.get_uri())
