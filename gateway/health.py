"""GET /healthz (the process is up) and GET /readyz (it can serve: database, schema, LISTEN)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from drivers.health import database_revision
from drivers.migrate import head_revision
from gateway.runtime import Runtime

__all__ = ["healthz", "readyz"]

log = logging.getLogger("gateway")


async def healthz(request: Request) -> Response:
    """The process is up."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The database answers, its schema is at the migrations' head, and LISTEN is connected.

    A replica whose LISTEN connection is down would leave its subscribers without events, so
    it reports unavailable (reason `listener`) until the hub has reconnected. A read replica
    that does not answer is `degraded` (still 200): reads fall back to the primary.
    """
    runtime: Runtime = request.state.runtime
    head = head_revision()
    try:
        current = await database_revision(runtime.db.primary)
    except Exception as exc:
        log.warning("readiness check failed: %s", exc)
        return JSONResponse({"status": "unavailable", "reason": "database"}, status_code=503)
    if current != head:
        return JSONResponse(
            {"status": "unavailable", "reason": "migrations", "current": current, "head": head},
            status_code=503,
        )
    listener = runtime.hub.state
    if listener != "connected":
        return JSONResponse(
            {"status": "unavailable", "reason": "listener", "listener": listener},
            status_code=503,
        )
    replica = runtime.replica
    if replica is not None and not replica.state.up:
        # 200: the primary serves the reads, so the load balancer should keep this instance.
        return JSONResponse(
            {"status": "degraded", "reason": "replica", "revision": current, "listener": listener}
        )
    return JSONResponse({"status": "ok", "revision": current, "listener": listener})
