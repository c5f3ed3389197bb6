"""Where the database is: DATABASE_URL, or an embedded PostgreSQL started on demand."""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.settings import Settings

__all__ = ["resolve_database_url"]

log = logging.getLogger("gateway.database")


def resolve_database_url(settings: Settings) -> str:
    """Return DATABASE_URL, or start (or reuse) the embedded server in GATEWAY_DATA_DIR."""
    if settings.database_url:
        return settings.database_url
    import pgserver  # noqa: PLC0415 - only needed for the zero-setup default

    data_dir = Path(settings.gateway_data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)  # type: ignore[attr-defined]
    log.info("embedded PostgreSQL in %s", data_dir)
    return str(server.get_uri())
