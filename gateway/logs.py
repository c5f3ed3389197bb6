"""Logging set-up: one stderr handler, text or JSON lines (LOG_FORMAT), for ours and uvicorn's.

Client errors carry `request_id` and `code` as record attributes (schema/errors.py); the JSON
formatter writes them as fields, the text formatter already has them in the message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

__all__ = ["JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Record attributes copied into JSON lines when a log call passes them in `extra`.
EXTRA_FIELDS = ("request_id", "code")
# Start-up chatter that progress lines replace; their warnings still show. (pgserver's goes to a
# file: gateway/database.py.)
QUIET_LOGGERS = ("alembic",)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, code, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str, fmt: Literal["text", "json"]) -> None:
    """Route every logger (uvicorn's too: it runs with log_config=None) to one stderr handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's loggers propagate to the root instead of its own coloured handlers.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
